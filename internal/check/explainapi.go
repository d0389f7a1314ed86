package check

import (
	"context"
	"slices"

	vaultapi "github.com/hashicorp/vault/api"
	"golang.org/x/sync/errgroup"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// ReadVaultFor is ReadVault narrowed to one chain, for `credchain explain`: the Kubernetes auth
// mounts (sys/auth), the roles named (a LIST of each one's mount to tell a missing role from an
// unreadable one, then a read of each role that exists), and the policies those roles' tokens
// carry (a LIST of the policies, then a read of each named one that exists) — 3 + mounts + roles
// + their policies requests, however many policies and roles Vault holds, with the same
// read-only policy (CheckPolicyFile) and the same errors as ReadVault.
//
// The result is Complete for what it covers: a named role or policy that it lacks does not exist.
// Evaluate it only for ExternalSecrets whose stores log in with one of roles (Check reports
// UndefinedPolicies from its roles only).
func ReadVaultFor(ctx context.Context, c *vaultapi.Client, roles []chain.RoleRef) (*Vault, error) {
	v, err := readMounts(ctx, c)
	if err != nil {
		return nil, err
	}
	mounts := map[string]bool{}
	for _, ref := range roles {
		if v.Mounts[ref.Mount] {
			mounts[ref.Mount] = true
		}
	}
	existing, policyNames, err := listRolesAndPolicies(ctx, c, mounts)
	if err != nil {
		return nil, err
	}
	for _, ref := range roles {
		if !slices.Contains(existing, ref) || v.Roles[ref] != nil {
			continue
		}
		r, err := readRole(ctx, c, ref)
		if err != nil {
			return nil, err
		}
		v.Roles[ref] = r
	}
	return v, readNamedPolicies(ctx, c, v, policyNames)
}

// readNamedPolicies reads the policies v's roles name that exist (in policyNames), up to
// readParallelism at a time.
func readNamedPolicies(ctx context.Context, c *vaultapi.Client, v *Vault, policyNames []string) error {
	var names []string
	for _, r := range v.Roles {
		for _, n := range r.TokenPolicyNames() {
			if slices.Contains(policyNames, n) && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	policies := make([]*vaultacl.Policy, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readParallelism)
	for i, name := range names {
		g.Go(func() (err error) { policies[i], err = readPolicy(gctx, c, name); return err })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, p := range policies {
		v.Policies[p.Name], v.PolicySources[p.Name] = p, p.File
	}
	return nil
}

// BindingRefusal is the Kubernetes auth plugin's check of ServiceAccount sa against role r's
// bindings, as Check applies it: Vault's refusal ("bound_service_account_names [...] (Vault
// answers ...)"), naming the first binding that refuses sa, or "" when r binds sa.
func BindingRefusal(r *Role, sa chain.ServiceAccountName) string { return notBound(r, sa) }
