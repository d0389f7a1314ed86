package auditguard

import (
	"testing"

	"github.com/go-logr/logr/testr"

	"github.com/credchain/credchain/internal/events"
)

// TestOwnWritesInFlight: two of the guard's own restores of one policy are in flight before the
// first one's audit entry is processed — a delete's restore, then a reconcile (queued by a Vault
// node's reconnection, or its interval) that found the policy missing again because its next
// delete's entry is still queued. Each own write's entry must be taken for the guard's own; with
// one mark per policy, the first entry used it up, the second was taken for someone else's write,
// its read-back found the policy deleted again, and the snapshot was held as superseded: the
// referenced policy was then never restored.
func TestOwnWritesInFlight(t *testing.T) {
	t.Parallel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const p = "eso-order-service"
	v := &memVault{policies: map[string]string{p: orderServicePolicyForTest},
		roles: map[string][]string{"external-secrets-operator": {p}}}
	rec := &events.Recorder{}
	g := NewGuard(v, store, rec, nil, testr.New(t))
	ctx := t.Context()
	if err := g.resync(ctx, "startup"); err != nil {
		t.Fatal(err)
	}
	del := func() { v.mu.Lock(); delete(v.policies, p); v.mu.Unlock() }
	process := func(id int, op string) { g.process(ctx, work{line: line(id, op, "sys/policies/acl/"+p)}) }

	del()
	process(1, "delete") // restored: own write 2 follows in the log
	del()                // deleted again; its entry (3) is queued behind a reconcile
	g.reconcile(ctx)     // restores it: own write 4 follows in the log
	process(2, "update")
	process(3, "delete") // the policy is there (the reconcile's restore)
	del()                // deleted again: entry 5
	process(4, "update") // the reconcile's own write, not someone else's
	process(5, "delete")
	if body, ok, _ := v.ReadPolicy(ctx, "", p); !ok || body != orderServicePolicyForTest {
		t.Errorf("policy after the last delete: %q (exists %v), want it restored", body, ok)
	}
	if snap, err := store.GetSnapshot("", p); err != nil || snap.Hold != nil {
		t.Errorf("snapshot hold = %+v (%v), want none", snap.Hold, err)
	}
	for _, e := range rec.All() {
		if e.Type == events.PolicyRestoreFailed {
			t.Errorf("event %s: %s", e.Type, e.Message)
		}
	}
}
