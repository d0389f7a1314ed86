// Package vaultacl evaluates Vault ACL policies offline, as Vault 1.21 evaluates them.
//
// The question it answers is sys/capabilities': which capabilities does a token holding exactly
// these policies have on this path. Parse reads a policy as `sys/policy` does (Vault's own HCL1
// fork, github.com/hashicorp/hcl v1.0.1-vault-7, JSON policies and the legacy `policy = "read"`
// included), Set.ACL builds the token's ACL as vault/acl.go's NewACL does, and ACL.Capabilities
// picks the rule as AllowOperation does for a LIST, which is what sys/capabilities asks:
//
//   - an exact rule for the path wins outright, even `capabilities = []`;
//   - rules with the same path string merge across policies (capabilities add up, deny
//     absorbs); rules with different strings never merge, however they overlap;
//   - otherwise one non-exact rule wins alone, by Vault's priority (priorityLess): prefix rules
//     ("secret/*", a "*" only at the end — elsewhere it is a literal) and segment rules ("+"
//     matches one segment, an empty one too);
//   - a path ending in "/" also tries, first, the path without it.
//
// The package does not import github.com/hashicorp/vault (BUSL-1.1, not meant to be imported):
// it is written from reading vault/policy.go and vault/acl.go, and the differential tests in this
// package hold it to a real `vault server -dev` on a table of tricky cases and on thousands of
// random policy sets.
//
// What sys/capabilities does not show is reported beside the answer, not folded into it:
// parameter constraints and wrapping TTLs (Restriction: "restriction not visible to Vault's
// capabilities API"), and templated rules, whose paths depend on the token's identity (Unknown).
// Namespaces (Vault Enterprise), identity-group policies and Sentinel are out of scope: a token's
// policies are what the caller names.
package vaultacl
