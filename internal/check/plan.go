package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxPlanBytes bounds a plan: `terraform show -json` of a large configuration is tens of
// megabytes (it carries the whole prior state and configuration); a runaway pipe should fail with
// a message, not take the CI runner's memory.
const maxPlanBytes = 256 << 20

// Plan is a proposed change to Vault, read from `terraform show -json PLANFILE`: what it does to
// vault_policy, vault_kubernetes_auth_backend_role and vault_auth_backend resources. Apply shows
// Vault as it would be after; Changes says what changes, for the report.
type Plan struct {
	// Name is the plan's file as the user named it ("-" for stdin), for messages.
	Name  string
	items []*planItem
}

// PlanChange is one resource the plan changes, as the report shows it.
type PlanChange struct {
	// Address is the resource's Terraform address: vault_policy.eso_order_service,
	// module.vault.vault_kubernetes_auth_backend_role.eso.
	Address string
	// Action is create, update, delete or replace (a delete and a create, in either order).
	Action string
	// Summary says what the change does to Vault in plain words:
	// `deletes policy "eso-order-service"`,
	// `changes role kubernetes/eso: token_policies [a b] → [a]`.
	Summary string
	// Unknown, when set, says which of the change's values Terraform knows only after apply;
	// what depends on them is "unknown" after Apply.
	Unknown string
	// Line is the change's line in the plan file.
	Line int
}

