package auditguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
)

// Replicas (issue 16 item 1). Every replica accepts Vault's socket connections and restores the
// deletes it receives; the shared state (KVState) makes their snapshots one. Only the leader runs
// reconcile: two replicas restoring the same missing policy from one listing would both write it
// and both report it. The leader holds a key in a bucket whose TTL is the lease (--leader-ttl): it
// renews the key every TTL/3 with a compare-and-set on its revision, and a replica that cannot
// renew for 2/3 of the TTL stops leading before anyone else can start, after the whole TTL, when
// the server has expired the key. A KV key rather than a Kubernetes Lease because the guard may
// run outside Kubernetes, next to Vault, and with --state=nats its correctness already depends on
// NATS alone; a Lease would add the Kubernetes API as a second thing that must be up.
//
// Each replica also writes a heartbeat in the same bucket (replica.<id>, gone with the TTL when it
// dies): whether it leads and how many Vault connections it holds, for `nats kv ls` and the tests.

// DefaultLeaderTTL is --leader-ttl's default.
const DefaultLeaderTTL = 15 * time.Second

const leaderKey = "leader"

// Leader is this replica's part in the election. IsLeader is safe from any goroutine; the rest is
// owned by Run's goroutine.
type Leader struct {
	kv  jetstream.KeyValue
	id  string
	ttl time.Duration
	log logr.Logger
	// conns reports the Vault connections this replica holds (the guard's), for the heartbeat.
	conns func() int64
	// elected is called, on Run's goroutine, each time this replica becomes the leader.
	elected func()

	leading atomic.Bool
	rev     uint64    // revision of our last write of leaderKey
	renewed time.Time // when that write succeeded
}

// Heartbeat is a replica's replica.<id> value.
type Heartbeat struct {
	ID          string    `json:"id"`
	Leader      bool      `json:"leader"`
	Connections int64     `json:"connections"`
	At          time.Time `json:"at"`
}

// OpenLeader creates (or updates) the leader bucket — TTL ttl, replicas copies — for replica id.
func OpenLeader(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, id string, ttl time.Duration, log logr.Logger) (*Leader, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, TTL: ttl, Replicas: replicas,
		Storage: jetstream.FileStorage, Description: "credchain auditguard leader lease and replica heartbeats (docs/scale.md)"})
	if err != nil {
		return nil, fmt.Errorf("opening the leader bucket %s on NATS: %w", bucket, err)
	}
	return &Leader{kv: kv, id: id, ttl: ttl, log: log, conns: func() int64 { return 0 }, elected: func() {}}, nil
}

// IsLeader reports whether this replica leads now.
func (l *Leader) IsLeader() bool { return l.leading.Load() }

// Alive reports whether replica's heartbeat is in the bucket: written every TTL/3, it expires a
// TTL after the replica stopped. Its own replica is alive. Safe from any goroutine.
func (l *Leader) Alive(replica string) bool {
	if replica == l.id {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
	defer cancel()
	_, err := l.kv.Get(ctx, "replica."+b64(replica))
	return err == nil || !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted)
}

// Run campaigns and renews every TTL/3 until ctx ends, then gives the lease up (deleting the key
// at our revision) so another replica takes over at once instead of after the TTL.
func (l *Leader) Run(ctx context.Context) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		l.step(ctx)
		select {
		case <-ctx.Done():
			l.resign()
			return
		case <-t.C:
		}
	}
}

func (l *Leader) step(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	was := l.leading.Load()
	if was {
		l.renew(ctx)
	} else {
		l.campaign(ctx)
	}
	now := l.leading.Load()
	switch {
	case now && !was:
		l.log.Info("leading: this replica runs reconcile", "replica", l.id)
		l.elected()
	case was && !now:
		l.log.Info("no longer leading", "replica", l.id)
	}
	hb, _ := json.Marshal(Heartbeat{ID: l.id, Leader: now, Connections: l.conns(), At: time.Now().UTC()})
	if _, err := l.kv.Put(ctx, "replica."+b64(l.id), hb); err != nil {
		l.log.V(1).Info("writing the replica heartbeat", "error", err.Error())
	}
}

// renew extends the lease; after 2/3 of the TTL without a successful renewal it stops leading,
// so that it has stopped before the key can expire and another replica start.
func (l *Leader) renew(ctx context.Context) {
	rev, err := l.kv.Update(ctx, leaderKey, []byte(l.id), l.rev)
	if err == nil {
		l.rev, l.renewed = rev, time.Now()
		return
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || time.Since(l.renewed) > 2*l.ttl/3 {
		l.log.Info("leader lease lost", "replica", l.id, "error", err.Error())
		l.leading.Store(false)
	}
}

// campaign takes the lease when nobody holds it, or when the holder is this replica's own ID (a
// restarted pod whose old lease has not expired yet).
func (l *Leader) campaign(ctx context.Context) {
	rev, err := l.kv.Create(ctx, leaderKey, []byte(l.id))
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := l.kv.Get(ctx, leaderKey)
		if gerr != nil || string(e.Value()) != l.id {
			return // another replica leads
		}
		rev, err = l.kv.Update(ctx, leaderKey, []byte(l.id), e.Revision())
	}
	if err != nil {
		l.log.V(1).Info("campaigning for the leader lease", "error", err.Error())
		return
	}
	l.rev, l.renewed = rev, time.Now()
	l.leading.Store(true)
}

func (l *Leader) resign() {
	if !l.leading.Swap(false) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, leaderKey, jetstream.LastRevision(l.rev)); err != nil {
		l.log.Info("giving up the leader lease; another replica takes over when it expires", "error", err.Error())
	}
	_ = l.kv.Delete(ctx, "replica."+b64(l.id))
}
