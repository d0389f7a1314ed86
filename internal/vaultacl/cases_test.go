package vaultacl

import "encoding/base64"

// aclCase is a token holding some policies and what sys/capabilities answers for some paths.
// TestTrickyCases holds the evaluator to want; TestTrickyCasesAgainstVault holds a real Vault
// 1.21 dev server to the same want, so the two agree on every case.
type aclCase struct {
	// policies are written to Vault as they are, by name.
	policies map[string]string
	// token is the token's policies, as given to auth/token/create (no_default_policy: true).
	token []string
	// want is each path's answer as `vault token capabilities` prints it.
	want map[string]string
}

// The sources of each case's expectation are vault/acl.go (NewACL, AllowOperation,
// CheckAllowedFromNonExactPaths), vault/policy.go (parsePaths) and vault/capabilities.go of
// Vault v1.21.4, and Vault's documentation of policy priority
// (https://developer.hashicorp.com/vault/docs/concepts/policies#priority-matching).
var trickyCases = map[string]aclCase{
	"an exact rule beats a prefix rule": {
		policies: map[string]string{"p": `
path "secret/foo" { capabilities = ["read"] }
path "secret/*"   { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/foo": "read", "secret/foo2": "update", "secret/": "update", "secret": "deny", "secret/foo/bar": "update"},
	},
	"an empty capabilities list is legal, wins as an exact rule and grants nothing": {
		policies: map[string]string{"p": `
path "secret/foo" { capabilities = [] }
path "secret/*"   { capabilities = ["read"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/foo": "deny", "secret/bar": "read"},
	},
	"an empty capabilities list wins as the longest prefix": {
		policies: map[string]string{"p": `
path "secret/a*" { capabilities = [] }
path "secret/*"  { capabilities = ["read"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/ab": "deny", "secret/b": "read"},
	},
	"rules with the same path merge across policies": {
		policies: map[string]string{
			"a": `path "secret/x" { capabilities = ["read"] }`,
			"b": `path "secret/x" { capabilities = ["update", "list"] }`,
		},
		token: []string{"a", "b"},
		want:  map[string]string{"secret/x": "list, read, update"},
	},
	"rules with the same path merge within one policy": {
		policies: map[string]string{"a": `
path "secret/x" { capabilities = ["read"] }
path "secret/x" { capabilities = ["patch"] }`},
		token: []string{"a"},
		want:  map[string]string{"secret/x": "patch, read"},
	},
	"a deny merged after a grant absorbs it": {
		policies: map[string]string{
			"a": `path "secret/x" { capabilities = ["read", "sudo"] }`,
			"b": `path "secret/x" { capabilities = ["deny"] }`,
		},
		token: []string{"a", "b"},
		want:  map[string]string{"secret/x": "deny"},
	},
	"a deny merged before a grant absorbs it": {
		policies: map[string]string{
			"a": `path "secret/x*" { capabilities = ["deny"] }`,
			"b": `path "secret/x*" { capabilities = ["read"] }`,
		},
		token: []string{"a", "b"},
		want:  map[string]string{"secret/x": "deny", "secret/xy": "deny"},
	},
	"deny in a capability list keeps deny alone": {
		policies: map[string]string{"a": `path "secret/x" { capabilities = ["read", "deny", "update"] }`},
		token:    []string{"a"},
		want:     map[string]string{"secret/x": "deny"},
	},
	"rules with different paths never merge: a prefix deny leaves the exact rule alone": {
		policies: map[string]string{
			"a": `path "secret/x" { capabilities = ["read"] }`,
			"b": `path "secret/x*" { capabilities = ["deny"] }`,
		},
		token: []string{"a", "b"},
		want:  map[string]string{"secret/x": "read", "secret/xy": "deny"},
	},
	"a deny on a shorter prefix loses to a longer prefix": {
		policies: map[string]string{
			"a": `path "secret/*" { capabilities = ["deny"] }`,
			"b": `path "secret/data/*" { capabilities = ["read"] }`,
		},
		token: []string{"a", "b"},
		want:  map[string]string{"secret/data/x": "read", "secret/metadata/x": "deny"},
	},
	"an exact rule and a prefix rule with the same text are different rules": {
		policies: map[string]string{"p": `
path "secret/x"  { capabilities = ["read"] }
path "secret/x*" { capabilities = ["update"] }`},
		token: []string{"p"},
		// secret/x/ falls back to the exact rule for secret/x.
		want: map[string]string{"secret/x": "read", "secret/xy": "update", "secret/x/": "read", "secret/x/y": "update"},
	},
	"list falls back from a trailing slash to the exact rule without it, never the other way": {
		policies: map[string]string{"p": `
path "secret/dir"   { capabilities = ["list"] }
path "secret/other/" { capabilities = ["read"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/dir/": "list", "secret/dir": "list", "secret/other": "deny", "secret/other/": "read", "secret/dir//": "deny"},
	},
	"the exact fall-back trims one slash only": {
		policies: map[string]string{"p": `path "secret/" { capabilities = ["read"] }`},
		token:    []string{"p"},
		want:     map[string]string{"secret//": "read", "secret///": "deny", "secret": "deny"},
	},
	"the exact fall-back beats a prefix rule that matches the slash": {
		policies: map[string]string{"p": `
path "secret"   { capabilities = ["read"] }
path "secret/*" { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/": "read", "secret/a": "update"},
	},
	"a trailing slash tries the non-exact rules without it first": {
		policies: map[string]string{"p": `
path "secret/a*"  { capabilities = ["read"] }
path "secret/a/+" { capabilities = ["update"] }`},
		token: []string{"p"},
		// Without the fall-back, secret/a/+ (first "+" at 9) would beat secret/a* (8) on
		// "secret/a/": the fall-back asks for "secret/a" first, which only secret/a* matches.
		want: map[string]string{"secret/a/": "read", "secret/a/b": "update", "secret/a/b/": "update"},
	},
	"the trailing-slash fall-back takes any non-exact match, even a weaker one": {
		policies: map[string]string{"p": `
path "secret/data/+" { capabilities = ["update"] }
path "secret/*"      { capabilities = ["read"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/data/": "read", "secret/data/x": "update"},
	},
	"a lone star matches every path": {
		policies: map[string]string{"p": `path "*" { capabilities = ["read"] }`},
		token:    []string{"p"},
		want:     map[string]string{"anything": "read", "sys/policies/acl/x": "read", "a/": "read"},
	},
	"a star in the middle is a literal": {
		policies: map[string]string{"p": `
path "secret/*/foo" { capabilities = ["read"] }
path "a*b*"         { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/x/foo": "deny", "secret/*/foo": "read", "a*bc": "update", "axbc": "deny"},
	},
	"a plus matches any one segment, an empty one too": {
		policies: map[string]string{"p": `path "secret/+/foo" { capabilities = ["read"] }`},
		token:    []string{"p"},
		want:     map[string]string{"secret/x/foo": "read", "secret//foo": "read", "secret/x/y/foo": "deny", "secret/foo": "deny", "secret/x/foo/": "read"},
	},
	"a trailing plus matches an empty last segment": {
		policies: map[string]string{"p": `path "secret/+" { capabilities = ["read"] }`},
		token:    []string{"p"},
		want:     map[string]string{"secret/": "read", "secret/a": "read", "secret/a/b": "deny", "secret": "deny"},
	},
	"a lone plus matches one segment": {
		policies: map[string]string{"p": `path "+" { capabilities = ["read"] }`},
		token:    []string{"p"},
		want:     map[string]string{"foo": "read", "foo/": "read", "foo/bar": "deny"},
	},
	"a segment rule with a trailing star is a prefix on its last segment": {
		policies: map[string]string{"p": `
path "secret/+/ab*" { capabilities = ["read"] }
path "+/*"          { capabilities = ["list"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/x/abc/d": "read", "secret/x/ab": "read", "secret/x/a": "list", "a/b": "list", "a": "deny", "secret/x/a*b": "list"},
	},
	"a plus inside a segment is a literal": {
		policies: map[string]string{"p": `
path "secret/a+b" { capabilities = ["read"] }
path "secret/+x"  { capabilities = ["update"] }
path "secret/*"   { capabilities = ["list"] }`},
		token: []string{"p"},
		// "secret/+x" contains "/+", so Vault makes it a segment rule, whose "+x" segment is
		// literal; it beats secret/* (same first "+"/glob position, not a prefix).
		want: map[string]string{"secret/a+b": "read", "secret/axb": "list", "secret/+x": "update", "secret/yx": "list"},
	},
	"priority: a later first wildcard wins (foo/a* over foo/+)": {
		policies: map[string]string{"p": `
path "foo/a*" { capabilities = ["read"] }
path "foo/+"  { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"foo/ab": "read", "foo/a": "read", "foo/b": "update"},
	},
	"priority: a prefix that starts after a plus beats it even when the plus rule is longer": {
		policies: map[string]string{"p": `
path "secret/+/x" { capabilities = ["read"] }
path "secret/d*"  { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/d/x": "update", "secret/e/x": "read"},
	},
	"priority: at the same position a rule without a trailing star wins (foo/+ over foo/*)": {
		policies: map[string]string{"p": `
path "foo/*" { capabilities = ["read"] }
path "foo/+" { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"foo/x": "update", "foo/x/y": "read", "foo/": "update"},
	},
	"priority: foo/+/bar over foo/+/ba*": {
		policies: map[string]string{"p": `
path "foo/+/ba*" { capabilities = ["read"] }
path "foo/+/bar" { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"foo/x/bar": "update", "foo/x/baz": "read", "foo/x/bar/y": "read"},
	},
	"priority: foo/bar/+/baz over foo/+/bar/baz (later first wildcard)": {
		policies: map[string]string{"p": `
path "foo/+/bar/baz" { capabilities = ["read"] }
path "foo/bar/+/baz" { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"foo/bar/bar/baz": "update", "foo/x/bar/baz": "read"},
	},
	"priority: fewer plus segments win (foo/+/bar/baz over foo/+/+/baz)": {
		policies: map[string]string{"p": `
path "foo/+/+/baz"   { capabilities = ["read"] }
path "foo/+/bar/baz" { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"foo/x/bar/baz": "update", "foo/x/y/baz": "read"},
	},
	"priority: the longer of two otherwise equal rules wins (foo/+/bar/ba* over foo/+/bar/b*)": {
		policies: map[string]string{"p": `
path "foo/+/bar/b*"  { capabilities = ["read"] }
path "foo/+/bar/ba*" { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"foo/x/bar/bar": "update", "foo/x/bar/bz": "read"},
	},
	"priority: last, the greater string wins": {
		policies: map[string]string{"p": `
path "+/x/+" { capabilities = ["read"] }
path "+/+/y" { capabilities = ["update"] }`},
		token: []string{"p"},
		want:  map[string]string{"q/x/y": "read", "q/z/y": "update"},
	},
	"priority: the longest prefix wins among prefixes": {
		policies: map[string]string{
			"a": `path "secret/*" { capabilities = ["read"] }`,
			"b": `path "secret/data/*" { capabilities = ["update"] }`,
		},
		token: []string{"a", "b"},
		want:  map[string]string{"secret/data/x": "update", "secret/datax": "read"},
	},
	"priority: a literal plus counts as the first wildcard (Vault's strings.Index)": {
		policies: map[string]string{"p": `
path "a+/+" { capabilities = ["read"] }
path "a+/*" { capabilities = ["update"] }`},
		token: []string{"p"},
		// a+/+ has its first "+" at 1, the prefix a+/ is 3 long: the prefix wins.
		want: map[string]string{"a+/x": "update"},
	},
	"priority: a deny on the winning rule denies": {
		policies: map[string]string{"p": `
path "secret/+/x" { capabilities = ["deny"] }
path "secret/*"   { capabilities = ["read"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/a/x": "deny", "secret/a/y": "read"},
	},
	"legacy policy values map to capabilities": {
		policies: map[string]string{"p": `
path "l/deny"  { policy = "deny" }
path "l/read"  { policy = "read" }
path "l/write" { policy = "write" }
path "l/sudo"  { policy = "sudo" }
path "l/both" {
  policy       = "read"
  capabilities = ["update"]
}
path "l/deny2" {
  policy       = "deny"
  capabilities = ["read"]
}`},
		token: []string{"p"},
		want: map[string]string{"l/deny": "deny", "l/read": "list, read", "l/write": "create, delete, list, read, update",
			"l/sudo": "create, delete, list, read, sudo, update", "l/both": "list, read, update", "l/deny2": "deny"},
	},
	"every capability, sorted as strings": {
		policies: map[string]string{"p": `path "all" { capabilities = ["update", "sudo", "subscribe", "recover", "read", "patch", "list", "delete", "create"] }`},
		token:    []string{"p"},
		want:     map[string]string{"all": "create, delete, list, patch, read, recover, subscribe, sudo, update"},
	},
	"the root policy is root on every path, whatever else the token holds": {
		policies: map[string]string{"p": `path "secret/x" { capabilities = ["deny"] }`},
		token:    []string{"p", "root"},
		want:     map[string]string{"secret/x": "root", "sys/seal": "root"},
	},
	"a policy that does not exist grants nothing and is ignored": {
		policies: map[string]string{"p": `path "secret/x" { capabilities = ["read"] }`},
		token:    []string{"nope", "p"},
		want:     map[string]string{"secret/x": "read", "secret/y": "deny"},
	},
	"a token of dangling policies only has nothing": {
		token: []string{"nope"},
		want:  map[string]string{"secret/x": "deny"},
	},
	"token policy names are trimmed and lower-cased": {
		policies: map[string]string{"mixed": `path "secret/x" { capabilities = ["read"] }`},
		token:    []string{"  MIXED "},
		want:     map[string]string{"secret/x": "read"},
	},
	"one leading slash of a rule and every leading slash of a path are dropped": {
		policies: map[string]string{"p": `
path "/secret/x" { capabilities = ["read"] }
path "//secret/y" { capabilities = ["read"] }`},
		token: []string{"p"},
		want:  map[string]string{"secret/x": "read", "/secret/x": "read", "//secret/x": "read", "secret/y": "deny", "/secret/y": "deny"},
	},
	"an empty path rule matches the path /": {
		policies: map[string]string{"p": `path "" { capabilities = ["read"] }`},
		token:    []string{"p"},
		want:     map[string]string{"/": "read", "x": "deny"},
	},
	"JSON policies": {
		policies: map[string]string{"j": `{"path": {"secret/j": {"capabilities": ["read"]}, "secret/k/*": {"policy": "write"}}}`},
		token:    []string{"j"},
		want:     map[string]string{"secret/j": "read", "secret/k/x": "create, delete, list, read, update"},
	},
	"a base64 policy text is decoded first": {
		policies: map[string]string{"b": base64.StdEncoding.EncodeToString([]byte(`path "secret/b64" { capabilities = ["read"] }`))},
		token:    []string{"b"},
		want:     map[string]string{"secret/b64": "read"},
	},
	"restrictions do not change the capabilities Vault shows": {
		policies: map[string]string{"p": `
path "secret/data/r" {
  capabilities        = ["read"]
  allowed_parameters  = { "version" = [] }
  denied_parameters   = { "x" = [] }
  required_parameters = ["version"]
  min_wrapping_ttl    = "1s"
  max_wrapping_ttl    = "1h"
}`},
		token: []string{"p"},
		want:  map[string]string{"secret/data/r": "read"},
	},
	"a deny rule is not read past deny": {
		policies: map[string]string{"p": `
path "secret/d" {
  capabilities     = ["deny", "bogus"]
  min_wrapping_ttl = "not a duration"
}`},
		token: []string{"p"},
		want:  map[string]string{"secret/d": "deny"},
	},
	"templated rules are dropped for a token without an identity entity": {
		policies: map[string]string{"t": `
path "secret/{{identity.entity.name}}/*" { capabilities = ["read"] }
path "secret/*" { capabilities = ["update"] }`},
		token: []string{"t"},
		want:  map[string]string{"secret/bob/x": "update"},
	},
	"a policy without rules grants nothing": {
		policies: map[string]string{"p": "# nothing here\nname = \"ignored\"\n"},
		token:    []string{"p"},
		want:     map[string]string{"secret/x": "deny"},
	},
}

// badPolicies are texts Vault refuses to write, with the error Parse gives for file "x.hcl".
var badPolicies = map[string]struct{ text, err string }{
	"empty":                          {"", "x.hcl: 'policy' parameter not supplied or empty"},
	"HCL syntax":                     {"path \"a\" {\n  capabilities = [\"read\"\n}\n", `x.hcl:3: failed to parse policy: At 3:1: error parsing list, expected comma or list end, got: RBRACE`},
	"an attribute twice":             {"path \"a\" {\n  capabilities = [\"read\"]\n  capabilities = [\"list\"]\n}\n", `x.hcl:3: failed to parse policy: The argument "capabilities" at 3:3 was already set. Each argument can only be defined once`},
	"unknown top-level key":          {"path \"a\" { capabilities = [\"read\"] }\npaths \"b\" {}\n", `x.hcl:2: invalid key "paths"`},
	"unknown path key (a typo)":      {"path \"a\" {\n  capabilites = [\"read\"]\n}\n", `x.hcl:2: path "a": invalid key "capabilites"`},
	"unknown capability":             {"path \"a\" {\n  capabilities = [\"reed\"]\n}\n", `x.hcl:2: path "a": invalid capability "reed"`},
	"unknown capability before deny": {`path "a" { capabilities = ["bogus", "deny"] }`, `x.hcl:1: path "a": invalid capability "bogus"`},
	"root is not a capability":       {`path "a" { capabilities = ["root"] }`, `x.hcl:1: path "a": invalid capability "root"`},
	"unknown legacy policy":          {"path \"a\" {\n  policy = \"admin\"\n}\n", `x.hcl:2: path "a": invalid policy "admin"`},
	"plus then star":                 {`path "secret/+*" { capabilities = ["read"] }`, `x.hcl:1: path "secret/+*": invalid use of wildcards ('+*' is forbidden)`},
	"unbalanced template":            {`path "secret/{{identity.entity.id" { capabilities = ["read"] }`, `x.hcl:1: path "secret/{{identity.entity.id": failed to validate policy templating: unbalanced templating characters`},
	"template closed first":          {`path "secret/}}x" { capabilities = ["read"] }`, `x.hcl:1: path "secret/}}x": failed to validate policy templating: unbalanced templating characters`},
	"bad wrapping TTL": {"path \"a\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"soon\"\n}\n",
		`x.hcl:3: path "a": error parsing min_wrapping_ttl: time: invalid duration "soon"`},
	"max wrapping TTL below min": {"path \"a\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"1h\"\n  max_wrapping_ttl = \"1m\"\n}\n",
		`x.hcl:4: path "a": max_wrapping_ttl cannot be less than min_wrapping_ttl`},
	"a path that is not a block": {`path = "secret/x"`, `x.hcl:1: path "path": cannot check HCL keys of type *ast.LiteralType`},
	"capabilities not a list":    {`path "a" { capabilities = "read" }`, `x.hcl:1: path "a": At 1:27: unknown slice type: *ast.LiteralType`},
	"name not a string":          {"name = [\"x\"]\n", `x.hcl:1: failed to parse policy: At 1:8: root.name: unknown type for string *ast.ListType`},
	"control group without factors": {"path \"a\" {\n  capabilities = [\"read\"]\n  control_group = { ttl = \"1h\" }\n}\n",
		`x.hcl:3: path "a": no control group factors provided`},
	"JSON syntax": {`{"path": {"a" {}}}`, `x.hcl: failed to parse policy: expected: STRING got: LBRACE`},
	"JSON, with the line of the stanza's first key": {"{\n \"path\": {\n  \"a\": {\n   \"capabilitiez\": [\"read\"]\n  }\n }\n}",
		`x.hcl:4: path "a": invalid key "capabilitiez"`},
	"every bad stanza is reported": {"path \"a\" { capabilities = [\"x\"] }\npath \"b\" { capabilities = [\"y\"] }\n",
		"x.hcl:1: path \"a\": invalid capability \"x\"\nx.hcl:2: path \"b\": invalid capability \"y\""},
}
