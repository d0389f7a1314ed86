package auditguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/vaultacl"
)

// Neutering updates (issue 15 item 3): a write that leaves a policy in place but takes away what
// ESO reads through it breaks the same ExternalSecrets a delete would, with no delete to restore.
// When a policy a Kubernetes auth role references is written and the guard has a cluster
// (--blast-radius), every ExternalSecret whose store logs in with such a role has its requests
// (chain.VaultRequests: what ESO v0.16.2 asks Vault for it) evaluated against the role's policies
// twice, with the policy's body before the write (the guard's snapshot) and after (read back):
// a request allowed before and not after is lost, and policy.weakened names each, with the blast
// radius of those ExternalSecrets only. The cost is one ACL pair per affected role and
// O(ExternalSecrets × items) requests, on the processing goroutine: a policy write is rare.
//
// Limits. Only the written policy changes between the two evaluations, so what the login needs
// (the role, its bindings) is not looked at: a policy write does not change it. The role's
// policies are the index's (token_policies ∪ policies) plus "default", which the index does not
// know the role drops (token_no_default_policy): a request only default grants is then taken as
// allowed both times, never as lost. The other policies' bodies are the guard's snapshots.
// Restrictions (allowed_parameters, wrapping TTLs) and templated paths are not judged, only
// capabilities: `credchain check` judges them. A store's Vault namespace (its auth namespace,
// else its provider's) must be the written policy's.

// weakenBase is the policy's snapshot before a write, for checkWeakened: nil when no weakening
// can be told (no cluster, no role referencing the policy, the store unreadable); one with an
// empty body when the guard had none — a create, over a role's dangling reference, can still
// take access away with a deny. Read before the write's read-back replaces the snapshot.
func (g *Guard) weakenBase(ns, name string) *Snapshot {
	if g.blast.Load() == nil || len(g.index.RolesFor(ns, name)) == 0 {
		return nil
	}
	snap, err := g.store.GetSnapshot(ns, name)
	switch {
	case errors.Is(err, ErrNoSnapshot):
		return &Snapshot{Namespace: ns, Name: name}
	case err != nil:
		g.log.Error(err, "reading a policy snapshot; not checking what its write takes from ESO", "policy", name)
		return nil
	}
	return &snap
}

// checkWeakened reports a write of policy name from old (weakenBase) to body that takes away a
// request ESO makes (policy.weakened). It runs after the drift check, so that a desired policy's
// event says what the drift handling did.
func (g *Guard) checkWeakened(ctx context.Context, ns, name string, old *Snapshot, body string, e *Entry) {
	b := g.blast.Load()
	if old == nil || b == nil || old.Body == body {
		return
	}
	roles := map[chain.RoleRef][]string{}
	for _, r := range g.index.RolesFor(ns, name) {
		roles[chain.RoleRef{Mount: r.Mount, Name: r.Name}] = g.index.policiesOf(ns, r.Mount, r.Name)
	}
	before, after, err := g.weakenSets(ns, name, old.Body, body, roles)
	if err != nil {
		// Vault accepted what the evaluator refuses: a disagreement to fix in vaultacl.
		g.log.Error(err, "internal error: parsing a policy Vault holds; not checking what its write takes from ESO", "policy", name)
		return
	}
	m, err := b.Model(ctx)
	if err != nil {
		g.log.Error(err, "listing the cluster's ESO objects; not checking what a policy write takes from ESO", "policy", name)
		return
	}
	lost := lostAccess(m, ns, roles, before, after)
	if len(lost) == 0 {
		return
	}
	ev := events.Event{Type: events.PolicyWeakened, Namespace: ns, Policy: name, Actor: g.actor(ctx, e), Action: "none",
		Rule: events.RuleSnapshot, BlastRadius: lostImpact(m, lost)}
	if old.Body != "" {
		ev.SnapshotFrom = &old.Meta
	}
	for _, l := range lost {
		ev.Lost = append(ev.Lost, l.access)
		if r := l.access.Role; !slices.Contains(ev.Roles, r) {
			ev.Roles = append(ev.Roles, r)
		}
	}
	done := "credchain wrote nothing back (the desired state does not define it: --desired-policies or --terraform would)"
	if dp := g.desiredPolicy(ns, name); dp != nil {
		done = g.weakenedDesired(&ev, dp, after[name])
	}
	ev.Message = fmt.Sprintf("policy %q was changed by %s so that ESO is no longer allowed %s; %s",
		name, whoDeleted(ev.Actor), lostSummary(ev.Lost), done)
	g.emit(ctx, ev)
}

