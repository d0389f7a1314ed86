package auditguard

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// The State contract, run against both implementations: bbolt (the single replica's) and the
// JetStream bucket replicas share, on a real in-process nats-server — single node, and a
// three-node cluster with the bucket replicated three times (a compare-and-set conflict on a
// replicated stream answers with another error code than on a single one).
func states(t *testing.T) map[string]func(t *testing.T, replica string) State {
	t.Helper()
	single := testenv.StartNATS(t).ClientURL()
	var cluster []string
	return map[string]func(*testing.T, string) State{
		"bbolt": func(t *testing.T, _ string) State {
			s, err := OpenStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		"nats": func(t *testing.T, replica string) State { return kvState(t, single, t.Name(), 1, replica) },
		"nats cluster, 3 replicas": func(t *testing.T, replica string) State {
			if cluster == nil {
				cluster = testenv.StartNATSCluster(t, 3)
			}
			return kvState(t, cluster[0], t.Name(), 3, replica)
		},
	}
}

func kvState(t *testing.T, url, bucket string, replicas int, replica string) *KVState {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenKVState(t.Context(), nc, BucketFor(bucket), replicas, replica)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStateContract(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a nats-server")
	}
	readAt := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for name, open := range states(t) {
		t.Run(name, func(t *testing.T) {
			// Two handles on one state, as two replicas have: for bbolt the same handle.
			a := open(t, "guard-a")
			b := a
			if kv, ok := a.(*KVState); ok {
				b = &KVState{nc: kv.nc, kv: kv.kv, replica: "guard-b", timeout: kv.timeout}
			}
			meta := events.Provenance{Source: "audit", ReadAt: readAt}
			must(t, a.PutSnapshot(Snapshot{Name: "eso-order-service", Body: "v1", Meta: meta}))
			// An unchanged body written through the other replica keeps the first sighting's meta.
			must(t, b.PutSnapshot(Snapshot{Name: "eso-order-service", Body: "v1", Meta: events.Provenance{Source: "resync"}}))
			snap, err := b.GetSnapshot("", "eso-order-service")
			if err != nil || snap.Body != "v1" || snap.Meta.Source != "audit" || snap.Hold != nil {
				t.Errorf("snapshot = %+v, %v", snap, err)
			}
			held, err := a.HoldSnapshot("", "eso-order-service", Hold{Reason: HoldDeleted, At: readAt})
			if err != nil || !held {
				t.Errorf("hold = %v, %v", held, err)
			}
			if snap, _ := b.GetSnapshot("", "eso-order-service"); snap.Hold == nil || snap.Hold.Reason != HoldDeleted {
				t.Errorf("hold not seen by the other replica: %+v", snap)
			}
			// A read that finds the policy clears the hold, keeping the meta of the same body.
			must(t, b.PutSnapshot(Snapshot{Name: "eso-order-service", Body: "v1", Meta: events.Provenance{Source: "resync"}}))
			if snap, _ := a.GetSnapshot("", "eso-order-service"); snap.Hold != nil || snap.Meta.Source != "audit" {
				t.Errorf("after a re-read: %+v", snap)
			}
			if held, err := a.HoldSnapshot("ns1/", "never-seen", Hold{Reason: HoldDeleted}); held || err != nil {
				t.Errorf("hold of no snapshot = %v, %v", held, err)
			}
			if _, err := a.GetSnapshot("ns1/", "never-seen"); !errors.Is(err, ErrNoSnapshot) {
				t.Errorf("missing snapshot: %v", err)
			}
			// A name with characters a key may not hold.
			must(t, a.PutSnapshot(Snapshot{Namespace: "team a/", Name: "odd name*>", Body: "x"}))
			if snap, err := b.GetSnapshot("team a/", "odd name*>"); err != nil || snap.Body != "x" {
				t.Errorf("odd name: %+v, %v", snap, err)
			}

			// Logins: the later time wins, whichever replica writes last.
			k := roleKey{"", "kubernetes", "eso"}
			must(t, a.PutLogins(map[roleKey]time.Time{k: readAt.Add(time.Hour)}))
			must(t, b.PutLogins(map[roleKey]time.Time{k: readAt}))
			logins, err := a.Logins()
			if name == "bbolt" {
				// One file, one writer: the last write is the time.
				if err != nil || !logins[k].Equal(readAt) {
					t.Errorf("logins = %v, %v", logins, err)
				}
			} else if err != nil || len(logins) != 1 || !logins[k].Equal(readAt.Add(time.Hour)) {
				t.Errorf("logins = %v, %v", logins, err)
			}

			if _, ok, err := a.WatchingSince(); ok || err != nil {
				t.Errorf("watching since before set: %v, %v", ok, err)
			}
			must(t, a.SetWatchingSince(readAt))
			if since, ok, err := b.WatchingSince(); !ok || err != nil || !since.Equal(readAt) {
				t.Errorf("watching since = %v %v %v", since, ok, err)
			}

			must(t, a.SaveOffset("/var/log/vault/audit.log", 7, 4096))
			if inode, off, ok := a.Offset("/var/log/vault/audit.log"); !ok || inode != 7 || off != 4096 {
				t.Errorf("offset = %d %d %v", inode, off, ok)
			}
		})
	}
}

// TestKVStateConcurrentHolds: replicas racing on one snapshot through compare-and-set lose no
// write: every hold and re-read lands, and the last state is one of them, never a mix.
func TestKVStateConcurrentHolds(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a nats-server")
	}
	for name, open := range states(t) {
		if name == "bbolt" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			a := open(t, "a").(*KVState)
			must(t, a.PutSnapshot(Snapshot{Name: "p", Body: "v1"}))
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := range 4 {
				r := &KVState{nc: a.nc, kv: a.kv, replica: "r", timeout: a.timeout}
				wg.Go(func() {
					for j := range 10 {
						var err error
						if (i+j)%2 == 0 {
							_, err = r.HoldSnapshot("", "p", Hold{Reason: HoldSuperseded, Deletes: j})
						} else {
							err = r.PutSnapshot(Snapshot{Name: "p", Body: "v1"})
						}
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if snap, err := a.GetSnapshot("", "p"); err != nil || snap.Body != "v1" {
				t.Errorf("snapshot = %+v, %v", snap, err)
			}
		})
	}
}

// TestLeaderElection: two replicas on a real nats-server, one leads; when it stops (resigning)
// the other takes over at its next renewal; when a leader dies without resigning (its key left
// to expire) the other takes over after the TTL, never before.
func TestLeaderElection(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a nats-server")
	}
	url := testenv.StartNATS(t).ClientURL()
	open := func(id string) (*Leader, *nats.Conn) {
		nc, err := nats.Connect(url)
		must(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		must(t, err)
		l, err := OpenLeader(t.Context(), js, "credchain-guard-leader", 1, id, 3*time.Second, logr.Discard())
		must(t, err)
		return l, nc
	}
	run := func(l *Leader) (stop func()) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		return func() { cancel(); <-done }
	}
	a, _ := open("a")
	b, ncB := open("b")
	stopA := run(a)
	leaderWithin(t, a, 5*time.Second)
	stopB := run(b)
	time.Sleep(2 * time.Second)
	if b.IsLeader() || !a.IsLeader() {
		t.Fatalf("a %v, b %v: want a alone", a.IsLeader(), b.IsLeader())
	}
	stopA()
	start := time.Now()
	leaderWithin(t, b, 5*time.Second)
	t.Logf("after a resigned, b leads in %s", time.Since(start).Round(time.Millisecond))

	// b dies: its connection goes first, so it can neither renew nor resign, and its key stays
	// until the TTL ends.
	c, _ := open("c")
	ncB.Close()
	died := time.Now()
	stopC := run(c)
	defer stopC()
	leaderWithin(t, c, 10*time.Second)
	if took := time.Since(died); took < 2*time.Second {
		t.Errorf("c led %s after b died, before b's lease (3s, renewed up to 1s before) could expire", took)
	} else {
		t.Logf("after b died, c leads in %s (TTL 3s)", took.Round(time.Millisecond))
	}
	stopB()
	if b.IsLeader() {
		t.Error("b, cut off from NATS, still thinks it leads")
	}
}

func leaderWithin(t *testing.T, l *Leader, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !l.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not leading after %s", l.id, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
