package vaultacl

import (
	"slices"
	"strings"
)

// node is a segment trie over the Prefix and Segment rules. Vault keeps Prefix rules in a radix
// tree and walks every Segment rule for every request, splitting both paths into slices; with
// hundreds of policies that is tens of microseconds a path. Both kinds are segment patterns,
// though: a Prefix rule "a/b/c" matches a path whose first segments are a and b and whose third
// starts with c, whatever follows, and a Segment rule is literal segments and "+" segments whose
// last one, with a trailing "*", is such a prefix. So one walk over the path's segments finds
// every matching rule, and the highest ranked of them is Vault's answer.
type node struct {
	lit  map[string]*node
	plus *node
	// end is the rank (index in ACL.ranked, plus one) of the rule without a trailing "*" whose
	// last segment this node is; 0 for none.
	end int32
	// pre holds the rules whose segments before the last lead here, by their last segment's
	// literal prefix, with the rank as in end; preLens are those prefixes' lengths, ascending.
	pre     map[string]int32
	preLens []int
}

// insert adds the entry ranked rank (index plus one).
func (n *node) insert(e *entry, rank int32) {
	path, isPrefix := e.path, e.kind == Prefix
	if e.kind == Segment && strings.HasSuffix(path, "*") {
		path, isPrefix = path[:len(path)-1], true
	}
	segs := strings.Split(path, "/")
	last := len(segs)
	if isPrefix {
		last-- // the last segment is a prefix, kept in pre
	}
	for _, s := range segs[:last] {
		// Only a Segment rule has "+" segments: a Prefix rule with one is a Segment rule.
		if s == "+" && e.kind == Segment {
			if n.plus == nil {
				n.plus = &node{}
			}
			n = n.plus
			continue
		}
		c := n.lit[s]
		if c == nil {
			if n.lit == nil {
				n.lit = map[string]*node{}
			}
			c = &node{}
			n.lit[s] = c
		}
		n = c
	}
	if !isPrefix {
		n.end = rank
		return
	}
	p := segs[last]
	if n.pre == nil {
		n.pre = map[string]int32{}
	}
	n.pre[p] = rank
	if i, found := slices.BinarySearch(n.preLens, len(p)); !found {
		n.preLens = slices.Insert(n.preLens, i, len(p))
	}
}

// best returns the highest rank among rules matching the rest of a path, starting at this
// node: rest is the path from the start of its next segment, and more is false once every
// segment is consumed ("a/" is the segments "a" and "", as strings.Split makes them).
func (n *node) best(rest string, more bool, best int32) int32 {
	if !more {
		return max(best, n.end)
	}
	seg, next, nextMore := rest, "", false
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		seg, next, nextMore = rest[:i], rest[i+1:], true
	}
	for _, l := range n.preLens {
		if l > len(seg) {
			break
		}
		if r, ok := n.pre[seg[:l]]; ok {
			best = max(best, r)
		}
	}
	if c := n.lit[seg]; c != nil {
		best = c.best(next, nextMore, best)
	}
	if n.plus != nil {
		best = n.plus.best(next, nextMore, best)
	}
	return best
}

// nonExact is Vault's CheckAllowedFromNonExactPaths: the winning Prefix or Segment rule, or nil.
func (a *ACL) nonExact(path string) *entry {
	if r := a.trie.best(path, true, 0); r > 0 {
		return a.ranked[r-1]
	}
	return nil
}

// lookup is the rule Vault's AllowOperation picks for a LIST of path, which is what
// sys/capabilities asks (so that its trailing-slash fall-backs apply): an exact rule for the
// path, then one for the path without one trailing "/", then, for a path ending in "/", the
// non-exact rules for it without that "/", then the non-exact rules for the path as given.
// trimmed reports that the rule matched the path without its trailing "/".
func (a *ACL) lookup(path string) (e *entry, trimmed bool) {
	if e := a.exact[path]; e != nil {
		return e, false
	}
	t := strings.TrimSuffix(path, "/")
	if t != path {
		if e := a.exact[t]; e != nil {
			return e, true
		}
		if e := a.nonExact(t); e != nil {
			return e, true
		}

	}
	return a.nonExact(path), false
}
