package auditguard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/credchain/credchain/internal/events"
)

// What happens when a policy is deleted: restore it when the desired state defines it or a role
// references it (restore's rules), record it otherwise, and report what cannot be restored.

func (g *Guard) onPolicyDeleted(ctx context.Context, ns, name string, e *Entry, arrived time.Time) {
	roles := g.index.RolesFor(ns, name)
	if len(roles) > 0 || g.desiredPolicy(ns, name) != nil {
		g.restore(ctx, ns, name, roles, arrived, e)
		return
	}
	// Accepted while unreferenced: the delete was meant. Tombstone the snapshot so that a role
	// referencing the policy later is told it is missing instead of getting the old body back —
	// once a read confirms it is gone (a forged line must not plant a tombstone).
	if _, found, err := g.vault.ReadPolicy(ctx, ns, name); err != nil {
		g.log.Error(err, "checking the delete of a policy no Kubernetes auth role references; no tombstone", "policy", name)
	} else if !found {
		g.hold(ns, name, Hold{Reason: HoldDeleted, At: entryTime(e, g.opts.now()), Actor: actorOf(e)})
	}
	actor := g.actor(ctx, e)
	g.emit(ctx, events.Event{Type: events.PolicyDeleted, Namespace: ns, Policy: name, Actor: actor, Action: "recorded",
		Message: fmt.Sprintf("policy %q was deleted by %s; %s, so credchain left it deleted", name, actor, g.referenceScope(ns))})
}

// restore brings back a policy found missing that the desired state defines or a role references.
// e is the delete's audit entry, nil when reconcile or a role write found the policy missing. The
// first rule that applies decides (docs/auditguard.md's decision table; the event's rule):
//   - iac: the desired state defines the policy: its desired body is written, whether or not a
//     role references it, whatever the snapshot says (restoreDesired);
//   - iac-authoritative: with --desired-authoritative the desired state is complete, so a policy
//     it does not define was meant to go: nothing is written, and the roles still naming it are
//     reported (intendedDelete);
//   - inactive-role: every role referencing it is inactive (active.go: no ESO store uses it, no
//     login within --active-window, and the guard has watched a whole window): the delete was a
//     cleanup; nothing is written, the roles and their last logins are reported (inactiveDelete);
//   - active-role: a role referencing it is active (Event.Active says which and why): the last
//     body the guard read, unless it is held (restoreSnapshot);
//   - snapshot: the same when the active-role rule cannot decide (--active-window 0, or the ESO
//     stores are not known yet).
func (g *Guard) restore(ctx context.Context, ns, name string, roles []events.RoleRef, arrived time.Time, e *Entry) {
	if dp := g.desiredPolicy(ns, name); dp != nil {
		g.restoreDesired(ctx, ns, dp, roles, arrived, e)
		return
	}
	if g.authoritative(ns) {
		g.intendedDelete(ctx, ns, name, roles, e)
		return
	}
	active, inactive := g.roleActivity(ctx, ns, roles)
	if inactive != nil {
		g.inactiveDelete(ctx, ns, name, inactive, e)
		return
	}
	g.restoreSnapshot(ctx, ns, name, roles, arrived, e, active)
}

