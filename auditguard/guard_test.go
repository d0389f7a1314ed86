package auditguard

import (
	"context"
	"errors"
	"slices"
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
	e := onlyEvent(t, rec)
	if e.Type != events.PolicyRestoreFailed || e.Policy != "eso-order-service" || !strings.Contains(e.Error, "permission denied") ||
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
	if e := onlyEvent(t, rec); e.Type != events.PolicyDeleted || e.Action != "recorded" || e.Policy != "eso-order-service" ||
		len(e.Roles) != 1 || e.Actor.DisplayName != "userpass-cleanup-bot" || !strings.Contains(e.Message, "written again") {
		t.Errorf("event = %+v", e)
	}
	if body, _, _ := v.ReadPolicy(ctx, "", "eso-order-service"); body != newBody {
		t.Errorf("policy body = %q, want the re-created one", body)
	}
}

// TestAuditDeviceDisabled: Vault stops writing to the device being disabled before it logs the
// response, so that device delivers only the request entry. The disable is reported once, from the
// response when one arrives within the wait (another device still logs it), from the request when
// none does; a failed disable is not reported.
func TestAuditDeviceDisabled(t *testing.T) {
	t.Parallel()
	request := strings.Replace(strings.Replace(deleteEntry, `"type":"response"`, `"type":"request"`, 1),
		"sys/policies/acl/eso-order-service", "sys/audit/credchain", 1)
	response := strings.Replace(deleteEntry, "sys/policies/acl/eso-order-service", "sys/audit/credchain", 1)
	failed := strings.Replace(response, `"time":`, `"error":"1 error occurred:\n\t* permission denied\n\n","time":`, 1)
	tests := map[string]struct {
		lines      []string
		wantEvents int
		unseen     bool // the event says the response was not seen
	}{
		"request only: the guard's own device was disabled":      {lines: []string{request}, wantEvents: 1, unseen: true},
		"request from two devices, no response":                  {lines: []string{request, request}, wantEvents: 1, unseen: true},
		"request then response (another device)":                 {lines: []string{request, response, request}, wantEvents: 1},
		"response first, then the request from the other device": {lines: []string{response, request}, wantEvents: 1},
		"response only (before this change, the only case)":      {lines: []string{response}, wantEvents: 1},
		"request then failed response":                           {lines: []string{request, failed}, wantEvents: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store, err := OpenStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			rec := &events.Recorder{}
			g := NewGuard(&memVault{policies: map[string]string{}, roles: map[string][]string{}}, store, rec, nil, testr.New(t),
				WithAuditDisableWait(50*time.Millisecond))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() { _ = g.Run(ctx) }()
			for !g.Ready() {
				time.Sleep(5 * time.Millisecond)
			}
			for _, l := range tc.lines {
				g.Ingest([]byte(l))
			}
			// A later policy delete flushes the queue; the wait's expiry is behind it only if it
			// came in time, so wait out the expiry too.
			time.Sleep(300 * time.Millisecond)
			g.Ingest([]byte(strings.Replace(deleteEntry, `"id":"4c1f"`, `"id":"flush"`, 1)))
			deadline := time.Now().Add(30 * time.Second)
			for !slices.ContainsFunc(rec.All(), func(e events.Event) bool { return e.Type == events.PolicyDeleted }) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			var got []events.Event
			for _, e := range rec.All() {
				if e.Type == events.AuditDisabled {
					got = append(got, e)
				}
			}
			if len(got) != tc.wantEvents {
				t.Fatalf("audit.device_disabled events = %+v, want %d", got, tc.wantEvents)
			}
			if tc.wantEvents == 0 {
				return
			}
			if e := got[0]; e.Object != "sys/audit/credchain" || e.Actor == nil || e.Actor.DisplayName != "userpass-cleanup-bot" ||
				e.Actor.RemoteAddress != "10.0.4.17" || strings.Contains(e.Message, "not seen") != tc.unseen {
				t.Errorf("event = %+v", e)
			}
		})
	}
}

// onlyEvent waits for the guard's first event and requires it to be the only one.
func onlyEvent(t *testing.T, rec *events.Recorder) events.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for rec.Count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := rec.All()
	if len(got) != 1 {
		t.Fatalf("events = %+v, want one", got)
	}
	return got[0]
}
