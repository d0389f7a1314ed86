package check

import (
	"sync"

	"github.com/credchain/credchain/internal/vaultacl"
)

// builtinDefault is the rules of the `default` policy Vault 1.21 creates and keeps (it cannot be
// deleted, only rewritten). Offline inputs seldom hold it — Terraform rarely manages it, and a
// policy directory is what the team wrote — yet every Kubernetes auth token carries it unless
// the role sets token_no_default_policy, and it is what grants ESO's store validation its
// auth/token/lookup-self. So when the Vault input has no `default`, `check` evaluates this one.
// TestBuiltinDefaultIsVaults holds it to the real server's. The identity templates make the
// two identity paths templated (unknown), as they are for every token.
const builtinDefault = `
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] }
path "identity/entity/name/{{identity.entity.name}}" { capabilities = ["read"] }
path "sys/internal/ui/resultant-acl" { capabilities = ["read"] }
path "sys/renew" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/wrapping/wrap" { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
path "sys/tools/hash" { capabilities = ["update"] }
path "sys/tools/hash/*" { capabilities = ["update"] }
path "sys/control-group/request" { capabilities = ["update"] }
path "identity/oidc/provider/+/authorize" { capabilities = ["read", "update"] }
`

// builtinDefaultFile is what reports name as the built-in policy's file.
const builtinDefaultFile = "<Vault's built-in default policy>"

var builtinDefaultPolicy = sync.OnceValue(func() *vaultacl.Policy {
	p, err := vaultacl.Parse("default", builtinDefaultFile, builtinDefault)
	if err != nil {
		panic("internal error: the built-in default policy does not parse: " + err.Error())
	}
	return p
})

// withDefault returns set, or a copy of it holding the built-in default when it has none.
func withDefault(set vaultacl.Set) vaultacl.Set {
	if set["default"] != nil {
		return set
	}
	out := make(vaultacl.Set, len(set)+1)
	for k, v := range set {
		out[k] = v
	}
	out["default"] = builtinDefaultPolicy()
	return out
}