// restoreSnapshot writes the last snapshot back. The actor's details are looked up only after the
// write: the ESO login can't wait.
//
// An audit line is a hint, never the truth (it may be forged — the socket is unauthenticated — or
// the policy written again while the entry was queued: `vault policy delete p && vault policy write
// p new.hcl`), so the snapshot is written only after a read shows the policy absent; writing it
// over a newer body would replace it for good, since the restore's own entry then snapshots the
// old one. The read costs one round trip of the restore window (docs/benchmarks.md). Vault has no
// compare-and-set for policies, so a re-creation between that read and the write is still
// overwritten; the re-creation's own entry, processed next, then snapshots what the writer sees.
// A held snapshot (Hold) is never written.
func (g *Guard) restoreSnapshot(ctx context.Context, ns, name string, roles []events.RoleRef, arrived time.Time, e *Entry, active *events.ActiveRole) {
	snap, err := g.store.GetSnapshot(ns, name)
	if err != nil {
		var actor *events.Actor
		if e != nil {
			actor = g.actor(ctx, e)
		}
		g.danglingEvent(ctx, ns, name, roles, actor, err)
		return
	}
	if snap.Hold != nil {
		g.withhold(ctx, ns, name, roles, snap, e)
		return
	}
	if !g.confirmMissing(ctx, ns, name, roles, e) {
		return
	}
	if e != nil && g.flapping(ns, name, e) {
		if snap, err = g.store.GetSnapshot(ns, name); err == nil && snap.Hold != nil {
			g.withhold(ctx, ns, name, roles, snap, e)
			return
		}
	}
	from := restoreFrom{body: snap.Body, meta: snap.Meta, rule: events.RuleSnapshot,
		what: "its snapshot of " + snap.Meta.ReadAt.UTC().Format(time.RFC3339)}
	if active != nil {
		from.rule, from.active = events.RuleActiveRole, active
	}
	g.writeBack(ctx, ns, name, roles, arrived, e, from)
}

// restoreDesired writes a desired policy's desired body back: the IaC says it exists, so neither a
// hold on its snapshot (superseded, tombstoned: holds on the snapshot's body, not this one) nor
// the roles matter — except flapping, which stops the guard fighting whatever keeps deleting it.
// The read before the write is restoreSnapshot's.
func (g *Guard) restoreDesired(ctx context.Context, ns string, dp *DesiredPolicy, roles []events.RoleRef, arrived time.Time, e *Entry) {
	name := dp.Name
	if snap, err := g.store.GetSnapshot(ns, name); err == nil && snap.Hold != nil && snap.Hold.Reason == HoldFlapping {
		g.withhold(ctx, ns, name, roles, snap, e)
		return
	}
	if !g.confirmMissing(ctx, ns, name, roles, e) {
		return
	}
	if e != nil && g.flapping(ns, name, e) {
		if snap, err := g.store.GetSnapshot(ns, name); err == nil && snap.Hold != nil {
			g.withhold(ctx, ns, name, roles, snap, e)
			return
		}
	}
	g.writeBack(ctx, ns, name, roles, arrived, e, restoreFrom{body: dp.Body, meta: g.desiredProvenance(dp), rule: events.RuleIaC,
		what: "its desired body"})
}

// confirmMissing reads the policy before it is restored (an audit line is a hint): false when the
// read fails (reported as a failed restore) or finds it (recreated).
func (g *Guard) confirmMissing(ctx context.Context, ns, name string, roles []events.RoleRef, e *Entry) bool {
	if _, found, err := g.vault.ReadPolicy(ctx, ns, name); err != nil {
		g.restoreFailed(ctx, ns, name, roles, e, fmt.Errorf("checking the policy is missing before restoring it: %w", err))
		return false
	} else if found {
		g.recreated(ctx, ns, name, roles, e)
		return false
	}
	return true
}

// restoreFrom is the body a restore writes and what it is, for the event: where it came from, the
// rule that chose it, and its name in the message.
type restoreFrom struct {
	body string
	meta events.Provenance
	rule string
	what string
	// active is, for RuleActiveRole, the role that made the policy worth restoring.
	active *events.ActiveRole
}

