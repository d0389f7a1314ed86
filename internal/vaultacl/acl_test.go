package vaultacl

import (
	"errors"
	"slices"
	"sort"
	"testing"
)

// parseSet parses a case's policies as Vault would store them.
func parseSet(t testing.TB, policies map[string]string) Set {
	t.Helper()
	set := Set{}
	for name, text := range policies {
		p, err := Parse(name, name+".hcl", text)
		if err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		set[p.Name] = p
	}
	return set
}

func TestTrickyCases(t *testing.T) {
	t.Parallel()
	for name, tc := range trickyCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			acl := parseSet(t, tc.policies).ACL(tc.token...)
			for _, path := range sortedKeys(tc.want) {
				if got := acl.Capabilities(path).String(); got != tc.want[path] {
					t.Errorf("%q: %s, want %s (rule: %+v)", path, got, tc.want[path], acl.Explain(path).Rule)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range badPolicies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse("x", "x.hcl", tc.text)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if err.Error() != tc.err {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.err)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("errors.Is(%v, ErrInvalidPolicy) = false", err)
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		text string
		want []Rule
	}{
		"kinds": {
			text: "path \"a/b\" { capabilities = [\"read\"] }\npath \"/a/*\" { capabilities = [\"list\"] }\n" +
				"path \"a/+/b*\" { capabilities = [] }\npath \"a/*/b\" { policy = \"read\" }\n",
			want: []Rule{
				{Path: "a/b", Written: "a/b", Kind: Exact, Capabilities: Read, Line: 1},
				{Path: "a/", Written: "/a/*", Kind: Prefix, Capabilities: List, Line: 2},
				{Path: "a/+/b*", Written: "a/+/b*", Kind: Segment, Line: 3},
				{Path: "a/*/b", Written: "a/*/b", Kind: Exact, Capabilities: Read | List, Line: 4},
			},
		},
		"restrictions and TTLs": {
			text: "path \"secret/data/x\" {\n  capabilities = [\"read\"]\n  allowed_parameters = { \"Version\" = [] }\n  max_wrapping_ttl = 60\n}\n",
			want: []Rule{{Path: "secret/data/x", Written: "secret/data/x", Capabilities: Read, Line: 1, MaxWrappingTTL: 60e9,
				Restrictions: []Restriction{
					{Key: "allowed_parameters", Detail: "version", Policy: "p", File: "p.hcl", Line: 3},
					{Key: "max_wrapping_ttl", Detail: "1m0s", Policy: "p", File: "p.hcl", Line: 4},
				}}},
		},
		"empty restrictions restrict nothing": {
			text: "path \"x\" {\n  capabilities = [\"read\"]\n  allowed_parameters = {}\n  required_parameters = []\n  min_wrapping_ttl = 0\n}\n",
			want: []Rule{{Path: "x", Written: "x", Capabilities: Read, Line: 1}},
		},
		"templated": {
			text: `path "secret/{{identity.entity.id}}/*" { capabilities = ["read"] }`,
			want: []Rule{{Path: "secret/{{identity.entity.id}}/", Written: "secret/{{identity.entity.id}}/*", Kind: Prefix, Capabilities: Read, Templated: true, Line: 1}},
		},
		"a block without a label is the path \"path\"": {
			text: `path { capabilities = ["read"] }`,
			want: []Rule{{Path: "path", Written: "path", Capabilities: Read, Line: 1}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse("P", "p.hcl", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != "p" {
				t.Errorf("name %q, want p", p.Name)
			}
			if len(p.Rules) != len(tc.want) {
				t.Fatalf("rules %+v, want %+v", p.Rules, tc.want)
			}
			for i := range tc.want {
				if got := p.Rules[i]; !ruleEqual(got, tc.want[i]) {
					t.Errorf("rule %d:\n%+v\nwant\n%+v", i, got, tc.want[i])
				}
			}
		})
	}
}

func ruleEqual(a, b Rule) bool {
	return a.Path == b.Path && a.Written == b.Written && a.Kind == b.Kind && a.Capabilities == b.Capabilities &&
		a.Templated == b.Templated && a.Line == b.Line && a.MinWrappingTTL == b.MinWrappingTTL &&
		a.MaxWrappingTTL == b.MaxWrappingTTL && slices.Equal(a.Restrictions, b.Restrictions)
}

func TestExplain(t *testing.T) {
	t.Parallel()
	set := parseSet(t, map[string]string{
		"eso": `
path "secret/data/*" {
  capabilities       = ["read"]
  allowed_parameters = { "version" = [] }
}
path "secret/metadata/app" { capabilities = ["list"] }`,
		"guard": `path "secret/data/*" { capabilities = ["deny"] }`,
		"wrap": `
path "w/x" {
  capabilities     = ["read"]
  min_wrapping_ttl = "1h"
}`,
		"wrap2": `
path "w/x" {
  capabilities     = ["update"]
  max_wrapping_ttl = "1m"
}`,
		"tmpl": `path "secret/data/{{identity.entity.name}}" { capabilities = ["read"] }`,
	})
	tests := map[string]struct {
		token []string
		path  string
		want  func(t *testing.T, r Result)
	}{
		"restrictions of the winning rule are reported": {
			token: []string{"eso"}, path: "secret/data/app",
			want: func(t *testing.T, r Result) {
				if r.Capabilities != Read || r.Rule == nil || r.Rule.Written != "secret/data/*" || r.Rule.Kind != Prefix {
					t.Fatalf("%+v", r)
				}
				want := []Restriction{{Key: "allowed_parameters", Detail: "version", Policy: "eso", File: "eso.hcl", Line: 4}}
				if !slices.Equal(r.Restrictions, want) {
					t.Errorf("restrictions %+v, want %+v", r.Restrictions, want)
				}
				if got := r.Restrictions[0].String(); got != `eso.hcl:4: allowed_parameters version: restriction not visible to Vault's capabilities API` {
					t.Errorf("String() = %s", got)
				}
			},
		},
		"a deny drops the restrictions and names every source": {
			token: []string{"eso", "guard"}, path: "secret/data/app",
			want: func(t *testing.T, r Result) {
				if r.Capabilities != Deny || len(r.Restrictions) != 0 {
					t.Fatalf("%+v", r)
				}
				want := []Source{{Policy: "eso", File: "eso.hcl", Line: 2, Capabilities: Read}, {Policy: "guard", File: "guard.hcl", Line: 1, Capabilities: Deny}}
				if !slices.Equal(r.Rule.Sources, want) {
					t.Errorf("sources %+v, want %+v", r.Rule.Sources, want)
				}
			},
		},
		"the list fall-back is reported": {
			token: []string{"eso"}, path: "secret/metadata/app/",
			want: func(t *testing.T, r Result) {
				if r.Capabilities != List || !r.Rule.Trimmed || r.Rule.Kind != Exact {
					t.Fatalf("%+v", r.Rule)
				}
			},
		},
		"merged wrapping TTLs that no request can meet": {
			token: []string{"wrap", "wrap2"}, path: "w/x",
			want: func(t *testing.T, r Result) {
				keys := []string{}
				for _, x := range r.Restrictions {
					keys = append(keys, x.Key+" "+x.Detail)
				}
				want := []string{"min_wrapping_ttl 1h0m0s", "max_wrapping_ttl 1m0s", "min_wrapping_ttl 1h0m0s above the merged max_wrapping_ttl 1m0s: every request is refused"}
				if r.Capabilities != Read|Update || !slices.Equal(keys, want) {
					t.Errorf("%s %q, want read, update %q", r.Capabilities, keys, want)
				}
			},
		},
		"a templated rule that may match makes the answer unknown": {
			token: []string{"eso", "tmpl"}, path: "secret/data/bob",
			want: func(t *testing.T, r Result) {
				want := []string{`tmpl.hcl:1: templated path "secret/data/{{identity.entity.name}}" is filled from the token's identity and may match`}
				if r.Capabilities != Read || !slices.Equal(r.Unknown, want) {
					t.Errorf("%s %q", r.Capabilities, r.Unknown)
				}
			},
		},
		"a templated rule that cannot match leaves the answer known": {
			token: []string{"tmpl"}, path: "secret/metadata/bob",
			want: func(t *testing.T, r Result) {
				if r.Capabilities != 0 || r.Rule != nil || len(r.Unknown) != 0 {
					t.Errorf("%+v", r)
				}
			},
		},
		"root": {
			token: []string{"eso", "ROOT"}, path: "anything",
			want: func(t *testing.T, r Result) {
				if r.Capabilities != Root || r.Rule != nil || r.Capabilities.String() != "root" {
					t.Errorf("%+v", r)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc.want(t, set.ACL(tc.token...).Explain(tc.path))
		})
	}
}

func TestDanglingAndPolicies(t *testing.T) {
	t.Parallel()
	set := parseSet(t, map[string]string{"a": `path "x" { capabilities = ["read"] }`})
	acl := set.ACL("B", " a", "", "b", "default")
	if got, want := acl.Policies(), []string{"a", "b", "default"}; !slices.Equal(got, want) {
		t.Errorf("Policies() = %q, want %q", got, want)
	}
	if got, want := acl.Dangling(), []string{"b", "default"}; !slices.Equal(got, want) {
		t.Errorf("Dangling() = %q, want %q", got, want)
	}
}

func TestRolePolicies(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		token, legacy []string
		noDefault     bool
		want          []string
	}{
		"token_policies plus default":                  {token: []string{"ESO ", "eso"}, legacy: []string{"old"}, want: []string{"default", "eso"}},
		"legacy policies when token_policies is empty": {legacy: []string{"old"}, want: []string{"default", "old"}},
		"token_no_default_policy":                      {token: []string{"eso"}, noDefault: true, want: []string{"eso"}},
		"default named once":                           {token: []string{"default", "eso"}, want: []string{"default", "eso"}},
		"nothing is default alone":                     {want: []string{"default"}},
		"root stands alone":                            {token: []string{"eso", "root"}, want: []string{"root"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := RolePolicies(tc.token, tc.legacy, tc.noDefault); !slices.Equal(got, tc.want) {
				t.Errorf("RolePolicies = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCapabilitiesStrings(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		c    Capabilities
		want string
		has  Capabilities
		ok   bool
	}{
		"nothing is deny":       {c: 0, want: "deny", has: Read},
		"deny wins":             {c: Deny | Read, want: "deny", has: Read},
		"sorted as strings":     {c: Update | Sudo | Subscribe | Create, want: "create, subscribe, sudo, update", has: Sudo | Create, ok: true},
		"root has everything":   {c: Root, want: "root", has: Sudo | Delete, ok: true},
		"partial is not enough": {c: Read, want: "read", has: Read | List},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := tc.c.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := tc.c.Has(tc.has); got != tc.ok {
				t.Errorf("Has(%s) = %v, want %v", tc.has, got, tc.ok)
			}
		})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
