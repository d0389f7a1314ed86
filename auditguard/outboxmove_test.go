package auditguard_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	bolt "go.etcd.io/bbolt"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Issue 12 item 1: the guard's outbox moved from state.db to its own events.db (events.OpenDelivery,
// as the webhook's). An event a guard of the previous layout left pending in state.db is delivered
// by the upgraded guard, against a real NATS and Vault.
func TestUpgradedGuardDeliversPendingEvents(t *testing.T) {
	e := setup(t)
	ns := testenv.StartNATS(t)
	e.natsURL = ns.ClientURL()
	must(t, os.MkdirAll(e.stateDir, 0o700))
	old, err := bolt.Open(filepath.Join(e.stateDir, "state.db"), 0o600, &bolt.Options{Timeout: time.Second})
	must(t, err)
	o, err := events.NewOutbox(old, "nats", events.Limits{})
	must(t, err)
	pending := events.Event{APIVersion: events.APIVersion, ID: "left-by-the-old-guard", Type: events.PolicyRestored,
		Time: time.Now().UTC(), Policy: "eso-order-service", Action: "restored", Message: "restored before the upgrade"}
	_, err = o.Add(pending)
	must(t, err)
	must(t, old.Close())

	nc, err := nats.Connect(e.natsURL)
	must(t, err)
	defer nc.Close()
	sub, err := nc.SubscribeSync("credchain.test.>")
	must(t, err)
	e.startGuard(t, false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			t.Fatalf("the pending event never reached NATS: %v", err)
		}
		if m.Header.Get("Nats-Msg-Id") == pending.ID {
			break
		}
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "events.db")); err != nil {
		t.Errorf("no events.db: %v", err)
	}
}
