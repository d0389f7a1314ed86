package auditguard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// TestRestoreIntentRecovered (--state=nats, where restores keep intents): a guard killed after writing a policy back and before queueing its
// event leaves the restore's intent in its state; the next start's reconcile reports it, with the
// intent's event ID (a copy sent before the crash is de-duplicated on it), and drops the intent.
// An intent for a policy that is missing is dropped and the policy restored as usual.
func TestRestoreIntentRecovered(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	e := setup(t)
	e.natsURL, e.state = testenv.StartNATS(t).ClientURL(), auditguard.StateNATS
	nc, err := nats.Connect(e.natsURL)
	must(t, err)
	st, err := auditguard.OpenKVState(t.Context(), nc, auditguard.BucketFor(t.Name()), 1, "")
	must(t, err)
	crashed := events.Event{ID: "0123456789abcdef0123456789abcdef", Type: events.PolicyRestored, Policy: "eso-order-service",
		Roles: []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}}, Action: "restored", Rule: events.RuleSnapshot,
		Message: `policy "eso-order-service" was deleted by someone while still referenced by role auth/kubernetes/role/external-secrets-operator; credchain restored it from its snapshot`}
	// Replica guard-0 has no heartbeat: it is gone.
	must(t, st.PutIntent(auditguard.Intent{Replica: "guard-0", At: time.Now().Add(-time.Minute), Event: crashed}))
	must(t, st.Close())

	e.startGuard(t, false)
	ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", 0)
	if ev.ID != crashed.ID || !strings.Contains(ev.Message, "stopped before it could") {
		t.Errorf("event = %+v", ev)
	}
	e.enableDevices(t)
	e.flush(t)
	if got := len(ofType(e.events.All(), events.PolicyRestored)); got != 1 {
		t.Errorf("%d policy.restored events, want 1", got)
	}
}
