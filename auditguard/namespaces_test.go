package auditguard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/credchain/credchain/internal/events"
)

// nsCountingVault counts, per namespace, the calls a resync makes, and lists the namespaces given.
type nsCountingVault struct {
	*memVault
	listed []string
	mu     sync.Mutex
	calls  map[string]int
}

func (v *nsCountingVault) count(ns string) {
	v.mu.Lock()
	v.calls[ns]++
	v.mu.Unlock()
}

func (v *nsCountingVault) KubernetesMounts(ctx context.Context, ns string) ([]string, error) {
	v.count(ns)
	return v.memVault.KubernetesMounts(ctx, ns)
}

func (v *nsCountingVault) ListPolicies(ctx context.Context, ns string) ([]string, error) {
	v.count(ns)
	return v.memVault.ListPolicies(ctx, ns)
}

func (v *nsCountingVault) ListNamespaces(context.Context) ([]string, error) { return v.listed, nil }

func (v *nsCountingVault) namespaces() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for ns := range v.calls {
		out = append(out, ns)
	}
	return out
}

// nsGuard is a guard over an in-memory Vault that lists the namespaces listed, after its start-up
// resync: role eso references eso-order-service, which exists.
func nsGuard(t *testing.T, listed []string, opts ...Option) (*nsCountingVault, *Guard, *events.Recorder) {
	t.Helper()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	v := &nsCountingVault{memVault: &memVault{policies: map[string]string{"eso-order-service": "path \"x\" {}"},
		roles: map[string][]string{"eso": {"eso-order-service"}}}, listed: listed, calls: map[string]int{}}
	rec := &events.Recorder{}
	g := NewGuard(v, store, rec, nil, testr.New(t), opts...)
	if err := g.resync(context.Background(), "startup"); err != nil {
		t.Fatal(err)
	}
	return v, g, rec
}

// inNamespace puts an audit line in a Vault Enterprise namespace.
func inNamespace(l []byte, ns string) []byte {
	return []byte(strings.Replace(string(l), `"namespace":{"id":"root"}`, `"namespace":{"id":"x`+ns+`","path":"`+ns+`/"}`, 1))
}

// Issue 11 item 12: namespaces are learned from Vault, not from lines. 200 forged lines, each from
// another made-up namespace, must not make a resync call Vault 200 more times, nor make the guard
// act on them; an entry from a namespace Vault lists is acted on.
func TestNamespacesComeFromVault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v, g, rec := nsGuard(t, []string{"team-a"})
	for i := range 200 {
		g.process(ctx, work{line: inNamespace(line(i, "delete", "sys/policies/acl/eso-order-service"), fmt.Sprintf("forged-%d", i)), arrived: time.Now()})
	}
	g.process(ctx, work{line: inNamespace(line(500, "delete", "sys/policies/acl/eso-order-service"), "team-a"), arrived: time.Now()})
	v.mu.Lock()
	v.calls = map[string]int{}
	v.mu.Unlock()
	if err := g.resync(ctx, "resync"); err != nil {
		t.Fatal(err)
	}
	if got := sortedStrings(v.namespaces()); strings.Join(got, ",") != ",team-a" {
		t.Errorf("resync called Vault in %d namespaces (%q...), want only root and team-a", len(got), got[:min(len(got), 4)])
	}
	var acted []string
	for _, e := range rec.All() {
		acted = append(acted, e.Namespace)
	}
	if strings.Join(acted, ",") != "team-a" {
		t.Errorf("%d events from namespaces %q..., want one from team-a", len(acted), acted[:min(len(acted), 4)])
	}
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

// A namespace created after the last listing is found at the next re-listing an entry from it
// triggers, at most once per namespaceRefreshEvery — on the guard's clock (WithClock).
func TestNewNamespaceIsFoundOnTheGuardsClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	v, g, rec := nsGuard(t, nil, WithClock(func() time.Time { return now }))
	v.listed = []string{"team-b"} // created after the listing
	deleteIn := func(id int) {
		g.process(ctx, work{line: inNamespace(line(id, "delete", "sys/policies/acl/eso-order-service"), "team-b"), arrived: now})
	}
	for step, tc := range []struct {
		advance time.Duration
		events  int
	}{{advance: 30 * time.Second, events: 0}, {advance: 31 * time.Second, events: 1}} {
		now = now.Add(tc.advance)
		deleteIn(step)
		if got := len(rec.All()); got != tc.events {
			t.Fatalf("after %s more: %d events, want %d", tc.advance, got, tc.events)
		}
	}
}
