package vaultacl

import (
	"strconv"
	"strings"
	"time"
)

// Policy is one ACL policy as Vault holds it after `vault policy write`.
type Policy struct {
	// Name is the policy's name in Vault, trimmed and lower-cased as Vault stores it.
	Name string
	// File is where the text came from, for messages (may be empty).
	File string
	// Text is the policy as Vault stores it (Parse's text, base64-decoded when it was base64):
	// what writing the policy again sends, for a reader that holds only the parsed form (the audit
	// guard restores a Terraform vault_policy's evaluated text from it).
	Text string
	// Rules are the policy's path stanzas in the order written, templated ones included.
	Rules []Rule
}

// Kind is how a rule's path matches, decided from its text as Vault decides it.
type Kind uint8

const (
	// Exact rules match one path; they win over every other kind.
	Exact Kind = iota
	// Prefix rules end in "*" (and have no "+" segment): they match every path starting with
	// the text before the "*". A "*" anywhere else is a literal character.
	Prefix
	// Segment rules have a "+" segment (a path equal to "+", containing "/+" or starting with
	// "+/"): "+" matches any one segment, an empty one too; a trailing "*" makes the last
	// segment a prefix and lets more segments follow. A "+" inside a segment ("a+b", and the
	// "+x" of "a/+x", which still makes the rule a Segment rule) is a literal.
	Segment
)

func (k Kind) String() string {
	switch k {
	case Exact:
		return "exact"
	case Prefix:
		return "prefix"
	case Segment:
		return "segment-wildcard"
	}
	return "unknown"
}

// Rule is one path stanza of one policy.
type Rule struct {
	// Path is the rule's key as Vault stores it: one leading "/" removed, and a Prefix rule's
	// trailing "*" removed (a Segment rule keeps it). Rules of different policies merge only
	// when their Kind and Path are the same.
	Path string
	// Written is the path as the policy wrote it, for messages.
	Written string
	Kind    Kind
	// Capabilities are the rule's own: the legacy `policy` mapped, Deny alone when the list
	// holds "deny", 0 for `capabilities = []` (legal; such a rule grants nothing, and wins).
	Capabilities Capabilities
	// Restrictions are the limits Vault enforces on requests but sys/capabilities does not show.
	// A deny rule has none (Vault stops reading the stanza at "deny").
	Restrictions []Restriction
	// MinWrappingTTL and MaxWrappingTTL are the stanza's (0: none); Vault refuses every request
	// on the path that is not response-wrapped within them.
	MinWrappingTTL, MaxWrappingTTL time.Duration
	// Templated rules have identity templates in their path ({{identity.entity.id}}). Vault fills
	// them per token and drops the rule when it cannot (any identity.* template, for a token
	// without an entity); offline their paths are unknown, so they never take part in
	// evaluation: a path they might match is reported as unknown (Result.Unknown).
	Templated bool
	// Line is the line of the rule's path in File (1-based).
	Line int
}

// Restriction is a rule key that makes Vault refuse some requests its capabilities allow, which
// Vault's capabilities API does not show.
type Restriction struct {
	// Key is the policy key: required_parameters, allowed_parameters, denied_parameters,
	// min_wrapping_ttl, max_wrapping_ttl, mfa_methods or control_group (the last two are
	// enforced by Vault Enterprise only).
	Key string
	// Detail is the parameter names or the TTL, as written.
	Detail string
	// Policy, File and Line say where the key is written.
	Policy, File string
	Line         int
}

// notVisible is the words the issue and the docs use for every restriction.
const notVisible = "restriction not visible to Vault's capabilities API"

func (r Restriction) String() string {
	where := r.File
	if where == "" {
		where = "policy " + r.Policy
	}
	if r.Line > 0 {
		where += ":" + strconv.Itoa(r.Line)
	}
	s := where + ": " + r.Key
	if r.Detail != "" {
		s += " " + r.Detail
	}
	return s + ": " + notVisible
}

// SanitizeName is Vault's policy name normalisation (trimmed, lower-cased), applied on every
// write and every lookup.
func SanitizeName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }
