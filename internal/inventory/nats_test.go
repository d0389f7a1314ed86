package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// bucket starts an in-process JetStream server and creates the inventory bucket with ttl.
func bucket(t *testing.T, ttl time.Duration) (jetstream.JetStream, jetstream.KeyValue, string) {
	t.Helper()
	srv := testenv.StartNATS(t)
	nc, err := events.Dial(events.NATSConfig{URLs: []string{srv.ClientURL()}}, "inventory-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := EnsureBucket(t.Context(), js, DefaultBucket, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	return js, kv, srv.ClientURL()
}

// model is a ModelFunc over objects the test swaps, counting builds.
type model struct {
	mu     sync.Mutex
	m      *chain.Model
	builds atomic.Int32
}

func (f *model) set(m *chain.Model) { f.mu.Lock(); f.m = m; f.mu.Unlock() }
func (f *model) build(context.Context) (*chain.Model, error) {
	f.builds.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m, nil
}

func run(t *testing.T, p *Publisher) context.CancelFunc {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() { cancel(); <-done }
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPublishReadAgeOut: two clusters publish, the Reader sees both and answers from either; a
// change is put once (a Notify that changes nothing puts nothing), heartbeats keep a cluster
// live past its TTL, and a stopped publisher's cluster ages out of the Reader after the TTL.
func TestPublishReadAgeOut(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	_, kv, _ := bucket(t, ttl)
	reg := prometheus.NewRegistry()
	a, b := &model{}, &model{}
	a.set(synthCluster("eu-1", 40, 20))
	b.set(synthCluster("us-2", 20, 20))
	pa, err := NewPublisher("eu-1", kv, a.build, WithTTL(ttl), WithDebounce(50*time.Millisecond), WithRegistry(reg), WithLogger(testr.New(t)))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := NewPublisher("us-2", kv, b.build, WithTTL(ttl), WithDebounce(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	run(t, pa)
	stopB := run(t, pb)
	r := NewReader(t.Context(), kv, WithReaderLogger(testr.New(t)))
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both clusters", 5*time.Second, func() bool { return slices.Equal(r.Clusters(), []string{"eu-1", "us-2"}) })

	role := events.RoleRef{Mount: "kubernetes-eu-1", Name: "eso-team-001"}
	im := r.Impact([]events.RoleRef{role})
	if len(im) != 1 || im[0].Cluster != "eu-1" || len(im[0].BlastRadius.Workloads) != 20 || im[0].BlastRadius.Workloads[0].Cluster != "eu-1" ||
		!slices.Equal(im[0].Vaults, []string{"https://vault.platform.example.com:8200"}) {
		t.Fatalf("Impact(%v) = %+v", role, im)
	}
	if c, s, ok := r.StoreUsing(role); !ok || c != "eu-1" || s != "SecretStore team-001/vault-backend" {
		t.Fatalf("StoreUsing = %q %q %t", c, s, ok)
	}
	if _, _, ok := r.StoreUsing(events.RoleRef{Mount: "kubernetes-eu-1", Name: "nobody"}); ok {
		t.Fatal("StoreUsing found a role no store uses")
	}

	// A Notify without a change puts nothing.
	rev := revision(t, kv, "eu-1")
	pa.Notify()
	waitFor(t, "an unchanged publish", 2*time.Second, func() bool {
		return testutil.ToFloat64(pa.metrics.publishes.WithLabelValues(ResultUnchanged)) >= 1
	})
	if got := revision(t, kv, "eu-1"); got != rev {
		t.Fatalf("an unchanged inventory was put again (revision %d → %d)", rev, got)
	}
	// A change is.
	a.set(synthCluster("eu-1", 60, 20))
	pa.Notify()
	waitFor(t, "the third team in the reader", 3*time.Second, func() bool {
		return len(r.Impact([]events.RoleRef{{Mount: "kubernetes-eu-1", Name: "eso-team-002"}})) == 1
	})

	// Heartbeats keep both live past the TTL; then us-2 stops and ages out, eu-1 stays.
	time.Sleep(ttl + 500*time.Millisecond)
	if got := r.Clusters(); !slices.Equal(got, []string{"eu-1", "us-2"}) {
		t.Fatalf("with heartbeats, clusters = %v", got)
	}
	if hb := testutil.ToFloat64(pa.metrics.publishes.WithLabelValues(ResultHeartbeat)); hb < 1 {
		t.Fatalf("no heartbeat put in %s", ttl)
	}
	stopB()
	stopped := time.Now()
	waitFor(t, "us-2 to age out", 2*ttl, func() bool { return slices.Equal(r.Clusters(), []string{"eu-1"}) })
	t.Logf("us-2 aged out %s after its publisher stopped (TTL %s)", time.Since(stopped).Round(10*time.Millisecond), ttl)
	if im := r.Impact([]events.RoleRef{{Mount: "kubernetes-us-2", Name: "eso-team-000"}}); len(im) != 0 {
		t.Fatalf("aged-out cluster still in Impact: %+v", im)
	}
	if n := testutil.ToFloat64(pa.metrics.bytes); n <= 0 {
		t.Fatalf("credchain_inventory_bytes = %v", n)
	}
}

func revision(t *testing.T, kv jetstream.KeyValue, key string) uint64 {
	t.Helper()
	e, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return e.Revision()
}

// TestReaderIgnoresBadValues: a value the Reader cannot use — not gzip, a newer version, another
// cluster's name, a key that is no cluster name — is logged and counted, and the cluster keeps its
// previous inventory; a delete or purge removes it at once.
func TestReaderIgnoresBadValues(t *testing.T) {
	t.Parallel()
	_, kv, _ := bucket(t, time.Minute)
	reg := prometheus.NewRegistry()
	r := NewReader(t.Context(), kv, WithReaderRegistry(reg), WithReaderLogger(testr.New(t)))
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	put := func(key string, v []byte) {
		t.Helper()
		if _, err := kv.Put(t.Context(), key, v); err != nil {
			t.Fatal(err)
		}
	}
	good, err := Encode(sampleInventory("eu-1"), DefaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	put("eu-1", good)
	role := []events.RoleRef{{Mount: "kubernetes-eu-1", Name: "eso"}}
	waitFor(t, "eu-1", 5*time.Second, func() bool { return len(r.Impact(role)) == 1 })
	other, _ := Encode(sampleInventory("eu-2"), DefaultMaxBytes)
	for value, tc := range map[string]struct {
		key, reason string
		v           []byte
	}{
		"not gzip":       {key: "eu-1", reason: ReasonUndecodable, v: []byte("{}")},
		"newer version":  {key: "eu-1", reason: ReasonVersion, v: gz(t, `{"version":2,"cluster":"eu-1"}`)},
		"another's name": {key: "eu-1", reason: ReasonMismatch, v: other},
		"a key with /":   {key: "eu/1", reason: ReasonInvalidKey, v: good},
	} {
		before := testutil.ToFloat64(r.metrics.errors.WithLabelValues(tc.reason))
		put(tc.key, tc.v)
		waitFor(t, value+" counted", 5*time.Second, func() bool { return testutil.ToFloat64(r.metrics.errors.WithLabelValues(tc.reason)) == before+1 })
		if im := r.Impact(role); len(im) != 1 || len(im[0].BlastRadius.Workloads) != 1 {
			t.Fatalf("%s: eu-1's previous inventory is gone: %+v", value, im)
		}
	}
	if got := r.Clusters(); !slices.Equal(got, []string{"eu-1"}) {
		t.Fatalf("clusters = %v", got)
	}
	for op, remove := range map[string]func() error{
		"delete": func() error { return kv.Delete(t.Context(), "eu-1") },
		"purge":  func() error { return kv.Purge(t.Context(), "eu-1") },
	} {
		put("eu-1", good)
		waitFor(t, "eu-1 back", 5*time.Second, func() bool { return len(r.Impact(role)) == 1 })
		if err := remove(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "eu-1 gone after a "+op, 5*time.Second, func() bool { return len(r.Clusters()) == 0 })
	}
}

// TestPublisherRidesOutNATSDown: with the NATS server gone the publisher counts errors and keeps
// trying (nothing returns to the webhook); once the server is back the inventory is put.
func TestPublisherRidesOutNATSDown(t *testing.T) {
	t.Parallel()
	testenv.NeedsServer(t, "a nats-server")
	dir, port := t.TempDir(), freePort(t)
	srv, err := testenv.NATS(dir, port)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := events.Dial(events.NATSConfig{URLs: []string{srv.ClientURL()}}, "inventory-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := EnsureBucket(t.Context(), js, DefaultBucket, time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	f := &model{}
	f.set(synthCluster("eu-1", 20, 20))
	p, err := NewPublisher("eu-1", kv, f.build, WithDebounce(50*time.Millisecond), WithPutTimeout(300*time.Millisecond), WithLogger(testr.New(t)))
	if err != nil {
		t.Fatal(err)
	}
	run(t, p)
	waitFor(t, "two failed puts", 10*time.Second, func() bool { return testutil.ToFloat64(p.metrics.publishes.WithLabelValues(ResultError)) >= 2 })
	srv, err = testenv.NATS(dir, port)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	waitFor(t, "a put after NATS is back", 20*time.Second, func() bool {
		e, err := kv.Get(t.Context(), "eu-1")
		return err == nil && e.Operation() == jetstream.KeyValuePut
	})
}

func freePort(t *testing.T) int {
	var port int
	if _, err := fmt.Sscanf(testenv.FreeAddrT(t), "127.0.0.1:%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestEnsureBucket: created with the TTL and one value per key, updated when the TTL changes,
// and only looked up when it is as wanted.
func TestEnsureBucket(t *testing.T) {
	t.Parallel()
	js, kv, _ := bucket(t, time.Minute)
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != time.Minute || st.History() != 1 {
		t.Fatalf("ttl %s history %d", st.TTL(), st.History())
	}
	if kv, err = EnsureBucket(t.Context(), js, DefaultBucket, 3*time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	if st, _ = kv.Status(t.Context()); st.TTL() != 3*time.Minute {
		t.Fatalf("ttl after update %s", st.TTL())
	}
	if _, err := EnsureBucket(t.Context(), js, "bad.name", time.Minute, 1); !errors.Is(err, jetstream.ErrInvalidBucketName) {
		t.Fatalf("bad bucket name: %v", err)
	}
}
