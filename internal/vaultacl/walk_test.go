package vaultacl

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// vaultWalk is Vault's CheckAllowedFromNonExactPaths written out as Vault writes it (the longest
// prefix rule, then every segment rule split and compared, then a sort by priorityLess), over
// the ACL's merged entries. It is the reference the trie is held to, and counts how many rules
// competed.
func vaultWalk(a *ACL, path string) (best *entry, candidates int) {
	var matches []*entry
	var longest *entry
	pathParts := strings.Split(path, "/")
	for _, e := range a.ranked {
		switch e.kind {
		case Prefix:
			if strings.HasPrefix(path, e.path) && (longest == nil || len(e.path) > len(longest.path)) {
				longest = e
			}
		case Segment:
			wc, isPrefix := e.path, false
			if strings.HasSuffix(wc, "*") {
				wc, isPrefix = wc[:len(wc)-1], true
			}
			parts := strings.Split(wc, "/")
			if len(pathParts) < len(parts) || (!isPrefix && len(parts) != len(pathParts)) {
				continue
			}
			ok := true
			for i, p := range parts {
				switch {
				case p == "+", p == pathParts[i]:
				case isPrefix && i == len(parts)-1 && strings.HasPrefix(pathParts[i], p):
				default:
					ok = false
				}
			}
			if ok {
				matches = append(matches, e)
			}
		}
	}
	if longest != nil {
		matches = append(matches, longest)
	}
	if len(matches) == 0 {
		return nil, 0
	}
	sort.Slice(matches, func(i, j int) bool { return priorityLess(matches[i].priority(), matches[j].priority()) })
	return matches[len(matches)-1], len(matches)
}

// corpusStats counts what a random corpus exercised, so a passing differential run also says
// what it covered.
type corpusStats struct {
	paths, root, noRule, deny, trimmed, merged, contests int
	kinds                                                [3]int
}

func (s *corpusStats) add(a *ACL, path string) {
	s.paths++
	if a.root {
		s.root++
		return
	}
	p := strings.TrimLeft(path, "/")
	e, trimmed := a.lookup(p)
	switch {
	case e == nil:
		s.noRule++
		return
	case e.caps&Deny != 0:
		s.deny++
	}
	s.kinds[e.kind]++
	if trimmed {
		s.trimmed++
	}
	if len(e.sources) > 1 {
		s.merged++
	}
	if e.kind != Exact {
		q := p
		if trimmed {
			q = strings.TrimSuffix(p, "/")
		}
		if _, n := vaultWalk(a, q); n > 1 {
			s.contests++
		}
	}
}

func (s corpusStats) String() string {
	return fmt.Sprintf("%d paths: %d decided by an exact rule, %d by a prefix rule, %d by a segment rule, %d by no rule, %d root; "+
		"%d denied by a rule, %d via the trailing-slash fall-back, %d by a rule merged from several, %d won against other matching non-exact rules",
		s.paths, s.kinds[Exact], s.kinds[Prefix], s.kinds[Segment], s.noRule, s.root, s.deny, s.trimmed, s.merged, s.contests)
}

// TestTrieMatchesVaultsWalk holds the trie to Vault's own walk on random corpora (no server
// needed; TestRandomAgainstVault holds both to Vault).
func TestTrieMatchesVaultsWalk(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			g := &generator{r: rand.New(rand.NewPCG(seed, 1))}
			set, names := Set{}, []string{}
			for i := range 200 {
				name := fmt.Sprintf("p%03d", i)
				if p, err := Parse(name, "", g.policy()); err == nil {
					set[name], names = p, append(names, name)
				}
			}
			var stats corpusStats
			for range 500 {
				acl := set.ACL(g.tokenPolicies(names)...)
				var rules []Rule
				for _, n := range acl.policies {
					if p := set[n]; p != nil {
						rules = append(rules, p.Rules...)
					}
				}
				for range 20 {
					path := strings.TrimLeft(g.path(rules), "/")
					stats.add(acl, path)
					for _, q := range []string{path, strings.TrimSuffix(path, "/")} {
						want, _ := vaultWalk(acl, q)
						if got := acl.nonExact(q); got != want {
							t.Fatalf("%q: trie %+v, Vault's walk %+v", q, got, want)
						}
					}
				}
			}
			t.Log(stats)
		})
	}
}
