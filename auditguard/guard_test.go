package auditguard

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// failingVault refuses policy writes, as a Vault would with a guard token missing "update".
type failingVault struct{ memVault }

func (f *failingVault) WritePolicy(context.Context, string, string, string) error {
	return errors.New("Error making API request. Code: 403. Errors: * permission denied")
}

// TestRestoreFailedIsReported: a restore Vault refuses becomes policy.restore_failed with the error
// and the roles, and the failure is counted; nothing is retried in a loop.
func TestRestoreFailedIsReported(t *testing.T) {
	t.Parallel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	v := &failingVault{memVault{policies: map[string]string{"eso-order-service": orderServicePolicyForTest},
		roles: map[string][]string{"external-secrets-operator": {"eso-order-service"}}}}
	rec := &events.Recorder{}
	g := NewGuard(v, store, rec, nil, testr.New(t), WithVaultAddr("http://vault.vault:8200"), WithCluster("prod-eu"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = g.Run(ctx) }()
	for !g.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	delete(v.policies, "eso-order-service")
	g.Ingest([]byte(deleteEntry))
	deadline := time.Now().Add(30 * time.Second)
	for rec.Count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := rec.All()
	if len(got) != 1 {
		t.Fatalf("events = %+v, want one", got)
	}
	e := got[0]
	if e.Type != EventPolicyRestoreFailed || e.Policy != "eso-order-service" || !strings.Contains(e.Error, "permission denied") ||
		len(e.Roles) != 1 || e.Roles[0].Name != "external-secrets-operator" || e.Actor.DisplayName != "userpass-cleanup-bot" ||
		e.Cluster != "prod-eu" || !strings.Contains(e.Message, "could NOT be restored") {
		t.Errorf("event = %+v", e)
	}
	testenv.WriteExample(t, e) // for docs/events.md
}

const orderServicePolicyForTest = `path "registry-creds/data/order-service" { capabilities = ["read"] }`

// TestRestoreLeavesRecreatedPolicy: `vault policy delete p && vault policy write p new.hcl` while
// the delete's entry waits in the queue. When the guard gets to the delete the policy exists again
// with a new body: it must not write the old snapshot over it, and it records the delete.
func TestRestoreLeavesRecreatedPolicy(t *testing.T) {
	t.Parallel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	v := &memVault{policies: map[string]string{"eso-order-service": orderServicePolicyForTest},
		roles: map[string][]string{"external-secrets-operator": {"eso-order-service"}}}
	rec := &events.Recorder{}
	g := NewGuard(v, store, rec, nil, testr.New(t))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = g.Run(ctx) }()
	for !g.Ready() { // the startup resync has snapshotted the old body
		time.Sleep(5 * time.Millisecond)
	}
	const newBody = `path "registry-creds/data/order-service-v2" { capabilities = ["read"] }`
	v.mu.Lock()
	v.policies["eso-order-service"] = newBody // deleted and written again before the guard looks
	v.mu.Unlock()
	g.Ingest([]byte(deleteEntry))
	deadline := time.Now().Add(30 * time.Second)
	for rec.Count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := rec.All()
	if len(got) != 1 {
		t.Fatalf("events = %+v, want one", got)
	}
	if e := got[0]; e.Type != EventPolicyDeleted || e.Action != "recorded" || e.Policy != "eso-order-service" ||
		len(e.Roles) != 1 || e.Actor.DisplayName != "userpass-cleanup-bot" || !strings.Contains(e.Message, "written again") {
		t.Errorf("event = %+v", e)
	}
	if body, _, _ := v.ReadPolicy(ctx, "", "eso-order-service"); body != newBody {
		t.Errorf("policy body = %q, want the re-created one", body)
	}
}
