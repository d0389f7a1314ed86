package auditguard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/credchain/credchain/internal/events"
)

// Keeping the index and snapshots current (role changes, full resyncs) and repairing what the
// stream missed (reconcile).

func (g *Guard) onRoleChanged(ctx context.Context, ns, ref, op string) {
	mount, role, _ := strings.Cut(ref, "/")
	if !g.isKubernetesMount(ctx, ns, mount) {
		return
	}
	if op == "delete" {
		g.index.DeleteRole(ns, mount, role)
		g.updateIndexMetrics()
		return
	}
	pols, found, err := g.vault.RolePolicies(ctx, ns, mount, role)
	if err != nil {
		g.log.Error(err, "re-reading role after a write", "mount", mount, "role", role)
		return
	}
	if !found {
		g.index.DeleteRole(ns, mount, role)
		g.updateIndexMetrics()
		return
	}
	g.index.SetRole(ns, mount, role, pols)
	g.updateIndexMetrics()
	// A role written with a policy that doesn't exist: the login succeeds and silently lacks access.
	existing, err := g.vault.ListPolicies(ctx, ns)
	if err != nil {
		g.log.Error(err, "listing policies after a role write")
		return
	}
	for _, p := range pols {
		p = PolicyName(p)
		if p == "default" || slices.Contains(existing, p) {
			continue
		}
		if _, err := g.store.GetSnapshot(ns, p); err == nil || g.desiredPolicy(ns, p) != nil || g.authoritative(ns) {
			// Deleted earlier while unreferenced; the new reference makes it worth restoring
			// (or reporting, when the desired state is authoritative and lacks it).
			g.restore(ctx, ns, p, g.index.RolesFor(ns, p), g.opts.now(), nil)
			continue
		}
		g.danglingEvent(ctx, ns, p, g.index.RolesFor(ns, p), nil, ErrNoSnapshot)
	}
}

func (g *Guard) isKubernetesMount(ctx context.Context, ns, mount string) bool {
	mounts, ok := g.k8sMounts[ns]
	if !ok || !slices.Contains(mounts, mount) {
		// Unknown here: a mount whose sys/auth entry the guard missed (dropped while it fell
		// behind), or a role on another auth method (AppRole...), which is rare enough to ask.
		var err error
		if mounts, err = g.vault.KubernetesMounts(ctx, ns); err != nil {
			g.log.Error(err, "listing auth mounts")
			return false
		}
		g.setKubernetesMounts(ns, mounts)
	}
	return slices.Contains(mounts, mount)
}

func (g *Guard) setKubernetesMounts(ns string, mounts []string) {
	if g.k8sMounts == nil {
		g.k8sMounts = map[string][]string{}
	}
	g.k8sMounts[ns] = mounts
}

// ownWriteWindow bounds how long after a restore an update entry of the policy is taken for the
// restore's own: Vault logs the write's response right after it, so in practice within
// milliseconds; beyond this, an entry is another writer's.
const ownWriteWindow = 10 * time.Second

// ownWrite reports whether a logged write of k is one of the guard's own restores, using up its
// mark. More than one restore of a policy can be in flight — a delete's, then a reconcile's that
// found the policy missing again before the first one's entry was processed — so there is a mark
// per restore, used oldest first; marks older than ownWriteWindow are dropped (their entries were
// lost). With one mark per policy, the first entry used it up and the second was taken for
// someone else's write, whose read-back then found the policy deleted again and held the snapshot
// as superseded: a referenced policy was never restored again (TestOwnWritesInFlight).
func (g *Guard) ownWrite(k polKey) bool {
	now := g.opts.now()
	marks := g.ownWrites[k]
	for len(marks) > 0 && now.Sub(marks[0]) >= ownWriteWindow {
		marks = marks[1:]
	}
	own := len(marks) > 0
	if own {
		marks = marks[1:]
	}
	if len(marks) == 0 {
		delete(g.ownWrites, k)
	} else {
		g.ownWrites[k] = marks
	}
	return own
}

// markOwnWrite records a policy write of the guard's own, whose audit entry ownWrite then skips.
func (g *Guard) markOwnWrite(k polKey) { g.ownWrites[k] = append(g.ownWrites[k], g.opts.now()) }

