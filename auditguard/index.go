package auditguard

import (
	"slices"
	"strings"
	"sync"

	"github.com/credchain/credchain/internal/events"
)

type roleKey struct{ ns, mount, role string }
type polKey struct{ ns, name string }

// Index is the reverse index policy → Kubernetes auth roles, for every kubernetes auth mount the
// guard can see. Roles reference a policy through token_policies or the legacy policies field.
type Index struct {
	mu       sync.RWMutex
	roles    map[roleKey][]string
	byPolicy map[polKey]map[roleKey]struct{}
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{roles: map[roleKey][]string{}, byPolicy: map[polKey]map[roleKey]struct{}{}}
}

// SetRole records a role's policies (normalised as Vault stores names: PolicyName), replacing its previous ones.
func (x *Index) SetRole(ns, mount, role string, policies []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setLocked(roleKey{ns, mount, role}, policies)
}

func (x *Index) setLocked(k roleKey, policies []string) {
	x.deleteLocked(k)
	norm := make([]string, 0, len(policies))
	for _, p := range policies {
		p = PolicyName(p)
		if p == "" || slices.Contains(norm, p) {
			continue
		}
		norm = append(norm, p)
		pk := polKey{k.ns, p}
		if x.byPolicy[pk] == nil {
			x.byPolicy[pk] = map[roleKey]struct{}{}
		}
		x.byPolicy[pk][k] = struct{}{}
	}
	x.roles[k] = norm
}

// DeleteRole forgets a role.
func (x *Index) DeleteRole(ns, mount, role string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.deleteLocked(roleKey{ns, mount, role})
}

func (x *Index) deleteLocked(k roleKey) {
	for _, p := range x.roles[k] {
		pk := polKey{k.ns, p}
		delete(x.byPolicy[pk], k)
		if len(x.byPolicy[pk]) == 0 {
			delete(x.byPolicy, pk)
		}
	}
	delete(x.roles, k)
}

// Replace swaps the whole content of one namespace for a fresh listing (a resync).
func (x *Index) Replace(ns string, roles map[events.RoleRef][]string) {
	x.ReplaceKeeping(ns, roles, nil)
}

// ReplaceKeeping is Replace, except that the roles of the mounts in keep (which could not be
// listed) keep what they had: an older listing guards better than none.
func (x *Index) ReplaceKeeping(ns string, roles map[events.RoleRef][]string, keep []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k := range x.roles {
		if k.ns == ns && !slices.Contains(keep, k.mount) {
			x.deleteLocked(k)
		}
	}
	for r, pols := range roles {
		x.setLocked(roleKey{ns, r.Mount, r.Name}, pols)
	}
}

// RolesFor returns the roles referencing a policy, sorted.
func (x *Index) RolesFor(ns, policy string) []events.RoleRef {
	x.mu.RLock()
	defer x.mu.RUnlock()
	set := x.byPolicy[polKey{ns, PolicyName(policy)}]
	out := make([]events.RoleRef, 0, len(set))
	for k := range set {
		out = append(out, events.RoleRef{Mount: k.mount, Name: k.role})
	}
	slices.SortFunc(out, func(a, b events.RoleRef) int {
		return strings.Compare(a.Mount+"/"+a.Name, b.Mount+"/"+b.Name)
	})
	return out
}

// Referenced returns every referenced policy name in a namespace.
func (x *Index) Referenced(ns string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	for k := range x.byPolicy {
		if k.ns == ns {
			out = append(out, k.name)
		}
	}
	slices.Sort(out)
	return out
}

// Size is the number of roles and of referenced policies.
func (x *Index) Size() (roles, policies int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.roles), len(x.byPolicy)
}
