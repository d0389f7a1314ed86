package auditguard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/credchain/credchain/internal/events"
)

// Active roles (issue 15 item 2). A policy that only dead roles still name is not worth keeping:
// deleting it is the cleanup the incident was, and restoring it would block that cleanup forever.
// A role is active when an ESO store in the watched cluster logs in with it (the blast radius's
// chain model knows, with --blast-radius) or it logged in within --active-window. Logins are
// learned from the response entries of logins on the Kubernetes auth mounts the index knows: the
// plugin logs the role in plain text in auth.metadata.role. Until the guard has watched for a
// whole window (since it first started on its state directory, persisted) it cannot know that a
// role did not log in, so every role counts as active. A forged login line can only make a role
// active, which restores more, never less.

// loginCoalesce is how often one role's last login is written to the state store at most: ESO
// logs in on every refresh of every store, and a disk write per login would cost an fsync on the
// guard's hot path. A crash loses at most this much of a role's last login, nothing against a
// window of days.
const loginCoalesce = time.Minute

// roleActive is the decision for one role: window ≤ 0 turns the rule off; before the guard has
// watched a whole window every role is active; else it is active when an ESO store uses it or its
// last login (zero: never seen) is within the window.
func roleActive(window time.Duration, since, now time.Time, inUse bool, last time.Time) bool {
	switch {
	case window <= 0, now.Sub(since) < window, inUse:
		return true
	}
	return !last.IsZero() && now.Sub(last) < window
}

// activity is what the guard knows of logins, owned by the processing goroutine: each role's last
// login, when it was last written to the store, and since when the guard has watched.
type activity struct {
	window  time.Duration
	since   time.Time
	last    map[roleKey]time.Time
	written map[roleKey]time.Time
	dirty   map[roleKey]bool
}

func newActivity(window time.Duration, since time.Time) *activity {
	return &activity{window: window, since: since, last: map[roleKey]time.Time{}, written: map[roleKey]time.Time{}, dirty: map[roleKey]bool{}}
}

// login records a role's login at t, written through to s unless the role's last write is less
// than loginCoalesce old (then flush writes it later).
func (a *activity) login(s State, k roleKey, t time.Time) error {
	if !t.After(a.last[k]) {
		return nil
	}
	a.last[k] = t
	if w, ok := a.written[k]; ok && t.Sub(w) < loginCoalesce {
		a.dirty[k] = true
		return nil
	}
	delete(a.dirty, k)
	a.written[k] = t
	return s.PutLogins(map[roleKey]time.Time{k: t})
}

