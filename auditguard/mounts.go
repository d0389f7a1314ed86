package auditguard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/credchain/credchain/internal/events"
)

// Changes to the auth mounts themselves. Disabling a Kubernetes auth mount (DELETE sys/auth/<m>)
// deletes every role on it at once and revokes the tokens it issued: every ESO store logging in
// through it fails, the whole chain at once, while each policy is still there. Moving one
// (sys/remount) keeps its roles under the new path, but stores configured with the old path can no
// longer log in — and until the guard re-indexes, its index names roles that are gone: a role
// deleted at the new path stays indexed under the old one, and its policies stay "referenced".
//
// Both entries are hints (the socket is unauthenticated): what changed is read from Vault after
// them. A remount's body (from, to) is HMACed in the audit entry, and Vault 1.21 moves the mount
// asynchronously (it answers with a migration ID, which the entry HMACs too), so after a remount
// the guard polls the Kubernetes auth mounts (one sys/auth read each time) until they change, for
// up to remountWait.

// remountWait bounds how long the guard watches the Kubernetes auth mounts after a remount entry.
// A move takes milliseconds on a quiet Vault; one that revokes many leases takes longer, and one of
// a secrets engine or another auth method never changes them: after this, the next resync (5m)
// catches what was missed.
const remountWait = 30 * time.Second

// remountPoll is the first interval between two polls; it doubles up to remountPollMax.
const (
	remountPoll    = 50 * time.Millisecond
	remountPollMax = 2 * time.Second
)

// onAuthMountChanged handles a logged change of sys/auth/<mount> (enable, tune, disable). Every one
// re-indexes; a disable of a mount the guard knew as a Kubernetes one, once Vault no longer lists
// it, is reported with the roles indexed under it.
func (g *Guard) onAuthMountChanged(ctx context.Context, ns, mount string, e *Entry) {
	if e.Request.Operation != "delete" {
		if err := g.reindex(ctx); err != nil {
			g.log.Error(err, "re-indexing roles after an auth mount change failed")
		}
		return
	}
	roles := g.index.mountRoles(ns, mount)
	known := len(roles) > 0 || slices.Contains(g.cachedKubernetesMounts()[ns], mount)
	now, verr := g.vault.KubernetesMounts(ctx, ns)
	if verr == nil && slices.Contains(now, mount) {
		// The disable failed after all, or the line was not Vault's.
		g.log.Info("auth mount still enabled after a logged disable; nothing to report", "mount", nsMount(ns, mount))
	}
	if err := g.reindex(ctx); err != nil {
		g.log.Error(err, "re-indexing roles after an auth mount change failed")
	}
	if !known || (verr == nil && slices.Contains(now, mount)) {
		return
	}
	actor := g.actor(ctx, e)
	ev := events.Event{Type: events.AuthMountDisabled, Namespace: ns, Object: nsMount(ns, mount), Actor: actor, Roles: roleRefs(mount, roles), Action: "none",
		Message: fmt.Sprintf("Kubernetes auth mount auth/%s/ was disabled by %s: Vault deleted its %s with it and revoked the tokens it issued, so every ESO store logging in through it fails now; %s; enable the mount again, configure it and write its roles again (Vault keeps nothing of a disabled mount, and credchain knows only the roles' policies)",
			mount, actor, countRoles(roles), grantedText(roles))}
	if verr != nil {
		// The guard's own token may have been issued by that mount: Vault revoked it with the rest.
		ev.Error = verr.Error()
		ev.Message += fmt.Sprintf(" (credchain could not confirm with Vault that the mount is gone: %v)", verr)
	}
	g.emit(ctx, ev)
}

// mountRoles returns the roles indexed under one auth mount and their policies.
func (x *Index) mountRoles(ns, mount string) map[string][]string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := map[string][]string{}
	for k, pols := range x.roles {
		if k.ns == ns && k.mount == mount {
			out[k.role] = slices.Clone(pols)
		}
	}
	return out
}