// writeBack writes a restore's body and reports it (or its failure). A desired body becomes the
// snapshot too: the guard's own write is not read back.
func (g *Guard) writeBack(ctx context.Context, ns, name string, roles []events.RoleRef, arrived time.Time, e *Entry, from restoreFrom) {
	meta := from.meta
	ev := events.Event{Type: events.PolicyRestored, Namespace: ns, Policy: name, Roles: roles, Action: "restored",
		SnapshotFrom: &meta, Rule: from.rule, Active: from.active}
	if e != nil {
		ev.Actor = actorOf(e) // its auth mount is looked up after the write
	}
	ev.ID = eventID(ev)
	g.putIntent(ev, func() string { return g.restoredMessage(ns, name, roles, ev.Actor, from) })
	werr := g.vault.WritePolicy(ctx, ns, name, from.body)
	latency := g.opts.now().Sub(arrived)
	if werr != nil {
		g.dropIntent(ns, name)
		g.restoreFailed(ctx, ns, name, roles, e, werr)
		return
	}
	g.markOwnWrite(polKey{ns, name})
	if from.rule == events.RuleIaC {
		if err := g.store.PutSnapshot(Snapshot{Namespace: ns, Name: name, Body: from.body, Meta: from.meta}); err != nil {
			g.log.Error(err, "storing policy snapshot", "policy", name)
		}
	}
	if e != nil {
		ev.Actor = g.actor(ctx, e)
	}
	g.metrics.Restores.WithLabelValues("ok").Inc()
	g.metrics.RestoreLatency.Observe(latency.Seconds())
	delete(g.dangling, polKey{ns, name})
	ev.RestoreLatencyMS = float64(latency.Microseconds()) / 1000
	ev.Message = g.restoredMessage(ns, name, roles, ev.Actor, from) + " in " + latency.Round(time.Microsecond).String()
	g.emit(ctx, ev)
	g.dropIntent(ns, name)
}

// restoredMessage is policy.restored's message, less the restore's latency.
func (g *Guard) restoredMessage(ns, name string, roles []events.RoleRef, actor *events.Actor, from restoreFrom) string {
	return fmt.Sprintf("policy %q was deleted by %s while %s%s; credchain restored it from %s",
		name, whoDeleted(actor), g.guardedBecause(ns, name, roles), activeClause(from.active), from.what)
}

// activeClause is the message's reason a referencing role counts as active: "" without one.
func activeClause(a *events.ActiveRole) string {
	if a == nil {
		return ""
	}
	return " (" + a.String() + ")"
}

// guardedBecause says why the guard keeps a policy: the desired state defines it, roles still
// reference it, or both.
func (g *Guard) guardedBecause(ns, name string, roles []events.RoleRef) string {
	var why []string
	if dp := g.desiredPolicy(ns, name); dp != nil {
		why = append(why, "defined by the IaC ("+dp.Origin+")")
	}
	if len(roles) > 0 {
		why = append(why, "still referenced by "+rolesString(roles))
	}
	if len(why) == 0 {
		return "referenced by no Kubernetes auth role"
	}
	return strings.Join(why, " and ")
}

// leftDeleted decides whether a delete the guard leaves alone (intendedDelete, inactiveDelete) is
// reported: a delete entry is confirmed by a read first (re-created meanwhile: recreated handles
// it, nothing is reported here); a missing policy reconcile finds (e == nil) is reported once
// until the state changes. actor is the delete entry's, nil for reconcile.
func (g *Guard) leftDeleted(ctx context.Context, ns, name string, roles []events.RoleRef, e *Entry) (actor *events.Actor, report bool) {
	k := polKey{ns, name}
	if e != nil {
		if _, found, err := g.vault.ReadPolicy(ctx, ns, name); err == nil && found {
			g.recreated(ctx, ns, name, roles, e)
			return nil, false
		}
		actor = g.actor(ctx, e)
	} else if g.dangling[k] {
		return nil, false
	}
	g.dangling[k] = true
	return actor, true
}

