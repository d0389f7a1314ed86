package vaultacl

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// generator makes random policies, token policy lists and paths for TestRandomAgainstVault.
// The corpus is what the evaluator must get right: every rule kind and its edge (empty segments,
// literal "*" and "+" inside segments, "+" rules ending in "*", trailing "/", a leading "/"),
// identity templates, every capability, the legacy policy values, deny in any position, empty lists, restrictions,
// HCL and JSON, and a few texts Vault refuses ("+*", unknown names, a key written twice).
type generator struct {
	r *rand.Rand
	// popular are rule paths many policies share, so that rules merge across policies.
	popular []string
}

var (
	words    = []string{"secret", "data", "metadata", "a", "ab", "b", "x"}
	allCaps  = []string{"create", "read", "update", "delete", "list", "sudo", "patch", "subscribe", "recover"}
	legacies = []string{"deny", "read", "write", "sudo"}
)

func (g *generator) pct(p int) bool { return g.r.IntN(100) < p }

func (g *generator) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *generator) segment() string {
	switch n := g.r.IntN(100); {
	case n < 60:
		return g.pick(words)
	case n < 78:
		return "+"
	case n < 83:
		return ""
	case n < 86:
		return "*" // a literal, in the middle
	case n < 89:
		return "a+b"
	case n < 92:
		return "+x" // a literal segment that still makes the rule a segment rule
	case n < 95:
		return "a*b"
	case n < 97:
		return "{{identity.entity.name}}" // dropped by Vault for a token without an entity
	}
	return "data"
}

// rulePath is a policy path: 1-4 segments, often a trailing "*" or "/"; a third of the time
// one of 20 paths drawn once per generator.
func (g *generator) rulePath() string {
	if g.popular == nil {
		for range 20 {
			g.popular = append(g.popular, g.newRulePath())
		}
	}
	if g.pct(33) {
		return g.pick(g.popular)
	}
	return g.newRulePath()
}

func (g *generator) newRulePath() string {
	segs := make([]string, 1+g.r.IntN(4))
	for i := range segs {
		segs[i] = g.segment()
	}
	p := strings.Join(segs, "/")
	switch n := g.r.IntN(100); {
	case n < 45:
		if strings.HasSuffix(p, "+") && !g.pct(3) {
			p += "/" // "+*" is refused; keep a few to check Parse refuses it too
		}
		p += "*"
	case n < 55:
		p += "/"
	}
	if g.pct(4) {
		p = "/" + p
	}
	return p
}

// body is a path stanza's attributes as name → HCL/JSON value text (the two share the syntax
// of strings and lists).
func (g *generator) body() [][2]string {
	var attrs [][2]string
	if g.pct(12) {
		attrs = append(attrs, [2]string{"policy", quote(g.pick(legacies))})
	}
	if len(attrs) == 0 || g.pct(30) {
		var caps []string
		if !g.pct(6) {
			for _, c := range allCaps {
				if g.pct(25) {
					caps = append(caps, c)
				}
			}
		}
		if g.pct(12) {
			caps = slices.Insert(caps, g.r.IntN(len(caps)+1), "deny")
		}
		if g.pct(2) {
			caps = slices.Insert(caps, g.r.IntN(len(caps)+1), "reed") // refused, unless after a deny
		}
		attrs = append(attrs, [2]string{"capabilities", list(caps)})
	}
	if g.pct(8) {
		attrs = append(attrs, [2]string{"allowed_parameters", `{"version" = []}`})
	}
	if g.pct(4) {
		attrs = append(attrs, [2]string{"required_parameters", list([]string{"version"})})
	}
	if g.pct(4) {
		attrs = append(attrs, [2]string{"max_wrapping_ttl", quote("1h")})
	}
	if g.pct(1) {
		attrs = append(attrs, attrs[0]) // an attribute twice: HCL refuses it, JSON keeps both
	}
	return attrs
}

// policy is 1-5 stanzas, in HCL or (a quarter of the time) JSON.
func (g *generator) policy() string {
	type stanza struct {
		path  string
		attrs [][2]string
	}
	stanzas := make([]stanza, 1+g.r.IntN(5))
	for i := range stanzas {
		stanzas[i] = stanza{g.rulePath(), g.body()}
	}
	var b strings.Builder
	if g.pct(25) {
		b.WriteString(`{"path": {`)
		for i, s := range stanzas {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: {", quote(s.path))
			for j, a := range s.attrs {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s: %s", quote(a[0]), strings.ReplaceAll(a[1], " = ", ": "))
			}
			b.WriteString("}")
		}
		b.WriteString("}}")
		return b.String()
	}
	for _, s := range stanzas {
		fmt.Fprintf(&b, "path %s {\n", quote(s.path))
		for _, a := range s.attrs {
			fmt.Fprintf(&b, "  %s = %s\n", a[0], a[1])
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// tokenPolicies is 1-4 names from the pool, now and then "root" or a name no policy has.
func (g *generator) tokenPolicies(pool []string) []string {
	out := make([]string, 1+g.r.IntN(4))
	for i := range out {
		out[i] = g.pick(pool)
	}
	switch {
	case g.pct(1):
		out = append(out, "root")
	case g.pct(3):
		out = append(out, "no-such-policy")
	}
	return out
}

// path is a path to ask about: mostly one of the rules' paths filled in (a "+" replaced by a
// word or nothing, a "*" by a suffix, a "/" added or a segment dropped), else random words.
func (g *generator) path(rules []Rule) string {
	var p string
	if len(rules) > 0 && g.pct(65) {
		r := rules[g.r.IntN(len(rules))]
		segs := strings.Split(strings.TrimSuffix(strings.TrimPrefix(r.Written, "/"), "*"), "/")
		for i, s := range segs {
			if s == "+" {
				segs[i] = g.pick(append(words, "", "zz"))
			}
		}
		p = strings.Join(segs, "/")
		if strings.HasSuffix(r.Written, "*") {
			p += g.pick([]string{"", "", "x", "b/c", "/", "/a"})
		}
		if g.pct(15) && len(segs) > 1 {
			p = strings.Join(segs[:len(segs)-1], "/")
		}
	} else {
		segs := make([]string, 1+g.r.IntN(5))
		for i := range segs {
			segs[i] = g.pick(append(words, ""))
		}
		p = strings.Join(segs, "/")
	}
	if g.pct(25) {
		p += "/"
	}
	if g.pct(3) {
		p = "/" + p
	}
	if strings.Trim(p, "/") == "" {
		p = "x" + p // sys/capabilities refuses an empty path; "/" alone is a table case
	}
	return p
}

func quote(s string) string { return `"` + s + `"` }

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
