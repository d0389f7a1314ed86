package check

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/credchain/credchain/internal/vaultacl"
)

// notReadable ends an evaluation error: what LoadTerraform evaluates, so the reader knows what to
// write instead.
const notReadable = "(check --terraform evaluates literals, path.module, file() and templatefile() of them, " +
	"and references to the vault_policy and vault_auth_backend resources of the same module)"

// unsupported are HCL's summaries for an expression using what LoadTerraform does not provide.
var unsupported = map[string]bool{"Unknown variable": true, "Unsupported attribute": true, "Call to unknown function": true}

// planHint is where values known only when Terraform plans can be read from.
const planHint = "check --terraform reads the .tf files only; for values Terraform computes, give it the plan " +
	"(terraform show -json plan.out | credchain check --terraform-plan -)"

// evalContext is what a module's expressions may use before its resources are read: path.* and
// the two file functions; module() adds the resources, and a called module has its var.
func (l *tfLoader) evalContext(m *tfModule) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"path": cty.ObjectVal(map[string]cty.Value{
			"module": cty.StringVal(m.rel), "root": cty.StringVal("."), "cwd": cty.StringVal("."),
		}),
	}
	if m.isChild {
		vars["var"] = cty.ObjectVal(m.vars)
	}
	return &hcl.EvalContext{Variables: vars, Functions: map[string]function.Function{
		"file": l.fileFunc(), "templatefile": l.templateFileFunc(),
	}}
}

// eval evaluates one attribute, recording why when it cannot.
func (l *tfLoader) eval(m *tfModule, ctx *hcl.EvalContext, addr string, a *hclsyntax.Attribute) (cty.Value, bool) {
	what := addr + ": " + a.Name
	if !l.readable(m, ctx, what, a.Expr) {
		return cty.NilVal, false
	}
	val, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		for _, d := range diags.Errs() {
			r := a.Expr.Range()
			msg := d.Error()
			if hd, ok := errors.AsType[*hcl.Diagnostic](d); ok {
				msg = hd.Summary + ": " + hd.Detail
				if unsupported[hd.Summary] {
					msg += " " + notReadable
				}
				if hd.Subject != nil {
					r = *hd.Subject
				}
			}
			l.fail(r, "%s: %s", what, msg)
		}
		return cty.NilVal, false
	}
	return val, true
}

// readable refuses, with a message saying what they are, references whose values are set only
// when Terraform plans, and references to resources the module does not have.
func (l *tfLoader) readable(m *tfModule, ctx *hcl.EvalContext, what string, expr hcl.Expression) bool {
	for _, tr := range expr.Variables() {
		ref := traversalString(tr)
		why, hint := "", planHint
		switch root := tr.RootName(); root {
		case "var":
			if !m.isChild {
				why = fmt.Sprintf("%s is a root module variable, set only when Terraform plans (-var, -var-file, TF_VAR_*)", ref)
			}
		case "local":
			why = ref + " is a local value, which check does not evaluate"
		case "data":
			why = ref + " is a data source, which Terraform reads when it plans"
		case "module":
			why = ref + " is a module's output, which check does not evaluate"
		case "vault_policy", "vault_auth_backend":
			if objs, ok := ctx.Variables[root]; ok && attrStep(tr, 1) != "" && !objs.Type().HasAttribute(attrStep(tr, 1)) {
				why = fmt.Sprintf("%s.%s is not defined in %s", root, attrStep(tr, 1), m.dir)
				hint = "or it has an error of its own"
			}
		}
		if why != "" {
			l.fail(tr.SourceRange(), "%s: %s; %s", what, why, hint)
			return false
		}
	}
	return true
}

func (l *tfLoader) stringAttr(m *tfModule, ctx *hcl.EvalContext, addr string, b *hclsyntax.Block, name string, required bool) (string, bool) {
	a := b.Body.Attributes[name]
	if a == nil {
		if required {
			l.fail(b.DefRange(), "%s: %s is required", addr, name)
			return "", false
		}
		return "", true
	}
	val, ok := l.eval(m, ctx, addr, a)
	if !ok {
		return "", false
	}
	if val.IsNull() {
		if required {
			l.fail(a.SrcRange, "%s: %s is required", addr, name)
			return "", false
		}
		return "", true
	}
	s, err := convert.Convert(val, cty.String)
	if err != nil {
		l.fail(a.Expr.Range(), "%s: %s: want a string: %v", addr, name, err)
		return "", false
	}
	return s.AsString(), true
}

func (l *tfLoader) stringsAttr(m *tfModule, ctx *hcl.EvalContext, addr string, b *hclsyntax.Block, name string) ([]string, bool) {
	a := b.Body.Attributes[name]
	if a == nil {
		return nil, true
	}
	val, ok := l.eval(m, ctx, addr, a)
	if !ok || val.IsNull() {
		return nil, ok
	}
	list, err := convert.Convert(val, cty.List(cty.String))
	if err != nil {
		l.fail(a.Expr.Range(), "%s: %s: want a list of strings: %v", addr, name, err)
		return nil, false
	}
	out := []string{}
	for it := list.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			l.fail(a.Expr.Range(), "%s: %s: null in the list", addr, name)
			return nil, false
		}
		out = append(out, e.AsString())
	}
	return out, true
}