// intendedDelete handles a policy missing that roles reference but an authoritative desired state
// does not define: the delete was meant (an IaC run that removed the policy before the role that
// names it, or a cleanup the IaC already made), so it is not undone; the roles' dangling reference
// is reported, once until the state changes. A delete entry is confirmed by a read first.
func (g *Guard) intendedDelete(ctx context.Context, ns, name string, roles []events.RoleRef, e *Entry) {
	actor, report := g.leftDeleted(ctx, ns, name, roles, e)
	if !report {
		return
	}
	still := "still name it and get"
	if len(roles) == 1 {
		still = "still names it and gets"
	}
	g.emit(ctx, events.Event{Type: events.DanglingReference, Namespace: ns, Policy: name, Actor: actor, Roles: roles, Action: "none",
		Rule: events.RuleAuthoritative,
		Message: fmt.Sprintf("policy %q was deleted by %s; the desired state (%s) is authoritative and does not define it, so the delete was meant and credchain left it deleted, but %s %s nothing from it: remove it from the roles, or define it in the IaC again",
			name, whoDeleted(actor), g.opts.desired, rolesString(roles), still)})
}

func whoDeleted(a *events.Actor) string {
	if a == nil {
		return "someone while the guard was not watching (found by reconcile; the file audit device has who)"
	}
	return a.String()
}

func (g *Guard) restoreFailed(ctx context.Context, ns, name string, roles []events.RoleRef, e *Entry, err error) {
	var actor *events.Actor
	if e != nil {
		actor = g.actor(ctx, e)
	}
	g.metrics.Restores.WithLabelValues("failed").Inc()
	g.emit(ctx, events.Event{Type: events.PolicyRestoreFailed, Namespace: ns, Policy: name, Actor: actor, Roles: roles,
		Action: "none", Error: err.Error(), Rule: g.ruleFor(ns, name),
		Message: fmt.Sprintf("policy %q, %s, was deleted by %s and could NOT be restored: %v; restore it by hand now (vault policy write %s) or ESO logins with these roles will fail",
			name, g.guardedBecause(ns, name, roles), whoDeleted(actor), err, name)})
}

// flapping records a confirmed delete of a referenced policy and reports whether it is the
// opts.flapDeletes-th within opts.flapWindow; then the snapshot is held (HoldFlapping) and the
// count starts afresh, so that after someone writes the policy again (clearing the hold) it takes
// as many deletes again.
func (g *Guard) flapping(ns, name string, e *Entry) bool {
	if g.opts.flapDeletes < 1 {
		return false
	}
	k, now := polKey{ns, name}, g.opts.now()
	recent := slices.DeleteFunc(g.deletes[k], func(t time.Time) bool { return now.Sub(t) >= g.opts.flapWindow })
	recent = append(recent, now)
	if len(recent) < g.opts.flapDeletes {
		g.deletes[k] = recent
		return false
	}
	delete(g.deletes, k)
	g.hold(ns, name, Hold{Reason: HoldFlapping, At: entryTime(e, now), Actor: actorOf(e), Deletes: len(recent)})
	return true
}

