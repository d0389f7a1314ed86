package vaultacl

import (
	"slices"
	"strings"
	"time"
)

// Set is policies by name, as Vault's policy store holds them.
type Set map[string]*Policy

// ACL is the access a token holding a fixed list of policies has, built once as Vault's NewACL
// (vault/acl.go) builds it for every request, then asked about any number of paths.
// It is immutable once built and safe for concurrent use.
type ACL struct {
	root bool
	// exact holds the Exact entries by path.
	exact map[string]*entry
	// ranked holds the Prefix and Segment entries in ascending priority, so that of several
	// rules matching a path the one with the highest index wins (see priorityLess).
	ranked []*entry
	trie   node
	// templated are the rules left out of evaluation because their path is filled per token.
	templated []*templatedRule
	policies  []string
	dangling  []string
}

// entry is the rules of every policy that share a Kind and a Path, merged as Vault merges them:
// capabilities add up, a deny absorbs everything before and after it. Rules with different
// paths never merge, however they overlap.
type entry struct {
	kind    Kind
	path    string
	written string
	caps    Capabilities
	sources []Source
	// restrictions are the merged rules'; nil once a deny is merged (Vault drops them then).
	restrictions []Restriction
	// minTTL and maxTTL are Vault's merge of the rules' wrapping TTLs: the least positive of each.
	minTTL, maxTTL time.Duration
}

// Source is one policy rule merged into the rule that decided a path.
type Source struct {
	Policy, File string
	Line         int
	// Capabilities are this rule's own, before merging.
	Capabilities Capabilities
	// Absorbed is true when an earlier rule of the merge denied: Vault kept nothing of this one.
	Absorbed bool
}

// ACL builds the ACL of a token whose policies are names, as Vault's sys/capabilities sees it
// for a token without an identity entity. The names are sanitised as Vault sanitises a token's
// policies (trimmed, lower-cased, duplicates and empty names dropped, and "root" alone when
// present: Vault's SanitizePolicies keeps nothing else beside it). Names the set does not hold
// are ignored, as Vault ignores them, and listed by Dangling. "default" is a policy like any
// other here: it is held only when named and in the set.
func (s Set) ACL(names ...string) *ACL {
	a := &ACL{exact: map[string]*entry{}}
	a.policies = sanitizePolicies(names)
	if len(a.policies) == 1 && a.policies[0] == "root" {
		a.root = true
		return a
	}
	nonExact := map[entryKey]*entry{}
	for _, name := range a.policies {
		p := s[name]
		if p == nil {
			a.dangling = append(a.dangling, name)
			continue
		}
		for i := range p.Rules {
			r := &p.Rules[i]
			if r.Templated {
				a.templated = append(a.templated, newTemplatedRule(p, r))
				continue
			}
			var e *entry
			if r.Kind == Exact {
				e = a.exact[r.Path]
				if e == nil {
					e = &entry{kind: Exact, path: r.Path, written: r.Written}
					a.exact[r.Path] = e
				}
			} else {
				k := entryKey{r.Kind, r.Path}
				e = nonExact[k]
				if e == nil {
					e = &entry{kind: r.Kind, path: r.Path, written: r.Written}
					nonExact[k] = e
				}
			}
			e.merge(p, r)
		}
	}
	a.ranked = make([]*entry, 0, len(nonExact))
	for _, e := range nonExact {
		a.ranked = append(a.ranked, e)
	}
	slices.SortFunc(a.ranked, func(x, y *entry) int {
		px, py := x.priority(), y.priority()
		switch {
		case priorityLess(px, py):
			return -1
		case priorityLess(py, px):
			return 1
		}
		return 0
	})
	for i, e := range a.ranked {
		a.trie.insert(e, int32(i+1))
	}
	return a
}

type entryKey struct {
	kind Kind
	path string
}

// merge adds one more rule with the entry's path, as NewACL does.
func (e *entry) merge(p *Policy, r *Rule) {
	src := Source{Policy: p.Name, File: p.File, Line: r.Line, Capabilities: r.Capabilities}
	switch {
	case len(e.sources) == 0:
		e.caps = r.Capabilities
		e.restrictions = slices.Clone(r.Restrictions)
		e.minTTL, e.maxTTL = r.MinWrappingTTL, r.MaxWrappingTTL
	case e.caps&Deny != 0:
		src.Absorbed = true
	case r.Capabilities&Deny != 0:
		e.caps, e.restrictions = Deny, nil
	default:
		e.caps |= r.Capabilities
		e.restrictions = append(e.restrictions, r.Restrictions...)
		if t := r.MaxWrappingTTL; t > 0 && (e.maxTTL == 0 || t < e.maxTTL) {
			e.maxTTL = t
		}
		if t := r.MinWrappingTTL; t > 0 && (e.minTTL == 0 || t < e.minTTL) {
			e.minTTL = t
		}
	}
	e.sources = append(e.sources, src)
}

// Policies returns the token's policies after Vault's sanitising, dangling ones included.
func (a *ACL) Policies() []string { return slices.Clone(a.policies) }

// Dangling returns the token's policies the set does not define. Vault ignores them (a token
// may name a policy that does not exist, and gets nothing from it).
func (a *ACL) Dangling() []string { return slices.Clone(a.dangling) }

// sanitizePolicies is Vault's policyutil.SanitizePolicies without adding "default".
func sanitizePolicies(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = SanitizeName(n)
		switch {
		case n == "":
		case n == "root":
			return []string{"root"}
		case !slices.Contains(out, n):
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// priority is the descriptor Vault's CheckAllowedFromNonExactPaths sorts matching rules by.
type priority struct {
	// firstWildcard is the index of the rule's first "+" character (a literal one too, as in
	// Vault); for a Prefix rule, the length of its prefix.
	firstWildcard int
	isPrefix      bool
	wildcards     int
	// path is the rule's path without a trailing "*".
	path string
}

func (e *entry) priority() priority {
	if e.kind == Prefix {
		return priority{firstWildcard: len(e.path), isPrefix: true, path: e.path}
	}
	p := priority{firstWildcard: strings.Index(e.path, "+"), path: e.path}
	if strings.HasSuffix(p.path, "*") {
		p.isPrefix, p.path = true, p.path[:len(p.path)-1]
	}
	for _, s := range strings.Split(p.path, "/") {
		if s == "+" {
			p.wildcards++
		}
	}
	return p
}

// priorityLess is Vault's order among the non-exact rules matching one path, lowest first:
// a later first wildcard or glob wins (foo/a* over foo/+, foo/bar/+/baz over foo/+/bar/baz);
// then a rule without a trailing "*" (foo/+ over foo/*, foo/+/bar over foo/+/ba*); then fewer
// "+" segments (foo/bar/+/baz over foo/+/+/baz); then the longer path; then the greater string.
// Every input of the order is fixed per rule, so the ACL ranks its rules once, when built.
// Among Prefix rules alone this is longest prefix wins, which is what Vault's radix tree finds.
func priorityLess(a, b priority) bool {
	switch {
	case a.firstWildcard != b.firstWildcard:
		return a.firstWildcard < b.firstWildcard
	case a.isPrefix != b.isPrefix:
		return a.isPrefix
	case a.wildcards != b.wildcards:
		return a.wildcards > b.wildcards
	case len(a.path) != len(b.path):
		return len(a.path) < len(b.path)
	}
	return a.path < b.path
}