func (g *Guard) cachedKubernetesMounts() map[string][]string {
	out := make(map[string][]string, len(g.k8sMounts))
	for ns, m := range g.k8sMounts {
		out[ns] = slices.Clone(m)
	}
	return out
}

func roleRefs(mount string, roles map[string][]string) []events.RoleRef {
	out := make([]events.RoleRef, 0, len(roles))
	for _, r := range slices.Sorted(maps.Keys(roles)) {
		out = append(out, events.RoleRef{Mount: mount, Name: r})
	}
	return out
}

func countRoles(roles map[string][]string) string {
	switch len(roles) {
	case 0:
		return "roles (none were indexed)"
	case 1:
		return "role " + listNames(slices.Collect(maps.Keys(roles)))
	}
	return fmt.Sprintf("%d roles (%s)", len(roles), listNames(slices.Collect(maps.Keys(roles))))
}

// grantedText names the policies roles referenced (the part of the chain left standing).
func grantedText(roles map[string][]string) string {
	var pols []string
	for _, ps := range roles {
		for _, p := range ps {
			if p != "default" && !slices.Contains(pols, p) {
				pols = append(pols, p)
			}
		}
	}
	if len(pols) == 0 {
		return "they referenced no policy besides default"
	}
	return "the policies they referenced (" + listNames(pols) + ") still exist, but no role credchain guards references them any more"
}

// listNames is names sorted and comma-separated, the first maxListed of them.
func listNames(names []string) string {
	const maxListed = 10
	names = slices.Sorted(slices.Values(names))
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListed], ", "), len(names)-maxListed)
}

// pendingRemount is a remount entry whose effect on the Kubernetes auth mounts is being waited for.
type pendingRemount struct {
	e      *Entry
	before map[string][]string            // namespace → Kubernetes auth mounts, before the move
	roles  map[string]map[string][]string // nsMount → role → policies, before the move
	until  time.Time
	next   time.Duration
}

// onRemount starts watching the Kubernetes auth mounts after a logged sys/remount: the first look
// now, the next ones through the queue (remountPoll, doubling, until remountWait).
func (g *Guard) onRemount(ctx context.Context, e *Entry) {
	p := &pendingRemount{e: e, before: g.cachedKubernetesMounts(), roles: map[string]map[string][]string{},
		until: g.opts.now().Add(remountWait), next: remountPoll}
	for ns, mounts := range p.before {
		for _, m := range mounts {
			p.roles[nsMount(ns, m)] = g.index.mountRoles(ns, m)
		}
	}
	if g.pendingRemounts == nil {
		g.pendingRemounts = map[*pendingRemount]bool{}
	}
	g.pendingRemounts[p] = true
	g.remountCheck(ctx, p)
}

// remountCheck is one look at the Kubernetes auth mounts for a pending remount. Processing
// goroutine only.
func (g *Guard) remountCheck(ctx context.Context, p *pendingRemount) {
	if !g.pendingRemounts[p] {
		return
	}
	now := map[string][]string{}
	for _, ns := range g.seenNamespaces() {
		mounts, err := g.vault.KubernetesMounts(ctx, ns)
		if err != nil {
			g.log.Error(err, "listing auth mounts after a remount")
			now = nil
			break
		}
		now[ns] = mounts
	}
	if now != nil && mountsChanged(p.before, now) {
		delete(g.pendingRemounts, p)
		if err := g.reindex(ctx); err != nil {
			g.log.Error(err, "re-indexing roles after a remount failed")
		}
		g.reportMoved(ctx, p, now)
		return
	}
	if !g.opts.now().Before(p.until) {
		delete(g.pendingRemounts, p)
		g.log.V(1).Info("no Kubernetes auth mount moved after a remount; it moved something else, or the next resync sees it", "waited", remountWait)
		return
	}
	wait := p.next
	p.next = min(p.next*2, remountPollMax)
	time.AfterFunc(wait, func() { g.enqueueRemountCheck(ctx, p) })
}