// withhold reports, once per hold, a deleted referenced policy whose snapshot must not be written
// back. Superseded and flapping holds count as failed restores (the existing alert fires: the
// roles' logins lack the policy); a tombstone is a dangling reference, as for a policy never seen.
func (g *Guard) withhold(ctx context.Context, ns, name string, roles []events.RoleRef, snap Snapshot, e *Entry) {
	h := snap.Hold
	k, seen := polKey{ns, name}, string(h.Reason)+"@"+h.At.String()
	reported := g.withheld[k] == seen
	g.withheld[k] = seen
	if reported {
		return
	}
	var actor *events.Actor
	if e != nil {
		actor = g.actor(ctx, e)
	}
	at := h.At.UTC().Format(time.RFC3339)
	switch h.Reason {
	case HoldDeleted:
		g.emit(ctx, events.Event{Type: events.DanglingReference, Namespace: ns, Policy: name, Actor: h.Actor, Roles: roles, Action: "none", Reason: string(h.Reason),
			Message: fmt.Sprintf("policy %q is referenced by %s but does not exist: %s deleted it at %s while no Kubernetes auth role referenced it, and credchain does not bring back deliberately deleted policies; write the policy again or remove the reference",
				name, rolesString(roles), h.Actor, at)})
		return
	case HoldSuperseded:
		g.metrics.Restores.WithLabelValues("failed").Inc()
		g.metrics.Withheld.WithLabelValues(string(h.Reason)).Inc()
		g.emit(ctx, events.Event{Type: events.PolicyRestoreFailed, Namespace: ns, Policy: name, Actor: actor, Roles: roles, Action: "none", Reason: string(h.Reason),
			Message: fmt.Sprintf("policy %q, referenced by %s, was deleted by %s; credchain did not restore it: its snapshot (read %s) is older than the write %s made at %s, which was deleted before credchain could read it, and writing the older body back could undo that change; write the policy's current version by hand (vault policy write %s) or ESO logins with these roles will fail",
				name, rolesString(roles), whoDeleted(actor), snap.Meta.ReadAt.UTC().Format(time.RFC3339), h.Actor, at, name)})
	case HoldFlapping:
		g.metrics.Restores.WithLabelValues("failed").Inc()
		g.metrics.Withheld.WithLabelValues(string(h.Reason)).Inc()
		g.emit(ctx, events.Event{Type: events.PolicyRestoreFailed, Namespace: ns, Policy: name, Actor: actor, Roles: roles, Action: "none", Reason: string(h.Reason),
			Rule: g.ruleFor(ns, name),
			Message: fmt.Sprintf("policy %q, %s, was deleted %d times within %s (last by %s at %s): something keeps deleting it, so credchain stopped restoring it rather than fight it; find what deletes it (an IaC run, a reconciler), then write the policy again (vault policy write %s), which resumes guarding",
				name, g.guardedBecause(ns, name, roles), h.Deletes, g.opts.flapWindow, h.Actor, at, name)})
	}
}

// recreated handles a restore found unnecessary: the policy exists again. After a delete entry that
// is a re-creation that happened while the entry was queued; the delete is recorded, and the new
// body is left alone (its own write entry snapshots it). Reconcile (e == nil) only raced a write
// since its listing: nothing happened worth an event.
func (g *Guard) recreated(ctx context.Context, ns, name string, roles []events.RoleRef, e *Entry) {
	g.log.Info("policy exists again; not restoring its snapshot", "policy", name, "namespace", ns)
	delete(g.dangling, polKey{ns, name})
	if e == nil {
		return
	}
	actor := g.actor(ctx, e)
	g.emit(ctx, events.Event{Type: events.PolicyDeleted, Namespace: ns, Policy: name, Actor: actor, Roles: roles, Action: "recorded",
		Message: fmt.Sprintf("policy %q, %s, was deleted by %s and has been written again since; credchain left the new version in place instead of restoring it",
			name, g.guardedBecause(ns, name, roles), actor)})
}

func (g *Guard) danglingEvent(ctx context.Context, ns, name string, roles []events.RoleRef, actor *events.Actor, cause error) {
	seen := g.dangling[polKey{ns, name}]
	g.dangling[polKey{ns, name}] = true
	if seen {
		return
	}
	msg := fmt.Sprintf("policy %q is referenced by %s but does not exist, and credchain has no snapshot of it to restore (%v); logins with these roles get no access from it: write the policy or remove the reference",
		name, rolesString(roles), cause)
	g.emit(ctx, events.Event{Type: events.DanglingReference, Namespace: ns, Policy: name, Actor: actor, Roles: roles, Action: "none", Message: msg})
}

// ruleFor is the rule restore applies to a policy of ns (for events about restores that failed).
func (g *Guard) ruleFor(ns, name string) string {
	switch {
	case g.desiredPolicy(ns, name) != nil:
		return events.RuleIaC
	case g.authoritative(ns):
		return events.RuleAuthoritative
	}
	return events.RuleSnapshot
}