// onPolicyWritten handles a logged create/update: the new body is read back into the snapshot.
// When that read does not find the policy (deleted again before the guard got to it) or fails, the
// snapshot is older than the write Vault logged, and restoring it could revert that write (an
// admin's hardening, undone by anyone with delete rights): it is held (HoldSuperseded). The
// guard's own writes (restores, drift corrections) are not read back: their bodies are known, and
// a correction read back as someone's write would be the guard fighting itself. A desired policy's
// body is compared with its desired body (drift.go), against the newest desired state. Then the
// body before and after are compared for what ESO's requests lose (weakened.go).
func (g *Guard) onPolicyWritten(ctx context.Context, ns, name string, e *Entry) {
	if g.ownWrite(polKey{ns, name}) {
		return
	}
	old := g.weakenBase(ns, name)
	body, found := g.snapshot(ctx, ns, name, "audit", e)
	if !found {
		g.hold(ns, name, Hold{Reason: HoldSuperseded, At: entryTime(e, g.opts.now()), Actor: actorOf(e)})
		return
	}
	if g.desiredPolicy(ns, name) != nil {
		g.refreshDesired(ctx)
		if dp := g.desiredPolicy(ns, name); dp != nil {
			g.checkDrift(ctx, ns, dp, body, e)
		}
	}
	g.checkWeakened(ctx, ns, name, old, body, e)
}

// snapshot re-reads one policy and stores its body (clearing a hold: the policy exists). e is the
// write's audit entry, nil for a resync. It returns the body and whether the read found the
// policy.
func (g *Guard) snapshot(ctx context.Context, ns, name, source string, e *Entry) (string, bool) {
	body, found, err := g.vault.ReadPolicy(ctx, ns, name)
	if err != nil {
		g.log.Error(err, "re-reading policy after a write", "policy", name)
		return "", false
	}
	if !found {
		return "", false
	}
	var writer *events.Actor
	if e != nil {
		writer = actorOf(e)
	}
	if err := g.store.PutSnapshot(Snapshot{Namespace: ns, Name: name, Body: body,
		Meta: events.Provenance{ReadAt: g.opts.now().UTC(), Source: source, Writer: writer}}); err != nil {
		g.log.Error(err, "storing policy snapshot", "policy", name)
	}
	return body, true
}

// hold puts a hold on a policy's snapshot (logged; without a snapshot there is nothing to hold).
func (g *Guard) hold(ns, name string, h Hold) {
	held, err := g.store.HoldSnapshot(ns, name, h)
	if err != nil {
		g.log.Error(err, "holding policy snapshot", "policy", name)
		return
	}
	if held {
		g.log.Info("policy snapshot held: it will not be written back", "policy", name, "namespace", ns, "reason", string(h.Reason))
	}
}

func entryTime(e *Entry, now time.Time) time.Time {
	if e != nil && !e.Time.IsZero() {
		return e.Time
	}
	return now
}

