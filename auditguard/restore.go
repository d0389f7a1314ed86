package auditguard

import (
	"context"
	"fmt"
	"time"
)

// What happens when a policy is deleted: restore it from its snapshot when a role references it,
// record it otherwise, and report what cannot be restored.

func (g *Guard) onPolicyDeleted(ctx context.Context, ns, name string, e *Entry, arrived time.Time) {
	roles := g.index.RolesFor(ns, name)
	if len(roles) > 0 {
		g.restore(ctx, ns, name, roles, arrived, e)
		return
	}
	actor := g.actor(ctx, e)
	g.emit(ctx, Event{Type: EventPolicyDeleted, Namespace: ns, Policy: name, Actor: actor, Action: "recorded",
		Message: fmt.Sprintf("policy %q was deleted by %s; no Kubernetes auth role references it, so it stays deleted", name, actor)})
}

// restore writes the last snapshot back. e is the delete's audit entry, nil when reconcile found the
// policy missing. The actor's details are looked up only after the write: the ESO login can't wait.
//
// When the guard is behind (see mayBeRecreated), the policy is read once more right before the
// write: the delete's entry may have waited in the queue while someone re-created the policy
// (`vault policy delete p && vault policy write p new.hcl`), and writing the snapshot back would
// replace the new body with the old one — for good, since the restore's own audit entry then
// snapshots the old body. Vault has no compare-and-set for policies, so a re-creation between that
// read and the write (one round trip) is still overwritten; the re-creation's own entry, processed
// next, then snapshots what the writer sees.
func (g *Guard) restore(ctx context.Context, ns, name string, roles []RoleRef, arrived time.Time, e *Entry) {
	var actor *Actor
	snap, err := g.store.GetSnapshot(ns, name)
	if err != nil {
		if e != nil {
			actor = g.actor(ctx, e)
		}
		g.danglingEvent(ctx, ns, name, roles, actor, err)
		return
	}
	// A delete handled as it arrives skips the read: a re-creation would have to complete within
	// the restore's own round trip, the race no read can close.
	if g.mayBeRecreated(arrived, e) {
		if _, found, err := g.vault.ReadPolicy(ctx, ns, name); err != nil {
			// Restoring what may already be back beats leaving ESO's logins without it.
			g.log.Error(err, "checking the policy is still missing before restoring it; restoring anyway", "policy", name)
		} else if found {
			g.recreated(ctx, ns, name, roles, e)
			return
		}
	}
	werr := g.vault.WritePolicy(ctx, ns, name, snap.Body)
	latency := time.Since(arrived)
	if e != nil {
		actor = g.actor(ctx, e)
	}
	who := "someone while the guard was not watching (found by reconcile; the file audit device has who)"
	if actor != nil {
		who = actor.String()
	}
	if werr != nil {
		g.metrics.Restores.WithLabelValues("failed").Inc()
		g.emit(ctx, Event{Type: EventPolicyRestoreFailed, Namespace: ns, Policy: name, Actor: actor, Roles: roles,
			Action: "none", Error: werr.Error(),
			Message: fmt.Sprintf("policy %q, referenced by %s, was deleted by %s and could NOT be restored: %v; restore it by hand now (vault policy write %s) or ESO logins with these roles will fail",
				name, rolesString(roles), who, werr, name)})
		return
	}
	g.metrics.Restores.WithLabelValues("ok").Inc()
	g.metrics.RestoreLatency.Observe(latency.Seconds())
	g.mu.Lock()
	delete(g.dangling, polKey{ns, name})
	g.mu.Unlock()
	meta := snap.Meta
	g.emit(ctx, Event{Type: EventPolicyRestored, Namespace: ns, Policy: name, Actor: actor, Roles: roles,
		Action: "restored", RestoreLatencyMS: float64(latency.Microseconds()) / 1000, SnapshotFrom: &meta,
		Message: fmt.Sprintf("policy %q was deleted by %s while still referenced by %s; credchain restored it from its snapshot of %s in %s",
			name, who, rolesString(roles), meta.ReadAt.UTC().Format(time.RFC3339), latency.Round(time.Microsecond))})
}

// recreated handles a restore found unnecessary: the policy exists again. After a delete entry that
// is a re-creation that happened while the entry was queued; the delete is recorded, and the new
// body is left alone (its own write entry snapshots it). Reconcile (e == nil) only raced a write
// since its listing: nothing happened worth an event.
func (g *Guard) recreated(ctx context.Context, ns, name string, roles []RoleRef, e *Entry) {
	g.log.Info("policy exists again; not restoring its snapshot", "policy", name, "namespace", ns)
	g.mu.Lock()
	delete(g.dangling, polKey{ns, name})
	g.mu.Unlock()
	if e == nil {
		return
	}
	actor := g.actor(ctx, e)
	g.emit(ctx, Event{Type: EventPolicyDeleted, Namespace: ns, Policy: name, Actor: actor, Roles: roles, Action: "recorded",
		Message: fmt.Sprintf("policy %q, referenced by %s, was deleted by %s and has been written again since; credchain left the new version in place instead of restoring its snapshot",
			name, rolesString(roles), actor)})
}

func (g *Guard) danglingEvent(ctx context.Context, ns, name string, roles []RoleRef, actor *Actor, cause error) {
	g.mu.Lock()
	seen := g.dangling[polKey{ns, name}]
	g.dangling[polKey{ns, name}] = true
	g.mu.Unlock()
	if seen {
		return
	}
	msg := fmt.Sprintf("policy %q is referenced by %s but does not exist, and credchain has no snapshot of it to restore (%v); logins with these roles get no access from it: write the policy or remove the reference",
		name, rolesString(roles), cause)
	g.emit(ctx, Event{Type: EventDanglingReference, Namespace: ns, Policy: name, Actor: actor, Roles: roles, Action: "none", Message: msg})
}

// Thresholds of mayBeRecreated.
const (
	// recheckWaited: a delete handled later than this after it arrived was queued behind others.
	recheckWaited = 5 * time.Millisecond
	// recheckAge: an entry Vault logged longer ago than this is old news (replayed, or the sink
	// fell behind); far above the clock skew between Vault's host and the guard's.
	recheckAge = time.Second
)

// mayBeRecreated reports whether a policy may have been written again since its delete was logged,
// so the restore must look before it writes: reconcile's restores (e nil), a delete that waited in
// the queue or has entries queued behind it, and one Vault logged a while ago. A delete handled as
// it arrives, the common case, skips the extra read (~1.5 ms of restore window on a local Vault).
func (g *Guard) mayBeRecreated(arrived time.Time, e *Entry) bool {
	now := g.opts.now()
	return e == nil || len(g.queue) > 0 || now.Sub(arrived) > recheckWaited ||
		(!e.Time.IsZero() && now.Sub(e.Time) > recheckAge)
}
