package vaultacl

import (
	"fmt"
	"slices"
	"strings"
)

// Capabilities returns what sys/capabilities answers for path and a token holding the ACL's
// policies: Root for the root policy, else the capabilities of the one rule Vault picks (0
// when none matches; Strings shows both 0 and Deny as "deny"). Leading slashes are ignored, as
// Vault ignores them. It does not allocate.
func (a *ACL) Capabilities(path string) Capabilities {
	if a.root {
		return Root
	}
	if e, _ := a.lookup(strings.TrimLeft(path, "/")); e != nil {
		return e.caps
	}
	return 0
}

// Result is the answer for one path with what decided it.
type Result struct {
	Path         string
	Capabilities Capabilities
	// Rule is the rule that decided; nil for the root policy and when no rule matched.
	Rule *Match
	// Restrictions are the deciding rule's limits that sys/capabilities does not show: a request
	// it allows may still be refused (a parameter ESO sends, like ?version=N, or a request not
	// response-wrapped).
	Restrictions []Restriction
	// Unknown says why the answer may differ for a real token: a templated rule that may match
	// the path for some identity. Empty when the answer holds for every token with these
	// policies.
	Unknown []string
}

// Match is the rule that decided, the merge of every policy's rule with its path and kind.
type Match struct {
	Kind Kind
	// Path is the rule's path as Vault keys it; Written as the first policy wrote it.
	Path, Written string
	Sources       []Source
	// Trimmed is true when the rule matched the path without its trailing "/" (Vault's LIST
	// fall-back, which sys/capabilities applies).
	Trimmed bool
}

// Explain is Capabilities with the rule that decided, its restrictions and what is unknown.
func (a *ACL) Explain(path string) Result {
	res := Result{Path: path, Capabilities: a.Capabilities(path)}
	if a.root {
		return res
	}
	p := strings.TrimLeft(path, "/")
	e, trimmed := a.lookup(p)
	if e != nil {
		res.Rule = &Match{Kind: e.kind, Path: e.path, Written: e.written, Sources: slices.Clone(e.sources), Trimmed: trimmed}
		res.Restrictions = slices.Clone(e.restrictions)
		if e.caps&Deny == 0 && e.minTTL > 0 && e.maxTTL > 0 && e.maxTTL < e.minTTL {
			// One policy cannot say this (Vault refuses it), but a merge can.
			res.Restrictions = append(res.Restrictions, Restriction{Key: "min_wrapping_ttl",
				Detail: fmt.Sprintf("%s above the merged max_wrapping_ttl %s: every request is refused", e.minTTL, e.maxTTL)})
		}
	}
	for _, t := range a.templated {
		if t.mayMatch(p) {
			res.Unknown = append(res.Unknown, t.String())
		}
	}
	return res
}
