package vaultacl

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-secure-stdlib/parseutil"
	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
)

// Parse reads a policy's text as Vault 1.21's `sys/policy/NAME` write receives it and returns
// it as Vault would store it, or every reason Vault would refuse it (PolicyErrors joined, each
// with file and line). Like the server it refuses an empty text, decodes a text that is valid
// base64 first, and then parses HCL1 or JSON (chosen by a leading "{") with Vault's fork of
// github.com/hashicorp/hcl, which refuses an attribute written twice in one block.
//
// What Vault checks, Parse checks, in Vault's order per stanza: the template braces, the keys
// allowed at the top (name, path) and in a path stanza, the value types, "+*" in a path, the
// legacy policy and capability names (nothing after a "deny" is read, as in Vault), the
// wrapping TTLs and control-group factors. Vault stops at the first bad stanza; Parse reports
// every bad stanza.
func Parse(name, file, text string) (*Policy, error) {
	fail := func(line int, err error) error { return &PolicyError{File: file, Line: line, Err: err} }
	if text == "" {
		return nil, fail(0, errors.New("'policy' parameter not supplied or empty"))
	}
	if b, err := base64.StdEncoding.DecodeString(text); err == nil {
		text = string(b)
	}
	root, err := hcl.Parse(text)
	if err != nil {
		return nil, fail(lineOf(err), fmt.Errorf("failed to parse policy: %w", err))
	}
	list, ok := root.Node.(*ast.ObjectList)
	if !ok {
		return nil, fail(0, errors.New("failed to parse policy: does not contain a root object"))
	}
	if errs := checkKeys(list, file, topKeys); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Vault decodes the top level into its Policy struct, whose only settable key is name; its
	// errors (name = [1]) are Vault's too.
	var top struct {
		Name string `hcl:"name"`
	}
	if err := hcl.DecodeObject(&top, list); err != nil {
		return nil, fail(lineOf(err), fmt.Errorf("failed to parse policy: %w", err))
	}
	p := &Policy{Name: SanitizeName(name), File: file, Text: text}
	var errs []error
	for _, item := range list.Filter("path").Items {
		r, err := parseRule(p, item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Rules = append(p.Rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// The keys Vault accepts (vault/policy.go); anything else is refused.
var (
	topKeys  = []string{"name", "path"}
	pathKeys = []string{"comment", "policy", "capabilities", "allowed_parameters", "denied_parameters",
		"required_parameters", "min_wrapping_ttl", "max_wrapping_ttl", "mfa_methods", "control_group",
		"subscribe_event_types"}
)

// pathHCL mirrors the fields and types Vault decodes a path stanza into, so the HCL decoder
// accepts and refuses exactly what it does for Vault (a string where a list is expected, a
// block where a string is).
type pathHCL struct {
	Policy                 string
	Capabilities           []string
	MinWrappingTTLHCL      interface{}              `hcl:"min_wrapping_ttl"`
	MaxWrappingTTLHCL      interface{}              `hcl:"max_wrapping_ttl"`
	AllowedParametersHCL   map[string][]interface{} `hcl:"allowed_parameters"`
	DeniedParametersHCL    map[string][]interface{} `hcl:"denied_parameters"`
	RequiredParametersHCL  []string                 `hcl:"required_parameters"`
	MFAMethodsHCL          []string                 `hcl:"mfa_methods"`
	ControlGroupHCL        *controlGroupHCL         `hcl:"control_group"`
	SubscribeEventTypesHCL []string                 `hcl:"subscribe_event_types"`
}

type controlGroupHCL struct {
	TTL     interface{}                    `hcl:"ttl"`
	Factors map[string]*controlGroupFactor `hcl:"factor"`
}

type controlGroupFactor struct {
	Name                   string
	Identity               *identityFactor `hcl:"identity"`
	ControlledCapabilities []string        `hcl:"controlled_capabilities"`
}

type identityFactor struct {
	GroupIDs          []string `hcl:"group_ids"`
	GroupNames        []string `hcl:"group_names"`
	ApprovalsRequired int      `hcl:"approvals"`
}

// parseRule is Vault's parsePaths for one stanza, in its order: the label, the template braces,
// the keys and types (stanza.decode), the wildcards (setPath), the legacy policy and the
// capabilities, then the TTLs and control group (parseRestrictions).
func parseRule(p *Policy, item *ast.ObjectItem) (Rule, error) {
	// A stanza without a label is the path "path", as in Vault.
	s := stanza{p: p, item: item, key: "path", line: ruleLine(item)}
	if len(item.Keys) > 0 {
		k, ok := item.Keys[0].Token.Value().(string)
		if !ok {
			return Rule{}, &PolicyError{File: p.File, Line: s.line, Err: errors.New("path must be a string")}
		}
		s.key = k
	}
	r := Rule{Written: s.key, Line: s.line}
	pc, err := s.decode(&r)
	if err != nil {
		return Rule{}, err
	}
	if err := s.setPath(&r); err != nil {
		return Rule{}, err
	}
	caps, deny, err := s.capabilities(&r, &pc)
	if err != nil {
		return Rule{}, err
	}
	if deny {
		return r, nil
	}
	if err := parseRestrictions(p, &r, &pc, caps, item.Val); err != nil {
		return Rule{}, s.fail(err.line, "%w", err.err)
	}
	return r, nil
}

// stanza is one path stanza of p being parsed: its item, its path as written (key) and its line.
type stanza struct {
	p    *Policy
	item *ast.ObjectItem
	key  string
	line int
}

// fail is a PolicyError at line at, naming the stanza's path.
func (s stanza) fail(at int, format string, args ...any) error {
	return &PolicyError{File: s.p.File, Line: at, Err: fmt.Errorf("path %q: "+format, append([]any{s.key}, args...)...)}
}

// decode checks the path's template braces (setting r.Templated) and the stanza's keys, then
// decodes the stanza into the types Vault does.
func (s stanza) decode(r *Rule) (pathHCL, error) {
	templated, err := hasTemplate(s.key)
	if err != nil {
		return pathHCL{}, s.fail(s.line, "failed to validate policy templating: %w", err)
	}
	r.Templated = templated
	if errs := checkKeys(s.item.Val, s.p.File, pathKeys); len(errs) > 0 {
		for i, e := range errs {
			pe := e.(*PolicyError)
			pe.Err = fmt.Errorf("path %q: %w", s.key, pe.Err)
			errs[i] = pe
		}
		return pathHCL{}, errors.Join(errs...)
	}
	var pc pathHCL
	if err := hcl.DecodeObject(&pc, s.item.Val); err != nil {
		return pathHCL{}, s.fail(max(lineOf(err), s.line), "%w", err)
	}
	return pc, nil
}

// setPath sets r's Path (the path without a leading "/") and Kind: Segment for a "+" segment
// (keeping a trailing "*"), else Prefix for a trailing "*" (cut); "+*" is refused.
func (s stanza) setPath(r *Rule) error {
	r.Path = strings.TrimPrefix(s.key, "/")
	if strings.Contains(r.Path, "+*") {
		return s.fail(s.line, "invalid use of wildcards ('+*' is forbidden)")
	}
	switch {
	case r.Path == "+" || strings.Contains(r.Path, "/+") || strings.HasPrefix(r.Path, "+/"):
		r.Kind = Segment // keeps its trailing "*"
	case strings.HasSuffix(r.Path, "*"):
		r.Kind, r.Path = Prefix, strings.TrimSuffix(r.Path, "*")
	}
	return nil
}

// capabilities sets r.Capabilities from the stanza's capability list with the legacy policy's
// appended, and returns that list (a control group's factors must be drawn from it). deny
// reports a "deny" in it: Vault keeps deny alone and reads nothing more of the stanza, neither
// the capabilities after it nor its parameters and TTLs, which are then neither checked nor
// kept.
func (s stanza) capabilities(r *Rule, pc *pathHCL) (caps []string, deny bool, err error) {
	caps = pc.Capabilities
	switch pc.Policy {
	case "":
	case "deny":
		caps = []string{"deny"}
	case "read":
		caps = append(caps, "read", "list")
	case "write":
		caps = append(caps, "create", "read", "update", "delete", "list")
	case "sudo":
		caps = append(caps, "create", "read", "update", "delete", "list", "sudo")
	default:
		return nil, false, s.fail(keyLine(s.item.Val, "policy", s.line), "invalid policy %q", pc.Policy)
	}
	for _, name := range caps {
		c, ok := parseCapability(name)
		if !ok {
			return nil, false, s.fail(keyLine(s.item.Val, "capabilities", s.line), "invalid capability %q", name)
		}
		if c == Deny {
			r.Capabilities = Deny
			return caps, true, nil
		}
		r.Capabilities |= c
	}
	return caps, false, nil
}

type lineErr struct {
	line int
	err  error
}

// parseRestrictions checks the stanza's TTLs and control group as Vault does and returns the
// keys that restrict requests; caps is the stanza's capability list with the legacy policy's
// appended, which a factor's controlled_capabilities must be drawn from (an empty list or map, or a zero TTL, restricts nothing).
func parseRestrictions(p *Policy, r *Rule, pc *pathHCL, caps []string, val ast.Node) *lineErr {
	line := r.Line
	add := func(key, detail string) {
		r.Restrictions = append(r.Restrictions, Restriction{Key: key, Detail: detail, Policy: p.Name, File: p.File, Line: keyLine(val, key, line)})
	}
	var minTTL, maxTTL time.Duration
	if pc.MinWrappingTTLHCL != nil {
		d, err := parseutil.ParseDurationSecond(pc.MinWrappingTTLHCL)
		if err != nil {
			return &lineErr{keyLine(val, "min_wrapping_ttl", line), fmt.Errorf("error parsing min_wrapping_ttl: %w", err)}
		}
		minTTL = d
	}
	if pc.MaxWrappingTTLHCL != nil {
		d, err := parseutil.ParseDurationSecond(pc.MaxWrappingTTLHCL)
		if err != nil {
			return &lineErr{keyLine(val, "max_wrapping_ttl", line), fmt.Errorf("error parsing max_wrapping_ttl: %w", err)}
		}
		maxTTL = d
	}
	if cg := pc.ControlGroupHCL; cg != nil {
		if err := checkControlGroup(cg, caps); err != nil {
			return &lineErr{keyLine(val, "control_group", line), err}
		}
		add("control_group", "(Vault Enterprise)")
	}
	if minTTL != 0 && maxTTL != 0 && maxTTL < minTTL {
		return &lineErr{keyLine(val, "max_wrapping_ttl", line), errors.New("max_wrapping_ttl cannot be less than min_wrapping_ttl")}
	}
	if len(pc.RequiredParametersHCL) > 0 {
		add("required_parameters", strings.Join(pc.RequiredParametersHCL, ", "))
	}
	if len(pc.AllowedParametersHCL) > 0 {
		add("allowed_parameters", paramNames(pc.AllowedParametersHCL))
	}
	if len(pc.DeniedParametersHCL) > 0 {
		add("denied_parameters", paramNames(pc.DeniedParametersHCL))
	}
	if minTTL > 0 {
		add("min_wrapping_ttl", minTTL.String())
	}
	if maxTTL > 0 {
		add("max_wrapping_ttl", maxTTL.String())
	}
	if len(pc.MFAMethodsHCL) > 0 {
		add("mfa_methods", strings.Join(pc.MFAMethodsHCL, ", ")+" (Vault Enterprise)")
	}
	r.MinWrappingTTL, r.MaxWrappingTTL = minTTL, maxTTL
	return nil
}

// checkControlGroup is Vault's validation of a control_group block (an Enterprise feature, but
// Community Edition parses and refuses it the same way).
func checkControlGroup(cg *controlGroupHCL, caps []string) error {
	if cg.TTL != nil {
		if _, err := parseutil.ParseDurationSecond(cg.TTL); err != nil {
			return fmt.Errorf("error parsing control group max ttl: %w", err)
		}
	}
	n := 0
	for _, f := range cg.Factors {
		if f.Identity == nil {
			return errors.New("no control_group factor provided")
		}
		if f.Identity.ApprovalsRequired <= 0 || (len(f.Identity.GroupIDs) == 0 && len(f.Identity.GroupNames) == 0) {
			return errors.New("must provide more than one identity group and approvals > 0")
		}
		for _, c := range f.ControlledCapabilities {
			found := false
			for _, have := range caps {
				found = found || have == c
			}
			if !found {
				return errors.New("control group factor capabilities must be a subset of the policy's capabilities")
			}
		}
		n++
	}
	if n == 0 {
		return errors.New("no control group factors provided")
	}
	return nil
}

func paramNames(m map[string][]interface{}) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, strings.ToLower(k))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// checkKeys is Vault's hclutil.CheckHCLKeys: every key of the block must be one of valid.
func checkKeys(node ast.Node, file string, valid []string) []error {
	var list *ast.ObjectList
	switch n := node.(type) {
	case *ast.ObjectList:
		list = n
	case *ast.ObjectType:
		list = n.List
	default:
		return []error{&PolicyError{File: file, Line: node.Pos().Line, Err: fmt.Errorf("cannot check HCL keys of type %T", n)}}
	}
	var errs []error
	for _, item := range list.Items {
		if len(item.Keys) == 0 {
			continue // the parser never makes one; Vault would panic
		}
		key, _ := item.Keys[0].Token.Value().(string)
		ok := false
		for _, v := range valid {
			ok = ok || v == key
		}
		if !ok {
			errs = append(errs, &PolicyError{File: file, Line: itemLine(item), Err: fmt.Errorf("invalid key %q", key)})
		}
	}
	return errs
}

// keyLine returns the line of key inside a stanza, else def.
func keyLine(val ast.Node, key string, def int) int {
	if ot, ok := val.(*ast.ObjectType); ok {
		for _, it := range ot.List.Items {
			if len(it.Keys) > 0 && it.Keys[0].Token.Value() == key {
				if l := itemLine(it); l > 0 {
					return l
				}
			}
		}
	}
	return def
}

// itemLine is the line of an attribute or block. HCL's JSON parser keeps no position on keys,
// only on the ":" (Assign), so that is the fall-back.
func itemLine(it *ast.ObjectItem) int {
	if len(it.Keys) > 0 && it.Keys[0].Pos().Line > 0 {
		return it.Keys[0].Pos().Line
	}
	if it.Assign.Line > 0 {
		return it.Assign.Line
	}
	return it.Val.Pos().Line
}

// ruleLine is the line of a path stanza. In JSON, flattening {"path": {"a": {...}}} gives every
// stanza the position of "path"'s ":", so the stanza's first attribute is a better guess.
func ruleLine(item *ast.ObjectItem) int {
	if len(item.Keys) > 0 && item.Keys[0].Pos().Line > 0 {
		return item.Keys[0].Pos().Line
	}
	if ot, ok := item.Val.(*ast.ObjectType); ok && len(ot.List.Items) > 0 {
		if l := itemLine(ot.List.Items[0]); l > 0 {
			return l
		}
	}
	return itemLine(item)
}

// errUnbalanced is Vault's identitytpl.ErrUnbalancedTemplatingCharacter.
var errUnbalanced = errors.New("unbalanced templating characters")

// hasTemplate is Vault's identitytpl validity check of a path: every "{{" must be closed by one
// "}}" before the next "{{", and no "}}" may come first.
func hasTemplate(s string) (bool, error) {
	parts := strings.Split(s, "{{")
	if strings.Contains(parts[0], "}}") {
		return false, errUnbalanced
	}
	for _, piece := range parts[1:] {
		if strings.Count(piece, "}}") != 1 {
			return false, errUnbalanced
		}
	}
	return len(parts) > 1, nil
}
