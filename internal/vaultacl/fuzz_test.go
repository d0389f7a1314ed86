package vaultacl

import (
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary policy text (a policy file is input from a pull request): it
// must never panic, an accepted policy must build an ACL, and the ACL's trie must pick the rule
// Vault's own walk picks for paths made from the rules.
func FuzzParse(f *testing.F) {
	for _, tc := range trickyCases {
		for _, text := range tc.policies {
			f.Add(text, "secret/x/")
		}
	}
	for _, tc := range badPolicies {
		f.Add(tc.text, "a")
	}
	f.Fuzz(func(t *testing.T, text, path string) {
		p, err := Parse("fuzz", "fuzz.hcl", text)
		if err != nil {
			return
		}
		acl := Set{"fuzz": p}.ACL("fuzz")
		paths := []string{path}
		for _, r := range p.Rules {
			paths = append(paths, r.Path, r.Path+"x/y", strings.ReplaceAll(r.Path, "+", "q"))
		}
		for _, q := range paths {
			acl.Explain(q)
			q = strings.TrimLeft(q, "/")
			want, _ := vaultWalk(acl, q)
			if got := acl.nonExact(q); got != want {
				t.Fatalf("%q: trie %+v, Vault's walk %+v\n%s", q, got, want, text)
			}
		}
	})
}