func (g *Guard) enqueueRemountCheck(ctx context.Context, p *pendingRemount) {
	if ctx.Err() != nil {
		return
	}
	select {
	case g.queue <- work{kind: workRemountCheck, remount: p, arrived: g.opts.now()}:
	default: // full: try again shortly
		time.AfterFunc(100*time.Millisecond, func() { g.enqueueRemountCheck(ctx, p) })
	}
}

func mountsChanged(before, now map[string][]string) bool {
	for _, ns := range slices.Sorted(maps.Keys(now)) {
		a, b := slices.Sorted(slices.Values(before[ns])), slices.Sorted(slices.Values(now[ns]))
		if !slices.Equal(a, b) {
			return true
		}
	}
	return false
}

// reportMoved sends auth.mount_moved for each Kubernetes auth mount no longer where it was. Where
// it went is known when exactly one mount went and one came (the body naming it is HMACed).
func (g *Guard) reportMoved(ctx context.Context, p *pendingRemount, now map[string][]string) {
	var gone, came []string // nsMount
	nsOf := map[string]string{}
	for ns := range now {
		for _, m := range p.before[ns] {
			if !slices.Contains(now[ns], m) {
				gone = append(gone, nsMount(ns, m))
				nsOf[nsMount(ns, m)] = ns
			}
		}
		for _, m := range now[ns] {
			if !slices.Contains(p.before[ns], m) {
				came = append(came, nsMount(ns, m))
			}
		}
	}
	slices.Sort(gone)
	if len(gone) == 0 {
		return // a mount moved in from a namespace the guard does not guard: re-indexed, nothing broke here
	}
	to := "elsewhere (Kubernetes auth mounts now: " + listNames(came) + ")"
	if len(gone) == 1 && len(came) == 1 {
		to = "to " + came[0] + "/"
	} else if len(came) == 0 {
		to = "out of the namespaces credchain guards"
	}
	actor := g.actor(ctx, p.e)
	for _, from := range gone {
		ns := nsOf[from]
		mount := strings.TrimPrefix(strings.TrimPrefix(from, ns+"/"), "auth/")
		roles := p.roles[from]
		g.emit(ctx, events.Event{Type: events.AuthMountMoved, Namespace: ns, Object: from, Actor: actor, Roles: roleRefs(mount, roles), Action: "none",
			Message: fmt.Sprintf("Kubernetes auth mount %s/ was moved %s by %s (sys/remount): Vault revoked the tokens it issued, and ESO stores still configured with mount path %s cannot log in; point them at the new path, or move the mount back; its %s moved with it, and credchain guards the new path",
				from, to, actor, mount, countRoles(roles))})
	}
}

// referenceScope says where the guard looked for references to a policy, for the events that
// report it found none: only the roles of the Kubernetes auth mounts it indexed. A policy can be
// granted by much else — another auth method's roles or users (userpass, AppRole, OIDC), an
// identity group, a token role, a token created with it — none of which the guard reads; "no role
// references it" would tell the reader a policy is unused when it may be what a CI job logs in
// with.
func (g *Guard) referenceScope(ns string) string {
	mounts := g.cachedKubernetesMounts()[ns]
	slices.Sort(mounts)
	var read, unreadable []string
	for _, m := range mounts {
		if g.unreadable[nsMount(ns, m)] {
			unreadable = append(unreadable, "auth/"+m+"/")
		} else {
			read = append(read, "auth/"+m+"/")
		}
	}
	const notChecked = "other auth methods, identity groups and token roles are not checked"
	switch {
	case len(mounts) == 0:
		return "no Kubernetes auth mount is enabled, so no Kubernetes auth role references it (" + notChecked + ")"
	case len(unreadable) == 0:
		return "no Kubernetes auth role on " + strings.Join(read, ", ") + " references it (" + notChecked + ")"
	case len(read) == 0:
		return "no Kubernetes auth role credchain last read references it (the roles of " + strings.Join(unreadable, ", ") + " cannot be read now; " + notChecked + ")"
	}
	return "no Kubernetes auth role on " + strings.Join(read, ", ") + " references it (the roles of " + strings.Join(unreadable, ", ") + " cannot be read now and were last read without it, if ever; " + notChecked + ")"
}
