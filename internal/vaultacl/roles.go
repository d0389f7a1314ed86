package vaultacl

import "slices"

// RolePolicies returns the policies of a token that a login through an auth role (Kubernetes,
// AppRole, JWT: every plugin built on Vault's tokenutil) gets: the role's token_policies, else
// its legacy policies field (older roles store only that; Vault reads it as token_policies), then
// Vault's sanitising at login (vault/request_handling.go: policyutil.SanitizePolicies): names
// trimmed and lower-cased, empty ones and duplicates dropped, "default" added unless
// token_no_default_policy, and "root" alone if it is there. Names no policy defines stay: Vault
// keeps them on the token and ignores them (ACL.Dangling lists them). Policies from the token's
// identity entity and groups are added by Vault per request and cannot be seen from the role.
func RolePolicies(tokenPolicies, legacyPolicies []string, noDefaultPolicy bool) []string {
	names := tokenPolicies
	if len(names) == 0 {
		names = legacyPolicies
	}
	out := sanitizePolicies(names)
	if len(out) == 1 && out[0] == "root" {
		return out
	}
	if !noDefaultPolicy && !slices.Contains(out, "default") {
		out = append(out, "default")
		slices.Sort(out)
	}
	return out
}
