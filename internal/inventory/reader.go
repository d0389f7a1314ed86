package inventory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/credchain/credchain/internal/events"
)

// DefaultTTL is how long a cluster's inventory stays live without a new put: the publisher's
// --inventory-ttl default, the bucket's max age, and the Reader's default when the bucket says
// none.
const DefaultTTL = time.Minute

// Reader keeps every cluster's inventory from the bucket, for the guard: Impact and StoreUsing
// are map lookups in an immutable index (no lock, no I/O), whatever is happening on NATS.
//
// Roles are matched by auth mount and role name only — each cluster normally has its own
// Kubernetes auth mount — not by the Vault address: different clusters reach one Vault by different
// URLs (a Service name, a load balancer, an IP), so the addresses are reported (ClusterImpact.Vaults)
// and never compared with the guard's own.
//
// A cluster ages out TTL after its last put, by the NATS server's timestamp of that put, not the
// value's publishedAt (a cluster's clock, or a forged value, could keep a dead cluster alive)
// and not by the server's expiry of the key (a server without limit markers says nothing when a
// key ages out).
//
// Goroutines: NewReader starts one, the watch goroutine, which alone reads the bucket, decodes
// and builds indexes; it owns every field but idx (an atomic swap it writes, lookups read) and
// synced (closed once by it). Every method is safe for concurrent use.
type Reader struct {
	kv         jetstream.KeyValue
	ttl        time.Duration // 0: the bucket's TTL, read by the watch goroutine
	maxDecoded int
	log        logr.Logger
	now        func() time.Time
	metrics    *readerMetrics

	idx      atomic.Pointer[index]
	synced   chan struct{}
	syncOnce sync.Once
	done     chan struct{}
}

// ReaderOption configures a Reader.
type ReaderOption func(*Reader)

// WithReaderTTL sets how long a cluster stays live after its last put. Defaults to the bucket's
// TTL (EnsureBucket sets it from --inventory-ttl), else DefaultTTL.
func WithReaderTTL(d time.Duration) ReaderOption { return func(r *Reader) { r.ttl = d } }

// WithMaxDecodedBytes bounds one value's JSON after inflating. Defaults to DefaultMaxDecodedBytes.
func WithMaxDecodedBytes(n int) ReaderOption { return func(r *Reader) { r.maxDecoded = n } }

// WithReaderLogger sets the logger (ignored values, watch failures). Defaults to none.
func WithReaderLogger(l logr.Logger) ReaderOption { return func(r *Reader) { r.log = l } }

// WithReaderRegistry registers the Reader's metrics with reg. Defaults to none (kept unregistered).
func WithReaderRegistry(reg prometheus.Registerer) ReaderOption {
	return func(r *Reader) { r.metrics = newReaderMetrics(reg) }
}

// withReaderClock sets the clock lookups and ageing use (tests).
func withReaderClock(now func() time.Time) ReaderOption { return func(r *Reader) { r.now = now } }