// resync rebuilds the index and refreshes every policy snapshot from the API.
func (g *Guard) resync(ctx context.Context, source string) error {
	if err := g.refreshNamespaces(ctx); err != nil {
		// Not fatal: a guard that cannot list namespaces (Community Edition answers 404, which
		// is no error; a policy without list on sys/namespaces is one) guards those it knows.
		g.log.Error(err, "listing Vault namespaces; guarding those already known")
	}
	errs := []error{g.reindex(ctx)}
	for _, ns := range g.seenNamespaces() {
		pols, err := g.vault.ListPolicies(ctx, ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range pols {
			if p == "root" {
				continue
			}
			g.snapshot(ctx, ns, p, source, nil)
		}
	}
	g.checkAuditDevices(ctx)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	g.metrics.LastResync.SetToCurrentTime()
	return nil
}

// reindex rebuilds the policy → role index from every Kubernetes auth mount's roles. It is what an
// auth mount change needs: a full resync would also re-read every policy, holding up the deletes
// queued behind it. Its error is for a namespace whose auth mounts cannot be listed (nothing can be
// indexed there); one mount whose roles cannot be read — a nested mount (auth/clusters/prod/) the
// shipped policy's auth/+/role does not cover, a permission error — only degrades the guard
// (unreadableMount): its roles keep their last indexed policies, every other mount is indexed, and
// start-up goes on. Stopping at it would leave the guard never ready, guarding nothing.
func (g *Guard) reindex(ctx context.Context) error {
	var errs []error
	unreadable := map[string]error{}
	for _, ns := range g.seenNamespaces() {
		mounts, err := g.vault.KubernetesMounts(ctx, ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.setKubernetesMounts(ns, mounts)
		roles := map[events.RoleRef][]string{}
		var keep []string
	mount:
		for _, m := range mounts {
			names, err := g.vault.ListRoles(ctx, ns, m)
			if err != nil {
				unreadable[nsMount(ns, m)], keep = err, append(keep, m)
				continue
			}
			read := map[events.RoleRef][]string{}
			for _, r := range names {
				pols, found, err := g.vault.RolePolicies(ctx, ns, m, r)
				if err != nil {
					unreadable[nsMount(ns, m)], keep = err, append(keep, m)
					continue mount // never replace a mount's good index with a partial one
				}
				if found {
					read[events.RoleRef{Mount: m, Name: r}] = pols
				}
			}
			maps.Copy(roles, read)
		}
		g.index.ReplaceKeeping(ns, roles, keep)
	}
	g.updateIndexMetrics()
	g.setUnreadableMounts(ctx, unreadable)
	return errors.Join(errs...)
}

func nsMount(ns, mount string) string {
	if ns == "" {
		return "auth/" + mount
	}
	return ns + "/auth/" + mount
}

// setUnreadableMounts records which mounts the last re-index could not read: the gauge, a log line
// each time, and one event when a mount becomes unreadable (not on every resync after).
func (g *Guard) setUnreadableMounts(ctx context.Context, now map[string]error) {
	g.metrics.UnreadableMounts.Set(float64(len(now)))
	for _, m := range slices.Sorted(maps.Keys(now)) {
		err := now[m]
		g.log.Error(err, "cannot read a Kubernetes auth mount's roles; guarding the others", "mount", m)
		if g.unreadable[m] {
			continue
		}
		g.emit(ctx, events.Event{Type: events.AuthMountUnreadable, Object: m, Action: "none", Error: err.Error(),
			Message: fmt.Sprintf("credchain cannot read the roles of Kubernetes auth mount %s (%v): deletes of policies only its roles reference are not restored; grant the guard list on %s/role and read on %s/role/* (manifests/vault/auditguard-policy.hcl covers one-segment mounts)",
				m, err, m, m)})
	}
	g.unreadable = map[string]bool{}
	for m := range now {
		g.unreadable[m] = true
	}
}

// reconcile repairs what the stream missed — deletes made while the guard was down, while the
// audit device was off, or whose entries were dropped: every desired policy missing from Vault or
// drifted (reconcileDesired), then every referenced policy missing from Vault, by restore's rules.
// reindexReplica re-reads the roles when this replica gains a Vault connection or the lead
// (replicas only, WithLeader): until then Vault sent its entries to another replica, so role
// writes this replica's index never saw may make a delete arriving next look unreferenced. The
// work item is queued before the new connection's lines, so they meet the fresh index.
func (g *Guard) reindexReplica(ctx context.Context) {
	if g.opts.leader == nil {
		return
	}
	if err := g.reindex(ctx); err != nil {
		g.log.Error(err, "re-reading the roles after gaining a Vault connection or the lead")
	}
}

func (g *Guard) reconcile(ctx context.Context) {
	if g.opts.leader != nil && !g.opts.leader() {
		return // another replica reconciles
	}
	defer g.metrics.Reconciles.Inc()
	if g.standbyNode(ctx) {
		return
	}
	g.recoverIntents(ctx)
	for _, ns := range g.seenNamespaces() {
		existing, err := g.vault.ListPolicies(ctx, ns)
		if err != nil {
			g.log.Error(err, "reconcile: listing policies")
			continue
		}
		g.reconcileDesired(ctx, ns, existing)
		for _, p := range g.index.Referenced(ns) {
			if p == "default" || slices.Contains(existing, p) || g.desiredPolicy(ns, p) != nil {
				continue
			}
			g.restore(ctx, ns, p, g.index.RolesFor(ns, p), g.opts.now(), nil)
		}
	}
}

// reconcileDesired restores the desired policies of ns missing from existing and reads the others
// back to compare them with their desired bodies: one read per desired policy per pass, because
// a dropped write entry leaves the snapshot as stale as the index.
func (g *Guard) reconcileDesired(ctx context.Context, ns string, existing []string) {
	if ns != "" || g.desired == nil {
		return // the desired state is the guard's own namespace's (desired.go)
	}
	for _, name := range slices.Sorted(maps.Keys(g.desired.Policies)) {
		dp := g.desired.Policies[name]
		if !slices.Contains(existing, name) {
			g.restore(ctx, ns, name, g.index.RolesFor(ns, name), g.opts.now(), nil)
			continue
		}
		body, found, err := g.vault.ReadPolicy(ctx, ns, name)
		switch {
		case err != nil:
			g.log.Error(err, "reconcile: reading a desired policy", "policy", name)
		case !found:
			g.restore(ctx, ns, name, g.index.RolesFor(ns, name), g.opts.now(), nil)
		default:
			g.checkDrift(ctx, ns, dp, body, nil)
		}
	}
}