func (l *tfLoader) boolAttr(m *tfModule, ctx *hcl.EvalContext, addr string, b *hclsyntax.Block, name string) (bool, bool) {
	a := b.Body.Attributes[name]
	if a == nil {
		return false, true
	}
	val, ok := l.eval(m, ctx, addr, a)
	if !ok || val.IsNull() {
		return false, ok
	}
	v, err := convert.Convert(val, cty.Bool)
	if err != nil {
		l.fail(a.Expr.Range(), "%s: %s: want a bool: %v", addr, name, err)
		return false, false
	}
	return v.True(), true
}

// policy reads a vault_policy: its name and text, parsed as Vault would; the name it defines.
func (l *tfLoader) policy(m *tfModule, ctx *hcl.EvalContext, b *hclsyntax.Block) (string, bool) {
	addr := m.prefix + b.Labels[0] + "." + b.Labels[1]
	if !l.single(addr, b) {
		return "", false
	}
	name, okName := l.stringAttr(m, ctx, addr, b, "name", true)
	l.lastFile = ""
	text, okText := l.stringAttr(m, ctx, addr, b, "policy", true)
	if !okName || !okText {
		return "", false
	}
	name = vaultacl.SanitizeName(name)
	file, offset := l.policyOrigin(b.Body.Attributes["policy"].Expr)
	p, err := vaultacl.Parse(name, file, text)
	if err != nil {
		l.errs = append(l.errs, shiftLines(policyInputError(err, file), offset))
		return "", false
	}
	shiftRules(p, offset)
	at := rangeAt(b.DefRange())
	if prev := l.policyAt[name]; prev != "" {
		l.fail(b.DefRange(), "%s: policy %q is also defined by %s", addr, name, prev)
		return "", false
	}
	l.policyAt[name] = addr + " (" + at + ")"
	l.v.Policies[name], l.v.PolicySources[name], l.v.PolicyAddresses[addr] = p, at, name
	return name, true
}

// policyOrigin is where a policy's text was written, and how far its line 1 is from the file's:
// the file file() or templatefile() read, or the .tf file, its text starting on the line after
// a heredoc's "<<EOT" or on the line of a quoted string.
func (l *tfLoader) policyOrigin(expr hclsyntax.Expression) (file string, offset int) {
	if call, ok := expr.(*hclsyntax.FunctionCallExpr); ok && l.lastFile != "" && (call.Name == "file" || call.Name == "templatefile") {
		return l.lastFile, 0
	}
	r := expr.Range()
	src := l.parser.Sources()[r.Filename]
	if r.Start.Byte < len(src) && bytes.HasPrefix(src[r.Start.Byte:], []byte("<<")) {
		return r.Filename, r.Start.Line
	}
	return r.Filename, r.Start.Line - 1
}

// shiftLines moves the lines of InputErrors (joined or not) by offset.
func shiftLines(err error, offset int) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			shiftLines(e, offset)
		}
	} else if ie, ok := err.(*InputError); ok && ie.Line > 0 {
		ie.Line += offset
	}
	return err
}

func shiftRules(p *vaultacl.Policy, offset int) {
	for i := range p.Rules {
		r := &p.Rules[i]
		r.Line += offset
		for j := range r.Restrictions {
			if r.Restrictions[j].Line > 0 {
				r.Restrictions[j].Line += offset
			}
		}
	}
}

// fileFunc is Terraform's file(): the file's text, the path relative to the root directory (the
// directory Terraform runs in).
func (l *tfLoader) fileFunc() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			text, err := l.readRel(args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(text), nil
		},
	})
}

// templateFileFunc is Terraform's templatefile(): the file rendered as a template with vars, and
// nothing else (no functions inside, as in Terraform no recursion).
func (l *tfLoader) templateFileFunc() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			text, err := l.readRel(path)
			if err != nil {
				return cty.NilVal, err
			}
			vars := args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, errors.New("vars must be an object or a map")
			}
			expr, diags := hclsyntax.ParseTemplate([]byte(text), l.lastFile, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			out, diags := expr.Value(&hcl.EvalContext{Variables: vars.AsValueMap()})
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			return convert.Convert(out, cty.String)
		},
	})
}

// readRel reads a file named relative to the root directory, bounded as a policy file is, and
// remembers it as the source of the text being read.
func (l *tfLoader) readRel(path string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(l.root, path)
	}
	b, err := readBoundedFile(path, vaultacl.MaxPolicyBytes)
	if err != nil {
		if ie, ok := err.(*InputError); ok {
			return "", fmt.Errorf("open %s: %w", path, ie.Err)
		}
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("contents of %s are not valid UTF-8", path)
	}
	l.lastFile = path
	return string(b), nil
}

// traversalString writes a reference as it is written: var.p, vault_policy.x.name.
func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		default:
			b.WriteString("[...]")
		}
	}
	return b.String()
}

// attrStep is the name of the i-th step of tr when it is an attribute, else "".
func attrStep(tr hcl.Traversal, i int) string {
	if i < len(tr) {
		if a, ok := tr[i].(hcl.TraverseAttr); ok {
			return a.Name
		}
	}
	return ""
}