// NewReader starts watching kv (every key, its current value then each update) until ctx ends.
// It returns at once; Wait or Synced tells when the initial values are loaded.
func NewReader(ctx context.Context, kv jetstream.KeyValue, opts ...ReaderOption) *Reader {
	r := &Reader{kv: kv, maxDecoded: DefaultMaxDecodedBytes, log: logr.Discard(), now: time.Now,
		synced: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	if r.metrics == nil {
		r.metrics = newReaderMetrics(nil)
	}
	r.idx.Store(newIndex(map[string]*cluster{}))
	go r.run(ctx)
	return r
}

// Impact is, per live cluster using any of roles, what depends on them there: sorted by cluster,
// each radius sorted as chain.Model.Impact sorts. MergeImpact makes one blast radius of it.
func (r *Reader) Impact(roles []events.RoleRef) []ClusterImpact {
	return r.idx.Load().impact(roles, r.now())
}

// StoreUsing names a store in a live cluster that logs in with role ("SecretStore
// prod/vault-backend"), the first cluster by name: what makes the role active.
func (r *Reader) StoreUsing(role events.RoleRef) (cluster, store string, ok bool) {
	return r.idx.Load().storeUsing(role, r.now())
}

// Clusters lists the live clusters, sorted.
func (r *Reader) Clusters() []string { return r.idx.Load().live(r.now()) }

// Synced reports whether the bucket's values at the start of the watch are loaded.
func (r *Reader) Synced() bool {
	select {
	case <-r.synced:
		return true
	default:
		return false
	}
}

// Wait blocks until Synced or ctx ends (its error then).
func (r *Reader) Wait(ctx context.Context) error {
	select {
	case <-r.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the watch goroutine has returned (its ctx ended).
func (r *Reader) Done() <-chan struct{} { return r.done }

// run watches the bucket, again after a failure (NATS down at start, the bucket deleted and
// re-created), backing off to 30s.
func (r *Reader) run(ctx context.Context) {
	defer close(r.done)
	backoff := 500 * time.Millisecond
	for {
		err := r.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		r.metrics.errors.WithLabelValues(ReasonWatch).Inc()
		r.log.Error(err, "watching the inventory bucket; retrying", "retryIn", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// errWatchEnded: the watcher's channel closed while its context had not ended.
var errWatchEnded = errors.New("the bucket's watch ended")

// watch applies the bucket's values until ctx ends or the watch fails. Clusters already loaded
// are kept across a re-watch (they age out on their own): the watch replays current values.
func (r *Reader) watch(ctx context.Context) error {
	ttl, err := r.bucketTTL(ctx)
	if err != nil {
		return err
	}
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching bucket %s: %w", r.kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	sweep := time.NewTicker(min(max(ttl/10, 100*time.Millisecond), 10*time.Second))
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			r.sweep()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return fmt.Errorf("bucket %s: %w", r.kv.Bucket(), errWatchEnded)
			case e == nil: // the initial values are all delivered
				r.syncOnce.Do(func() { close(r.synced) })
			default:
				r.apply(e, ttl)
			}
		}
	}
}

// bucketTTL is the TTL clusters age out by: WithReaderTTL's, else the bucket's, else DefaultTTL.
func (r *Reader) bucketTTL(ctx context.Context) (time.Duration, error) {
	if r.ttl > 0 {
		return r.ttl, nil
	}
	st, err := r.kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading bucket %s's TTL: %w", r.kv.Bucket(), err)
	}
	if st.TTL() > 0 {
		return st.TTL(), nil
	}
	return DefaultTTL, nil
}

// apply is one watch entry: a cluster's new value, or its delete or purge.
func (r *Reader) apply(e jetstream.KeyValueEntry, ttl time.Duration) {
	key := e.Key()
	clusters := maps.Clone(r.idx.Load().clusters)
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		if _, ok := clusters[key]; !ok {
			return
		}
		delete(clusters, key)
		r.log.Info("cluster inventory deleted", "cluster", key)
	default:
		inv, err := r.decode(key, e.Value())
		if err != nil {
			r.metrics.errors.WithLabelValues(reason(err)).Inc()
			_, kept := clusters[key]
			r.log.Error(err, "ignoring a cluster's inventory value", "cluster", key, "revision", e.Revision(), "keptPrevious", kept)
			return
		}
		clusters[key] = newCluster(inv, e.Created().Add(ttl))
	}
	r.swap(clusters)
}

func (r *Reader) decode(key string, value []byte) (*Inventory, error) {
	if err := ValidClusterName(key); err != nil {
		return nil, err
	}
	return Decode(key, value, r.maxDecoded)
}

// sweep drops the clusters that aged out (lookups already skip them) so that memory and the
// clusters gauge follow.
func (r *Reader) sweep() {
	now := r.now()
	cur := r.idx.Load().clusters
	var clusters map[string]*cluster
	for name, c := range cur {
		if !now.Before(c.expires) {
			if clusters == nil {
				clusters = maps.Clone(cur)
			}
			delete(clusters, name)
			r.log.Info("cluster inventory aged out", "cluster", name, "expired", c.expires.UTC().Format(time.RFC3339))
		}
	}
	if clusters != nil {
		r.swap(clusters)
	}
	r.metrics.clusters.Set(float64(len(r.idx.Load().live(now))))
}

func (r *Reader) swap(clusters map[string]*cluster) {
	ix := newIndex(clusters)
	r.idx.Store(ix)
	r.metrics.clusters.Set(float64(len(ix.live(r.now()))))
}
