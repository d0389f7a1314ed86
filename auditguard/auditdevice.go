package auditguard

import (
	"context"
	"fmt"
	"time"

	"github.com/credchain/credchain/internal/events"
)

// Disabling an audit device. Vault removes the device from its broker while it handles
// DELETE sys/audit/<path> and logs the response afterwards, so the device being disabled receives
// only the request entry. When that device is the guard's only feed, the response never arrives:
// the request entry starts a wait (WithAuditDisableWait) for the response, which does arrive when
// another device the guard reads still logs it, or when the disable failed and the device stayed.
// The event comes from the response when there is one, from the request when there is none by the
// end of the wait — once either way (de-duplicated by request ID, like every entry).

// Bounds of the disables waiting for their response. Each holds its decoded entry for the wait and
// a timer, and Vault's own are a handful at most: a DELETE sys/audit/<path> carries no body, so its
// request entry is a few KiB. Request lines past them cannot be Vault's (anyone reaching the socket
// can write some) and are dropped, counted in lines_dropped_total{reason="disable_waits"}, rather
// than held: --audit-disable-wait × the processing rate of forged entries would otherwise be held
// in memory, each as large as the queue allows.
const (
	maxPendingDisables    = 64
	maxDisableRequestLine = 64 << 10
)

// onAuditDisableRequest starts the wait for a disable's response entry; size is its line's.
func (g *Guard) onAuditDisableRequest(ctx context.Context, e *Entry, size int) {
	id := e.Request.ID
	if id == "" {
		return // cannot be matched with a response; a request without an ID is not Vault's
	}
	if g.seen.has(id) {
		return // the response (from another device) was processed first
	}
	if _, ok := g.pendingDisables[id]; ok {
		return // the same request from a second device
	}
	if size > maxDisableRequestLine || len(g.pendingDisables) >= maxPendingDisables {
		g.metrics.LinesDropped.WithLabelValues("disable_waits").Inc()
		return
	}
	g.pendingDisables[id] = e
	// The expiry goes through the queue, behind every line that arrived before it: a response that
	// arrived in time is processed first even when the queue is behind.
	time.AfterFunc(g.opts.auditDisableWait, func() { g.enqueueExpiry(ctx, id) })
}

func (g *Guard) enqueueExpiry(ctx context.Context, id string) {
	if ctx.Err() != nil {
		return
	}
	select {
	case g.queue <- work{kind: workDisableExpired, disableID: id, arrived: g.opts.now()}:
	default: // full: try again shortly rather than lose the event
		time.AfterFunc(100*time.Millisecond, func() { g.enqueueExpiry(ctx, id) })
	}
}

// onAuditDisableResponse handles the response entry of a disable (already de-duplicated): it ends
// the wait, and reports a disable that succeeded.
func (g *Guard) onAuditDisableResponse(ctx context.Context, ns, name string, e *Entry) {
	delete(g.pendingDisables, e.Request.ID)
	if e.Error != "" {
		return // the device is still enabled
	}
	actor := g.actor(ctx, e)
	g.emit(ctx, events.Event{Type: events.AuditDisabled, Namespace: ns, Object: "sys/audit/" + name, Actor: actor,
		Action: "none", Message: fmt.Sprintf("audit device %q was disabled by %s: if it fed credchain, policy deletes are no longer seen (reconcile still runs every %s)",
			name, actor, g.opts.reconcileInterval)})
}

// auditDisableExpired reports a disable whose response did not arrive within the wait: in all
// likelihood the device that delivered the request was the one disabled.
func (g *Guard) auditDisableExpired(ctx context.Context, id string) {
	e, ok := g.pendingDisables[id]
	if !ok {
		return // the response came in time
	}
	delete(g.pendingDisables, id)
	if g.seen.check(id) {
		return
	}
	_, name := Classify(e.Request.Path)
	actor := g.actor(ctx, e)
	g.emit(ctx, events.Event{Type: events.AuditDisabled, Namespace: e.Request.Namespace.NSPath(), Object: "sys/audit/" + name, Actor: actor,
		Action: "none", Message: fmt.Sprintf("audit device %q was disabled by %s (its response entry was not seen within %s: the device that delivered the request was most likely the one disabled, so credchain no longer sees policy deletes through it; reconcile still runs every %s)",
			name, actor, g.opts.auditDisableWait, g.opts.reconcileInterval)})
}