// LoadPlan reads `terraform show -json PLANFILE` output (Terraform's JSON plan format, whose
// format_version must be 1.x: a new major version is refused, as the format's own rules ask) and
// keeps the changes to the Vault resources it knows: their change.actions ("create", "update",
// "delete", a replace as "delete"+"create" in either order; "no-op" and "read" are nothing),
// change.before and change.after, and change.after_unknown for what is known only after apply.
// Resources of other types, and data sources, are ignored.
//
// Every error is an InputError with the plan's name and line: input that is not JSON, not a plan
// (a state, whose show -json has values but no changes), a plan that errored, or a change check
// cannot read (an action it does not know, a policy text Vault would refuse).
func LoadPlan(r io.Reader, name string) (*Plan, error) {
	b, err := readBounded(r, name, maxPlanBytes)
	if err != nil {
		return nil, err
	}
	top, err := decodePlan(b, name)
	if err != nil {
		return nil, err
	}
	if err := top.validate(name); err != nil {
		return nil, err
	}
	p := &Plan{Name: name}
	var errs []error
	for _, rc := range top.changes {
		item, err := newPlanItem(name, rc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if item != nil {
			p.items = append(p.items, item)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Changes are the plan's changes to Vault resources in the plan's order, no-ops left out.
func (p *Plan) Changes() []PlanChange {
	out := make([]PlanChange, 0, len(p.items))
	for _, it := range p.items {
		out = append(out, it.change)
	}
	return out
}

// planTop is what LoadPlan reads of the plan's top level, with the lines of what it checks.
type planTop struct {
	formatVersion          string
	formatLine, errorLine  int
	errored, sawPlanFields bool
	changes                []resourceChange
}

// resourceChange is one element of resource_changes[].
type resourceChange struct {
	Address string `json:"address"`
	Mode    string `json:"mode"`
	Type    string `json:"type"`
	Change  struct {
		Actions      []string        `json:"actions"`
		Before       map[string]any  `json:"before"`
		After        map[string]any  `json:"after"`
		AfterUnknown json.RawMessage `json:"after_unknown"`
	} `json:"change"`
	line int
}

// decodePlan walks the top-level object with a streaming decoder, so that each resource change
// and the format_version keep their lines; everything else is skipped.
func decodePlan(b []byte, name string) (*planTop, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, &InputError{File: name, Err: errors.New("empty: want the output of terraform show -json PLANFILE")}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	fail := func(err error) error { return jsonInputError(b, name, dec, err) }
	if tok, err := dec.Token(); err != nil {
		return nil, fail(err)
	} else if tok != json.Delim('{') {
		return nil, &InputError{File: name, Line: 1, Err: errors.New("want a JSON object, the output of terraform show -json PLANFILE")}
	}
	top := &planTop{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail(err)
		}
		key, _ := tok.(string)
		line := lineAt(b, valueStart(b, dec.InputOffset()))
		switch key {
		case "format_version":
			top.formatLine = line
			err = decodeAt(b, name, key, dec, &top.formatVersion)
		case "errored":
			top.errorLine = line
			err = decodeAt(b, name, key, dec, &top.errored)
		case "resource_changes":
			top.sawPlanFields = true
			top.changes, err = decodeChanges(b, name, dec, line)
		case "planned_values":
			top.sawPlanFields = true
			err = decodeAt(b, name, key, dec, &json.RawMessage{})
		default:
			err = decodeAt(b, name, key, dec, &json.RawMessage{})
		}
		if err != nil {
			return nil, fail(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fail(err)
	}
	return top, nil
}

// decodeChanges reads resource_changes[], each element with the line it starts on.
func decodeChanges(b []byte, name string, dec *json.Decoder, line int) ([]resourceChange, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('[') {
		return nil, &InputError{File: name, Line: line, Err: errors.New("resource_changes: want a list")}
	}
	var out []resourceChange
	for i := 0; dec.More(); i++ {
		start := lineAt(b, valueStart(b, dec.InputOffset()))
		var rc resourceChange
		if err := decodeAt(b, name, fmt.Sprintf("resource_changes[%d]", i), dec, &rc); err != nil {
			return nil, err
		}
		rc.line = start
		out = append(out, rc)
	}
	_, err = dec.Token()
	return out, err
}

func (t *planTop) validate(name string) error {
	major, _, _ := strings.Cut(t.formatVersion, ".")
	switch {
	case t.formatLine == 0:
		return &InputError{File: name, Line: 1, Err: errors.New("no format_version: not the output of terraform show -json PLANFILE")}
	case major != "1":
		return &InputError{File: name, Line: t.formatLine, Err: fmt.Errorf("format_version %q: credchain reads Terraform's JSON plan format 1.x (terraform show -json PLANFILE)", t.formatVersion)}
	case !t.sawPlanFields:
		return &InputError{File: name, Line: 1, Err: errors.New("a state, not a plan (no planned_values or resource_changes): give it terraform show -json PLANFILE")}
	case t.errored:
		return &InputError{File: name, Line: t.errorLine, Err: errors.New("the plan errored: Terraform could not finish planning, so what it would change is not known")}
	}
	return nil
}

// valueStart skips the whitespace, colons and commas from off to the next value.
func valueStart(b []byte, off int64) int64 {
	for off < int64(len(b)) && strings.IndexByte(" \t\r\n:,", b[off]) >= 0 {
		off++
	}
	return off
}

// decodeAt decodes the next value into v; its errors are InputErrors on the line they are on (a
// type error at the value's first line, with what, the value's place, in front).
func decodeAt(b []byte, name, what string, dec *json.Decoder, v any) error {
	start := valueStart(b, dec.InputOffset())
	err := dec.Decode(v)
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return syntaxError(b, name, err)
	}
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return &InputError{File: name, Line: lineAt(b, start), Err: fmt.Errorf("%s: %w", what, err)}
	}
	return err
}

// jsonInputError is a decoding error with the line it is on: its own when it has one, the
// last line for input that ends too soon.
func jsonInputError(b []byte, name string, dec *json.Decoder, err error) error {
	if ie, ok := errors.AsType[*InputError](err); ok {
		return ie
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return syntaxError(b, name, err)
	}
	off := dec.InputOffset()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		off = int64(len(bytes.TrimRight(b, " \t\r\n")))
		err = errors.New("unexpected end of JSON input")
	}
	return &InputError{File: name, Line: lineAt(b, off), Err: err}
}

// syntaxError places a syntax error the streaming decoder found: its offsets count neither from
// the input's start nor from the value's, so the whole input is checked again, which is rare
// and cheap beside reading it, and whose offset is the input's own.
func syntaxError(b []byte, name string, err error) error {
	if e := json.Unmarshal(b, &json.RawMessage{}); e != nil {
		if se, ok := errors.AsType[*json.SyntaxError](e); ok {
			return &InputError{File: name, Line: lineAt(b, max(se.Offset-1, 0)), Err: se}
		}
	}
	return &InputError{File: name, Err: err}
}
