package inventory

import (
	"cmp"
	"slices"
	"time"

	"github.com/credchain/credchain/internal/events"
)

// ClusterImpact is what depends on a set of roles in one cluster.
type ClusterImpact struct {
	Cluster string
	// Vaults are the Vault addresses the cluster's stores using the roles name, sorted: for the
	// event, not for matching (see Reader).
	Vaults []string
	// BlastRadius lists the cluster's objects, each ref's Cluster set. It is shared with the
	// Reader's index and every other caller: read it, do not modify it (its slices are clipped,
	// so an append copies).
	BlastRadius *events.BlastRadius
}

// index is one immutable snapshot of every cluster's inventory, indexed by role. The Reader's
// watch goroutine builds a new one for each change and swaps it in; lookups read whichever
// snapshot they loaded, without locks.
type index struct {
	clusters map[string]*cluster
	byRole   map[events.RoleRef][]*roleEntry // sorted by cluster name
}

// cluster is one cluster's decoded inventory, when it ages out, and its role entries, computed
// once when its value arrives (newCluster) so that rebuilding the index for another cluster's
// heartbeat costs O(roles), not a copy of every radius.
type cluster struct {
	name    string
	expires time.Time
	inv     *Inventory
	entries []*roleEntry
}

// roleEntry is one role in one cluster, precomputed for lookups.
type roleEntry struct {
	role    events.RoleRef
	cluster *cluster
	impact  ClusterImpact
	// store is the first store (by kind, namespace, name) logging in with the role: StoreUsing.
	store string
}

// newCluster precomputes inv's role entries: each radius's refs copied once, to name the cluster.
func newCluster(inv *Inventory, expires time.Time) *cluster {
	c := &cluster{name: inv.Cluster, expires: expires, inv: inv}
	for _, r := range inv.Roles {
		e := &roleEntry{role: events.RoleRef{Mount: r.Mount, Name: r.Name}, cluster: c,
			impact: ClusterImpact{Cluster: c.name, BlastRadius: r.BlastRadius.InCluster(c.name)}}
		for _, s := range inv.Stores {
			if s.Mount == r.Mount && s.Role == r.Name {
				if e.store == "" {
					e.store = s.Ref()
				}
				e.impact.Vaults = append(e.impact.Vaults, s.Server)
			}
		}
		slices.Sort(e.impact.Vaults)
		e.impact.Vaults = slices.Clip(slices.Compact(e.impact.Vaults))
		c.entries = append(c.entries, e)
	}
	return c
}

// newIndex indexes clusters by role: O(roles of all clusters).
func newIndex(clusters map[string]*cluster) *index {
	ix := &index{clusters: clusters, byRole: map[events.RoleRef][]*roleEntry{}}
	for _, c := range clusters {
		for _, e := range c.entries {
			ix.byRole[e.role] = append(ix.byRole[e.role], e)
		}
	}
	for _, es := range ix.byRole {
		slices.SortFunc(es, func(a, b *roleEntry) int { return cmp.Compare(a.cluster.name, b.cluster.name) })
	}
	return ix
}

// impact is Reader.Impact over this snapshot at now.
func (ix *index) impact(roles []events.RoleRef, now time.Time) []ClusterImpact {
	if len(roles) == 1 { // the common case: no merging, no allocation beyond the result
		var out []ClusterImpact
		for _, e := range ix.byRole[roles[0]] {
			if now.Before(e.cluster.expires) {
				out = append(out, e.impact)
			}
		}
		return out
	}
	byCluster := map[string][]*roleEntry{}
	for _, r := range uniqueRoles(roles) {
		for _, e := range ix.byRole[r] {
			if now.Before(e.cluster.expires) {
				byCluster[e.cluster.name] = append(byCluster[e.cluster.name], e)
			}
		}
	}
	out := make([]ClusterImpact, 0, len(byCluster))
	for _, es := range byCluster {
		out = append(out, merge(es))
	}
	slices.SortFunc(out, func(a, b ClusterImpact) int { return cmp.Compare(a.Cluster, b.Cluster) })
	return out
}

// merge is one cluster's impact of several roles: the union of their radii, sorted as
// chain.Model.Impact sorts (by the printed ref), without duplicates.
func merge(es []*roleEntry) ClusterImpact {
	if len(es) == 1 {
		return es[0].impact
	}
	im := ClusterImpact{Cluster: es[0].cluster.name, BlastRadius: &events.BlastRadius{}}
	lists := func(br *events.BlastRadius) []*[]events.ObjectRef {
		return []*[]events.ObjectRef{&br.Stores, &br.ExternalSecrets, &br.Secrets, &br.Workloads}
	}
	for _, e := range es {
		im.Vaults = append(im.Vaults, e.impact.Vaults...)
		for i, l := range lists(e.impact.BlastRadius) {
			*lists(im.BlastRadius)[i] = append(*lists(im.BlastRadius)[i], *l...)
		}
	}
	for _, l := range lists(im.BlastRadius) {
		slices.SortFunc(*l, func(a, b events.ObjectRef) int { return cmp.Compare(a.String(), b.String()) })
		*l = slices.Clip(slices.Compact(*l))
	}
	slices.Sort(im.Vaults)
	im.Vaults = slices.Clip(slices.Compact(im.Vaults))
	return im
}

func uniqueRoles(roles []events.RoleRef) []events.RoleRef {
	out := slices.Clone(roles)
	slices.SortFunc(out, func(a, b events.RoleRef) int {
		return cmp.Or(cmp.Compare(a.Mount, b.Mount), cmp.Compare(a.Name, b.Name))
	})
	return slices.Compact(out)
}

// storeUsing is Reader.StoreUsing over this snapshot at now: the first live cluster by name.
func (ix *index) storeUsing(role events.RoleRef, now time.Time) (cluster, store string, ok bool) {
	for _, e := range ix.byRole[role] {
		if now.Before(e.cluster.expires) && e.store != "" {
			return e.cluster.name, e.store, true
		}
	}
	return "", "", false
}

// live lists the clusters not aged out at now, sorted.
func (ix *index) live(now time.Time) []string {
	var out []string
	for name, c := range ix.clusters {
		if now.Before(c.expires) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// MergeImpact is impacts as one blast radius for an event: each list is the clusters' lists in
// cluster order, each entry naming its cluster.
func MergeImpact(impacts []ClusterImpact) *events.BlastRadius {
	if len(impacts) == 0 {
		return nil
	}
	br := &events.BlastRadius{}
	for _, im := range impacts {
		br.Stores = append(br.Stores, im.BlastRadius.Stores...)
		br.ExternalSecrets = append(br.ExternalSecrets, im.BlastRadius.ExternalSecrets...)
		br.Secrets = append(br.Secrets, im.BlastRadius.Secrets...)
		br.Workloads = append(br.Workloads, im.BlastRadius.Workloads...)
	}
	return br
}
