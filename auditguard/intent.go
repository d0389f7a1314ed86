package auditguard

import (
	"context"
	"fmt"
	"time"

	"github.com/credchain/credchain/internal/events"
)

// Restore intents make a restore's event exactly-once across a crash. A replica killed between
// writing a policy back and queueing its policy.restored event would leave the restore unreported:
// the next reconcile finds the policy present and has nothing to say. So before the write the
// guard stores the event it is about to send (an intent, in the shared state with --state=nats),
// and deletes it once the event is queued. Reconcile — the leader's, or a single guard's — reports
// what a dead writer left behind: a restored policy's stored event, with its ID, so a copy the dead
// replica did publish is de-duplicated by JetStream; a policy still missing is restored as usual.
// It costs one state write before the restore's Vault write and one delete after: a round trip to
// NATS each with --state=nats (JetStream does not fsync per write), but an fsync each in state.db,
// which would add milliseconds to the single guard's restore window (docs/benchmarks.md). So only
// a shared state keeps intents: replicas are what is run for a guard that must survive a kill.

// Intent is a restore in flight: the policy.restored event it will send, less its latency.
type Intent struct {
	Replica string       `json:"replica"`
	At      time.Time    `json:"at"`
	Event   events.Event `json:"event"`
}

// putIntent stores the intent of ev's restore, with message's text: built only for a state that
// keeps intents, since it runs before the restore's write. A failure is logged and the restore
// goes on: the intent only guards the report.
func (g *Guard) putIntent(ev events.Event, message func() string) {
	is, ok := g.store.(intentStore)
	if !ok {
		return
	}
	ev.Message = message()
	if err := is.PutIntent(Intent{Replica: g.opts.replica, At: g.opts.now(), Event: ev}); err != nil {
		g.log.Error(err, "storing a restore's intent; a crash before its event is queued would leave it unreported", "policy", ev.Policy)
	}
}

func (g *Guard) dropIntent(ns, name string) {
	is, ok := g.store.(intentStore)
	if !ok {
		return
	}
	if err := is.DeleteIntent(ns, name); err != nil {
		g.log.Error(err, "deleting a restore's intent; reconcile will report it again (de-duplicated by its event ID)", "policy", name)
	}
}

// recoverIntents reports the restores whose writer died before queueing their event. Reconcile
// runs on the processing goroutine, so none of this replica's own restores is in flight: an
// intent of its own is a previous process's. Another replica's counts once its heartbeat is gone.
func (g *Guard) recoverIntents(ctx context.Context) {
	is, ok := g.store.(intentStore)
	if !ok {
		return
	}
	intents, err := is.Intents()
	if err != nil {
		g.log.Error(err, "reading restore intents")
		return
	}
	for _, in := range intents {
		if in.Replica != g.opts.replica && g.opts.alive != nil && g.opts.alive(in.Replica) {
			continue // in flight on a live replica
		}
		ev := in.Event
		_, found, err := g.vault.ReadPolicy(ctx, ev.Namespace, ev.Policy)
		if err != nil {
			g.log.Error(err, "reading a policy a stopped replica was restoring", "policy", ev.Policy)
			continue
		}
		if found {
			ev.Message += fmt.Sprintf(" (reported by replica %s: replica %s, which restored it at %s, stopped before it could)",
				g.opts.replica, in.Replica, in.At.UTC().Format(time.RFC3339))
			g.emit(ctx, ev)
		}
		// Missing: the write did not happen (or was deleted again); this reconcile restores it.
		g.dropIntent(ev.Namespace, ev.Policy)
	}
}
