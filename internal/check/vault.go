package check

import (
	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// Vault is the Vault half of the chain as `check` evaluates it: the Kubernetes auth roles and the ACL
// policies, read live (ReadVault) or from files (LoadVaultFiles, LoadTerraform), with
// a proposed change applied on top (Plan.Apply).
type Vault struct {
	// Source says where this came from, for the report: "vault https://vault:8200",
	// "terraform infra/vault", "files policies/ + roles.yaml".
	Source string
	// Policies are the ACL policies by (sanitised) name.
	Policies vaultacl.Set
	// PolicySources are where each policy is defined, "file:line" for IaC input, the Vault address
	// for a live read; used to report policies a role names that the input does not define.
	PolicySources map[string]string
	// Roles are the Kubernetes auth roles by mount (no slashes) and name.
	Roles map[chain.RoleRef]*Role
	// Mounts are the Kubernetes auth mounts that exist (live: sys/auth; files: those a role names).
	// A store naming another mount fails to log in ("no handler for route").
	Mounts map[string]bool
	// Complete is true when what is absent from Policies and Roles does not exist (a live read, or
	// IaC input declared authoritative). When false, a missing policy or role is "unknown", not
	// "missing".
	Complete bool
	// UnknownPolicies and UnknownRoles are policies and roles that exist (or will) but whose
	// content the input cannot tell, each with the reason: a plan's values known only after
	// apply. They are not in Policies or Roles; a chain through one is "unknown", never ok or
	// broken. Empty or nil when there are none.
	UnknownPolicies map[string]string
	UnknownRoles    map[chain.RoleRef]string
	// PolicyAddresses and RoleAddresses map Terraform resource addresses
	// ("vault_policy.eso_order_service", "module.vault.vault_policy.x") to the policy name and the
	// role they define (LoadTerraform, and Plan.Apply for what a plan creates); nil for other
	// inputs. A plan names resources by address, the rest of the check by name.
	PolicyAddresses map[string]string
	RoleAddresses   map[string]chain.RoleRef
}

// Role is one Kubernetes auth role (auth/<mount>/role/<name>).
type Role struct {
	Mount, Name string
	// TokenPolicies and Policies are the role's token_policies and its legacy policies field, as
	// written; TokenPolicies wins when set (vaultacl.RolePolicies).
	TokenPolicies, Policies []string
	// NoDefaultPolicy is token_no_default_policy.
	NoDefaultPolicy bool
	// BoundServiceAccountNames and BoundServiceAccountNamespaces are the role's bindings; "*" is
	// any (Vault also supports globs in names when the role allows it: bound_service_account_names
	// "app-*" with alias_name_source default still matches by glob in Vault ≥ 1.15).
	BoundServiceAccountNames, BoundServiceAccountNamespaces []string
	// Source is where the role is defined ("file:line", or the live path).
	Source string
}

// Ref is the role's mount and name.
func (r *Role) Ref() chain.RoleRef { return chain.RoleRef{Mount: r.Mount, Name: r.Name} }

// TokenPolicyNames are the policies a token from this role carries, as Vault computes them at login.
func (r *Role) TokenPolicyNames() []string {
	return vaultacl.RolePolicies(r.TokenPolicies, r.Policies, r.NoDefaultPolicy)
}
