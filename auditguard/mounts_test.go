package auditguard

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credchain/credchain/internal/events"
)

// nestedVault has a second Kubernetes auth mount, clusters/prod, whose roles the guard may not
// list: the shipped policy's auth/+/role covers one path segment only.
type nestedVault struct{ memVault }

func (n *nestedVault) KubernetesMounts(context.Context, string) ([]string, error) {
	return []string{"kubernetes", "clusters/prod"}, nil
}

func (n *nestedVault) ListRoles(ctx context.Context, ns, mount string) ([]string, error) {
	if mount == "clusters/prod" {
		return nil, errors.New("listing roles of auth/clusters/prod: Code: 403. Errors: * permission denied")
	}
	return n.memVault.ListRoles(ctx, ns, mount)
}

// TestUnreadableMountDegrades (issue 11 item 4): one auth mount the guard cannot read makes it
// degraded — a metric, a log line, one event — never stuck in its start-up retry loop (never
// ready, no reconcile, no restores on the mounts it can read).
func TestUnreadableMountDegrades(t *testing.T) {
	t.Parallel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	v := &nestedVault{memVault{policies: map[string]string{"eso-order-service": orderServicePolicyForTest},
		roles: map[string][]string{"external-secrets-operator": {"eso-order-service"}}}}
	rec := &events.Recorder{}
	g := NewGuard(v, store, rec, nil, testr.New(t), WithResyncInterval(20*time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = g.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !g.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("not ready with one unreadable auth mount")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a few resyncs: still one event
	if got := rec.OfType(events.AuthMountUnreadable); len(got) != 1 || got[0].Object != "auth/clusters/prod" ||
		got[0].Error == "" || got[0].Action != "none" {
		t.Errorf("events = %+v, want one %s for auth/clusters/prod", rec.All(), events.AuthMountUnreadable)
	}
	if got := testutil.ToFloat64(g.metrics.UnreadableMounts); got != 1 {
		t.Errorf("unreadable mounts = %v, want 1", got)
	}
	n := rec.Count()
	v.mu.Lock()
	delete(v.policies, "eso-order-service")
	v.mu.Unlock()
	g.Ingest([]byte(deleteEntry))
	for rec.Count() == n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e := rec.All()[n]; e.Type != events.PolicyRestored {
		t.Errorf("event = %+v, want the readable mount's policy restored", e)
	}
}