// weakenedDesired sets what decided about a weakened desired policy, after checkDrift: a body
// that is not the desired one is drift (corrected with --correct-drift), else the IaC itself
// took the access away. It returns the sentence saying so.
func (g *Guard) weakenedDesired(ev *events.Event, dp *DesiredPolicy, got *vaultacl.Policy) string {
	prov := g.desiredProvenance(dp)
	ev.Rule, ev.SnapshotFrom = events.RuleIaC, &prov
	if got == nil || compareRules(dp.Policy, got) == nil {
		ev.Reason = "desired_body"
		return fmt.Sprintf("the new body is its desired body (%s): the IaC itself takes this away", dp.Origin)
	}
	ev.Reason = "drift"
	if g.opts.correctDrift && g.drifted[polKey{ev.Namespace, dp.Name}] == "" {
		ev.Action = "corrected"
		return fmt.Sprintf("it differs from its desired body (%s), which credchain wrote back (policy.drifted)", dp.Origin)
	}
	return fmt.Sprintf("it differs from its desired body (%s): see policy.drifted", dp.Origin)
}

// weakenSets are the role's policies as Vault held them before the write and after: the guard's
// snapshots, with the written policy's old and new bodies. A snapshot that does not parse is left
// out of both (logged); one of the written policy is an error.
func (g *Guard) weakenSets(ns, name, old, body string, roles map[chain.RoleRef][]string) (before, after vaultacl.Set, err error) {
	before, after = vaultacl.Set{name: nil}, vaultacl.Set{}
	if old != "" { // else created: absent before
		if before[name], err = vaultacl.Parse(name, "vault", old); err != nil {
			return nil, nil, err
		}
	}
	if after[name], err = vaultacl.Parse(name, "vault", body); err != nil {
		return nil, nil, err
	}
	for _, pols := range roles {
		for _, p := range append(slices.Clone(pols), "default") {
			if _, done := before[p]; done {
				continue
			}
			snap, err := g.store.GetSnapshot(ns, p)
			if err != nil {
				before[p], after[p] = nil, nil // dangling both times (marks p done)
				continue
			}
			pol, err := vaultacl.Parse(p, "vault", snap.Body)
			if err != nil {
				g.log.Error(err, "internal error: parsing a policy snapshot; leaving it out of what a write takes from ESO", "policy", p)
			}
			before[p], after[p] = pol, pol
		}
	}
	return before, after, nil
}

// policiesOf returns a role's policies as indexed (token_policies ∪ policies, normalised).
func (x *Index) policiesOf(ns, mount, role string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Clone(x.roles[roleKey{ns, mount, role}])
}

// lostImpact is the blast radius of the ExternalSecrets that lost access only: their stores, the
// Secrets they write and the workloads pulling with those.
func lostImpact(m *chain.Model, lost []lostRequest) *events.BlastRadius {
	var im chain.Impact
	for _, l := range lost {
		es := l.es
		im.ExternalSecrets = append(im.ExternalSecrets, chain.Ref{Kind: "ExternalSecret", Namespace: es.Namespace, Name: es.Name})
		for _, k := range chain.ItemStores(es) {
			if s := m.Store(k); s != nil {
				if r, ok := s.KubernetesRole(); ok && strings.ToLower(r.Name) == l.access.Role.Name && r.Mount == l.access.Role.Mount {
					im.Stores = append(im.Stores, chain.Ref{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name})
				}
			}
		}
		if !es.Writes() {
			continue
		}
		im.Secrets = append(im.Secrets, chain.Ref{Kind: "Secret", Namespace: es.Namespace, Name: es.TargetName()})
		for _, w := range m.WorkloadsUsing(es.Namespace, es.TargetName()) {
			im.Workloads = append(im.Workloads, w.Ref())
		}
	}
	return &events.BlastRadius{Stores: sortedRefs(im.Stores), ExternalSecrets: sortedRefs(im.ExternalSecrets),
		Secrets: sortedRefs(im.Secrets), Workloads: sortedRefs(im.Workloads)}
}

