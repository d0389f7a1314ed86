package check

import (
	"maps"

	"github.com/credchain/credchain/internal/chain"
)

// Apply is Vault as it would be once the plan is applied: a copy of v with every change's
// removals made (deleted and replaced policies, roles and Kubernetes mounts; a mount's roles go
// with it, as in Vault), then every change's additions (created and updated ones). v is not
// modified; the copy shares v's unchanged policies and roles, which neither modifies.
//
// What the plan knows only after apply is not guessed: a policy or role whose content is unknown
// goes to UnknownPolicies or UnknownRoles (and out of Policies and Roles); one created under an
// unknown name clears Complete, since any policy, role or mount absent may then exist.
func (p *Plan) Apply(v *Vault) *Vault {
	out := &Vault{
		Source:          v.Source + " + plan " + p.Name,
		Policies:        cloneMap(v.Policies),
		PolicySources:   cloneMap(v.PolicySources),
		Roles:           cloneMap(v.Roles),
		Mounts:          cloneMap(v.Mounts),
		Complete:        v.Complete,
		UnknownPolicies: cloneMap(v.UnknownPolicies),
		UnknownRoles:    cloneMap(v.UnknownRoles),
		PolicyAddresses: cloneMap(v.PolicyAddresses),
		RoleAddresses:   cloneMap(v.RoleAddresses),
	}
	for _, it := range p.items {
		out.remove(it)
	}
	for _, it := range p.items {
		out.put(it)
	}
	return out
}

func (v *Vault) remove(it *planItem) {
	addr := it.change.Address
	if n := it.delPolicy; n != "" {
		delete(v.Policies, n)
		delete(v.PolicySources, n)
		delete(v.UnknownPolicies, n)
		delete(v.PolicyAddresses, addr)
	}
	if it.delRole != nil {
		v.removeRole(*it.delRole)
		delete(v.RoleAddresses, addr)
	}
	if m := it.delMount; m != "" {
		delete(v.Mounts, m)
		for ref := range v.Roles {
			if ref.Mount == m {
				v.removeRole(ref)
			}
		}
		for ref := range v.UnknownRoles {
			if ref.Mount == m {
				v.removeRole(ref)
			}
		}
	}
}

// removeRole removes a role and the addresses that name it.
func (v *Vault) removeRole(ref chain.RoleRef) {
	delete(v.Roles, ref)
	delete(v.UnknownRoles, ref)
	maps.DeleteFunc(v.RoleAddresses, func(_ string, r chain.RoleRef) bool { return r == ref })
}

func (v *Vault) put(it *planItem) {
	addr, why := it.change.Address, it.change.Address+": "+it.change.Unknown
	switch {
	case it.putPolicy != nil:
		n := it.putPolicyName
		v.Policies[n], v.PolicySources[n], v.PolicyAddresses[addr] = it.putPolicy, it.source, n
		delete(v.UnknownPolicies, n)
	case it.unknownPolicy != "":
		n := it.unknownPolicy
		delete(v.Policies, n)
		v.UnknownPolicies[n], v.PolicySources[n], v.PolicyAddresses[addr] = why, it.source, n
	}
	switch {
	case it.putRole != nil:
		ref := it.putRole.Ref()
		v.Roles[ref], v.RoleAddresses[addr] = it.putRole, ref
		delete(v.UnknownRoles, ref)
	case it.unknownRole != nil:
		ref := *it.unknownRole
		delete(v.Roles, ref)
		v.UnknownRoles[ref], v.RoleAddresses[addr] = why, ref
	}
	if it.putMount != "" {
		v.Mounts[it.putMount] = true
	}
	if it.unknownName {
		v.Complete = false
	}
}

// cloneMap is a shallow copy of m, never nil.
func cloneMap[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return M{}
	}
	return maps.Clone(m)
}
