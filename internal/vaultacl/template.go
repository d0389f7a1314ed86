package vaultacl

import (
	"fmt"
	"regexp"
	"strings"
)

// templatedRule is a rule whose path Vault fills from the token's identity
// ({{identity.entity.name}}, {{identity.groups.names.G.id}}, ...) or the clock ({{time.now}}).
// Offline the values are unknown, so the rule takes no part in evaluation; instead a path it
// may match is reported as unknown, never as granted or denied on its basis.
type templatedRule struct {
	policy, file, written string
	line                  int
	match                 *regexp.Regexp
}

func newTemplatedRule(p *Policy, r *Rule) *templatedRule {
	return &templatedRule{policy: p.Name, file: p.File, written: r.Written, line: r.Line, match: templateRegexp(r.Written)}
}

// mayMatch reports whether some filling of the template could make the rule match path or
// path without a trailing "/" (the LIST fall-back).
func (t *templatedRule) mayMatch(path string) bool {
	return t.match.MatchString(path) || t.match.MatchString(strings.TrimSuffix(path, "/"))
}

func (t *templatedRule) String() string {
	where := t.file
	if where == "" {
		where = "policy " + t.policy
	}
	return fmt.Sprintf("%s:%d: templated path %q is filled from the token's identity and may match", where, t.line, t.written)
}

// templateRegexp over-approximates the paths a templated rule can match, whatever the
// template values: each {{...}} becomes ".*" (a value may hold "/", "+" or a trailing "*",
// and every one of those only widens what matches), a "+" segment "[^/]*" and a trailing "*"
// ".*"; the rest is literal.
func templateRegexp(written string) *regexp.Regexp {
	const hole = "\x00"
	s := strings.TrimPrefix(written, "/")
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 { // Parse refuses this; keep the rest literal
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i] + hole)
		s = s[i+j+2:]
	}
	s = b.String()
	glob := strings.HasSuffix(s, "*")
	s = strings.TrimSuffix(s, "*")
	segs := strings.Split(s, "/")
	for i, seg := range segs {
		if seg == "+" {
			segs[i] = "[^/]*"
			continue
		}
		segs[i] = strings.ReplaceAll(regexp.QuoteMeta(seg), hole, ".*")
	}
	expr := "^" + strings.Join(segs, "/")
	if glob {
		expr += ".*"
	}
	return regexp.MustCompile(expr + "$")
}