func sortedRefs(refs []chain.Ref) []events.ObjectRef {
	out := chain.ObjectRefs(refs)
	slices.SortFunc(out, func(a, b events.ObjectRef) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// lostSummary is what was lost in words, its first few requests: `read on
// "registry-creds/data/order-service" for ExternalSecret prod/order-service (spec.data[0]...)`.
func lostSummary(ls []events.LostAccess) string {
	const show = 3
	var parts []string
	for _, l := range ls[:min(len(ls), show)] {
		parts = append(parts, fmt.Sprintf("%s on %q for %s (%s, as auth/%s/role/%s)", l.Capability, l.Path,
			l.ExternalSecret, l.Why, l.Role.Mount, l.Role.Name))
	}
	if len(ls) > show {
		parts = append(parts, fmt.Sprintf("and %d more", len(ls)-show))
	}
	return strings.Join(parts, "; ")
}

// lostRequest is one request an ExternalSecret lost, with the ExternalSecret for its blast radius.
type lostRequest struct {
	es     *chain.ExternalSecret
	access events.LostAccess
}

// lostAccess returns what ESO's requests lose from before to after, for the ExternalSecrets whose
// stores (in Vault namespace ns) log in with one of roles (each with its policies), sorted by
// ExternalSecret, then in the order ESO makes the requests.
func lostAccess(m *chain.Model, ns string, roles map[chain.RoleRef][]string, before, after vaultacl.Set) []lostRequest {
	stores := map[chain.StoreKey]chain.RoleRef{}
	for _, s := range m.Stores {
		r, ok := s.KubernetesRole()
		r.Name = strings.ToLower(r.Name) // Vault's Kubernetes auth lower-cases role names (Classify)
		if _, on := roles[r]; ok && on && storeNamespace(s) == ns {
			stores[s.Key()] = r
		}
	}
	if len(stores) == 0 {
		return nil
	}
	type acls struct{ before, after *vaultacl.ACL }
	built := map[chain.RoleRef]acls{}
	var out []lostRequest
	for _, es := range m.ExternalSecrets {
		for _, k := range chain.ItemStores(es) {
			r, ok := stores[k]
			if !ok {
				continue
			}
			a, ok := built[r]
			if !ok {
				names := append(slices.Clone(roles[r]), "default")
				a = acls{before.ACL(names...), after.ACL(names...)}
				built[r] = a
			}
			reqs, _ := chain.VaultRequests(m.Store(k), es)
			for _, req := range reqs {
				need := neededCapability(req)
				if need == 0 || !a.before.Capabilities(req.Path).Has(need) || a.after.Capabilities(req.Path).Has(need) {
					continue
				}
				out = append(out, lostRequest{es: es, access: events.LostAccess{
					ExternalSecret: events.ObjectRef{Kind: "ExternalSecret", Namespace: es.Namespace, Name: es.Name},
					Role:           events.RoleRef{Mount: r.Mount, Name: r.Name}, Path: req.Path, Capability: req.Capability, Why: req.Why}})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b lostRequest) int {
		return strings.Compare(a.access.ExternalSecret.String(), b.access.ExternalSecret.String())
	})
	return out
}

// neededCapability is what Vault's ACL must grant for req; 0 for what no policy decides (the
// login) and for what ESO fails itself before asking.
func neededCapability(req chain.VaultRequest) vaultacl.Capabilities {
	switch {
	case req.Fails != "" || req.Path == "":
		return 0
	case req.Capability == chain.CapabilityRead:
		return vaultacl.Read
	case req.Capability == chain.CapabilityList:
		return vaultacl.List
	}
	return 0
}

// storeNamespace is the Vault namespace a store logs in to, as the guard names namespaces ("" for root).
func storeNamespace(s *chain.Store) string {
	v := s.Vault()
	ns := v.Namespace
	if v.Auth != nil && v.Auth.Namespace != nil {
		ns = v.Auth.Namespace
	}
	if ns == nil {
		return ""
	}
	return strings.Trim(*ns, "/")
}