// flush writes the coalesced logins whose last write is at least loginCoalesce old at now, or
// all of them when all is set (the guard stops).
func (a *activity) flush(s State, now time.Time, all bool) error {
	batch := map[roleKey]time.Time{}
	for k := range a.dirty {
		if all || now.Sub(a.written[k]) >= loginCoalesce {
			batch[k] = a.last[k]
			a.written[k] = now
			delete(a.dirty, k)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return s.PutLogins(batch)
}

// loginOf returns the auth mount and the (lower-cased, as the plugin stores it) role of a
// successful Kubernetes login's response entry: path auth/<mount>/login, role in the auth metadata.
func loginOf(e *Entry) (mount, role string, ok bool) {
	p, found := strings.CutPrefix(e.Request.Path, "auth/")
	if !found || e.Type != "response" || e.Error != "" {
		return "", "", false
	}
	mount, found = strings.CutSuffix(p, "/login")
	role = strings.ToLower(e.Auth.Metadata["role"])
	return mount, role, found && mount != "" && role != ""
}

// hasRole reports whether the index holds role k (on a Kubernetes auth mount it read).
func (x *Index) hasRole(k roleKey) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.roles[k]
	return ok
}

// loadActivity reads the logins and the watching-since time from the store, setting the latter
// on the guard's first start. A store that cannot be read leaves every role active (the window
// starts now): the guard then restores as it did before the rule.
func (g *Guard) loadActivity() {
	now := g.opts.now()
	since, ok, err := g.store.WatchingSince()
	if err == nil && !ok {
		since, err = now, g.store.SetWatchingSince(now)
	}
	if err != nil {
		g.log.Error(err, "reading when the guard started watching logins; every role counts as active for a whole window")
		since = now
	}
	a := newActivity(g.opts.activeWindow, since)
	logins, err := g.store.Logins()
	if err != nil {
		g.log.Error(err, "reading the roles' last logins")
	}
	for k, t := range logins {
		a.last[k], a.written[k] = t, t
	}
	g.activity = a
}

// onLogin records a Kubernetes login's response entry for a role the index knows (its time from
// the entry, never later than now: a line is a hint).
func (g *Guard) onLogin(ns string, e *Entry) {
	mount, role, ok := loginOf(e)
	k := roleKey{ns, mount, role}
	if !ok || g.activity == nil || !g.index.hasRole(k) {
		return
	}
	now := g.opts.now()
	t := entryTime(e, now)
	if t.After(now) {
		t = now
	}
	if err := g.activity.login(g.store, k, t); err != nil {
		g.log.Error(err, "storing a role's last login", "mount", mount, "role", role)
	}
}

// flushLogins writes the coalesced logins due (each reconcile tick), or all of them (at stop).
func (g *Guard) flushLogins(all bool) {
	if g.activity == nil {
		return
	}
	if err := g.activity.flush(g.store, g.opts.now(), all); err != nil {
		g.log.Error(err, "storing the roles' last logins")
	}
}

// roleActivity decides the active-role rule for the roles referencing a missing policy: the role
// that makes it worth restoring and why (the event's Active), or inactive = roles when none of
// them is active. Both are nil when the rule cannot decide — it is off, or the stores are not
// known (--blast-radius not synced, the chain model unreadable) — and the snapshot rule restores
// as before it. Stores name roles by mount and name, not Vault namespace: a store using a role of
// that name on that mount makes it active in every namespace.
func (g *Guard) roleActivity(ctx context.Context, ns string, roles []events.RoleRef) (active *events.ActiveRole, inactive []events.RoleRef) {
	a, now := g.activity, g.opts.now()
	if len(roles) == 0 || a == nil || a.window <= 0 {
		return nil, nil
	}
	if now.Sub(a.since) < a.window {
		since := a.since
		return &events.ActiveRole{Role: roles[0], Why: events.ActiveUnwatched, Since: &since}, nil
	}
	// Logins first: they are a map lookup, while the stores need the chain model built from the
	// caches — milliseconds on a large cluster, on the restore's path, before the write.
	if r, last, ok := a.recentLogin(ns, roles, now); ok {
		return &events.ActiveRole{Role: r, Why: events.ActiveByLogin, LastLogin: &last}, nil
	}
	// Before leaving a delete alone, the logins other replicas stored (a shared state): this
	// replica saw only the logins Vault sent it. One read, on the rare path only.
	g.mergeStoredLogins()
	if r, last, ok := a.recentLogin(ns, roles, now); ok {
		return &events.ActiveRole{Role: r, Why: events.ActiveByLogin, LastLogin: &last}, nil
	}
	users, known := g.storesByRole(ctx)
	if !known {
		return nil, nil
	}
	for _, r := range roles {
		if s, ok := users[r]; ok {
			return &events.ActiveRole{Role: r, Why: events.ActiveByStore, Store: s}, nil
		}
	}
	r, s, known := g.inventoryStoreUsing(roles)
	switch {
	case !known:
		return nil, nil
	case s != "":
		return &events.ActiveRole{Role: r, Why: events.ActiveByStore, Store: s}, nil
	}
	return nil, roles
}

// recentLogin returns the first of roles that logged in within the window, with its last login.
func (a *activity) recentLogin(ns string, roles []events.RoleRef, now time.Time) (events.RoleRef, time.Time, bool) {
	for _, r := range roles {
		if last := a.last[roleKey{ns, r.Mount, r.Name}]; roleActive(a.window, a.since, now, false, last) {
			return r, last, true
		}
	}
	return events.RoleRef{}, time.Time{}, false
}

// mergeStoredLogins takes the later of each role's stored and remembered last login.
func (g *Guard) mergeStoredLogins() {
	logins, err := g.store.Logins()
	if err != nil {
		g.log.Error(err, "reading the roles' last logins other replicas stored")
		return
	}
	for k, t := range logins {
		if t.After(g.activity.last[k]) {
			g.activity.last[k] = t
		}
	}
}

// storesByRole names, for each Kubernetes auth role an ESO store in the watched cluster logs in
// with, one such store ("SecretStore prod/vault-backend"). known is false when the stores cannot
// be known: --blast-radius is set but not synced yet, or the chain model cannot be read. Without
// --blast-radius no store is known to use any role (only logins count).
func (g *Guard) storesByRole(ctx context.Context) (users map[events.RoleRef]string, known bool) {
	b := g.blast.Load()
	if b == nil {
		return nil, !g.opts.blastConfigured
	}
	m, err := b.Model(ctx)
	if err != nil {
		g.log.Error(err, "reading the chain model; counting every role as active")
		return nil, false
	}
	users = map[events.RoleRef]string{}
	for _, s := range m.Stores {
		r, ok := s.KubernetesRole()
		if !ok {
			continue
		}
		ref := events.RoleRef{Mount: r.Mount, Name: r.Name}
		if _, seen := users[ref]; !seen {
			users[ref] = events.ObjectRef{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name}.String()
		}
	}
	return users, true
}

// inactiveDelete reports a missing policy that only inactive roles name: the delete was a cleanup,
// so it is not undone. A delete entry is confirmed by a read first; reconcile (e == nil) reports
// it once until the state changes. If one of the roles becomes active again (it logs in), the
// next reconcile restores the policy from its snapshot.
func (g *Guard) inactiveDelete(ctx context.Context, ns, name string, roles []events.RoleRef, e *Entry) {
	actor, report := g.leftDeleted(ctx, ns, name, roles, e)
	if !report {
		return
	}
	g.emit(ctx, events.Event{Type: events.PolicyDeleted, Namespace: ns, Policy: name, Actor: actor, Roles: roles, Action: "recorded",
		Rule: events.RuleInactiveRole,
		Message: fmt.Sprintf("policy %q was deleted by %s; it is referenced only by inactive Kubernetes auth roles (%s), no ESO store uses them and none logged in within %s, so credchain left it deleted",
			name, whoDeleted(actor), g.lastLogins(ns, roles), g.activity.window)})
}

// lastLogins names each role with its last login, "never seen" when the guard saw none.
func (g *Guard) lastLogins(ns string, roles []events.RoleRef) string {
	parts := make([]string, len(roles))
	for i, r := range roles {
		last := "never seen"
		if t, ok := g.activity.last[roleKey{ns, r.Mount, r.Name}]; ok {
			last = "last login " + t.UTC().Format(time.RFC3339)
		}
		parts[i] = "auth/" + r.Mount + "/role/" + r.Name + ": " + last
	}
	return strings.Join(parts, "; ")
}
