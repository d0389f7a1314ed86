package check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// maxModuleDepth bounds how deep local module calls are followed (and ends a cycle of them).
const maxModuleDepth = 8

// LoadTerraform reads the Vault half from a Terraform configuration (`credchain check
// --terraform DIR`): DIR/*.tf, parsed with hashicorp/hcl/v2, and the modules it calls from local
// paths (source = "./..." or "../..."), their resources addressed as Terraform does
// (module.NAME.vault_policy.x). Modules from a registry or git are not read: what they define is
// absent, hence unknown unless Authoritative.
//
// Resources read:
//   - vault_policy: name, and policy as a string or heredoc, file(PATH) or templatefile(PATH, {...});
//   - vault_kubernetes_auth_backend_role: backend (default "kubernetes"), role_name,
//     token_policies (and the legacy policies), token_no_default_policy,
//     bound_service_account_names, bound_service_account_namespaces;
//   - vault_auth_backend: type and path (default: the type), for the mounts (those of type
//     "kubernetes") and for roles whose backend refers to one.
//
// Values are evaluated, not guessed: literals and templates of them, path.module/path.root/
// path.cwd, file() and templatefile() (paths relative to DIR, Terraform's working directory),
// vault_policy.X.name (or .id) and vault_auth_backend.X.path (or .id) of the same module, and in a
// called module its var.X from the call's literal arguments or the variable's default. Anything
// else — a root module variable, a local, a data source, count or for_each, another function — is
// an InputError naming the file, line and attribute, so the job exits 2: a check that passes
// because it could not read a role's policies would keep a CI job green on exactly the change it
// exists to stop. (A plan's values, which Terraform has evaluated, go through LoadPlan.)
//
// PolicySources are "file.tf:line" of each resource; PolicyAddresses and RoleAddresses map the
// resource addresses to what they define. A policy's rules carry the line they are written on:
// in the .tf file for a heredoc, in the policy file for file(). Vault.Complete is false unless
// Authoritative().
func LoadTerraform(dir string, opts ...LoadOption) (*Vault, error) {
	o := applyLoadOptions(opts)
	v := &Vault{
		Source:          "terraform " + dir,
		Policies:        vaultacl.Set{},
		PolicySources:   map[string]string{},
		Roles:           map[chain.RoleRef]*Role{},
		Mounts:          map[string]bool{},
		Complete:        o.authoritative,
		PolicyAddresses: map[string]string{},
		RoleAddresses:   map[string]chain.RoleRef{},
	}
	l := &tfLoader{root: dir, v: v, parser: hclparse.NewParser(), policyAt: map[string]string{}}
	if _, err := os.Stat(dir); err != nil {
		return nil, fileError(dir, err)
	}
	l.module(&tfModule{dir: dir, rel: "."}, 0)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return v, nil
}

// tfLoader reads one configuration; single-goroutine.
type tfLoader struct {
	root   string
	v      *Vault
	parser *hclparse.Parser
	// policyAt is where each policy name is defined: "address (file:line)", for duplicates.
	policyAt map[string]string
	// lastFile is the file file() or templatefile() read last: the source of a policy's text.
	lastFile string
	errs     []error
}

// tfModule is one module being read: its directory, its path.module (relative to the root, as
// Terraform gives it), its address prefix, and the values of its variables (nil for the root
// module, whose variables are set only at plan time).
type tfModule struct {
	dir, rel, prefix string
	vars             map[string]cty.Value
	isChild          bool
}

// tfResources are a module's blocks by kind, in file order.
type tfResources struct {
	backends, policies, roles, modules, variables []*hclsyntax.Block
}

func (l *tfLoader) fail(r hcl.Range, format string, args ...any) {
	l.errs = append(l.errs, &InputError{File: r.Filename, Line: r.Start.Line, Err: fmt.Errorf(format, args...)})
}

// module reads one module directory and follows its local module calls.
func (l *tfLoader) module(m *tfModule, depth int) {
	res := l.parseDir(m.dir)
	if m.isChild {
		l.variableDefaults(m, res.variables)
	}
	ctx := l.evalContext(m)
	backends := map[string]cty.Value{}
	for _, b := range res.backends {
		if name, path, ok := l.backend(m, ctx, b); ok {
			backends[name] = cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal(path), "id": cty.StringVal(path)})
		}
	}
	policies := map[string]cty.Value{}
	for _, b := range res.policies {
		if name, ok := l.policy(m, ctx, b); ok {
			policies[b.Labels[1]] = cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "id": cty.StringVal(name)})
		}
	}
	// Roles and module arguments may refer to the resources just read.
	ctx.Variables["vault_auth_backend"] = cty.ObjectVal(backends)
	ctx.Variables["vault_policy"] = cty.ObjectVal(policies)
	for _, b := range res.roles {
		l.role(m, ctx, b)
	}
	for _, b := range res.modules {
		if child := l.moduleCall(m, ctx, b, depth); child != nil {
			l.module(child, depth+1)
		}
	}
}

// parseDir parses dir/*.tf in name order and sorts out the blocks this reads.
func (l *tfLoader) parseDir(dir string) tfResources {
	var res tfResources
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.errs = append(l.errs, fileError(dir, err))
		return res
	}
	for _, e := range entries {
		file := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			continue
		case strings.HasSuffix(e.Name(), ".tf.json"):
			l.errs = append(l.errs, &InputError{File: file, Err: errors.New("Terraform's JSON syntax is not read; write the Vault resources in .tf files")})
			continue
		case !strings.HasSuffix(e.Name(), ".tf"):
			continue
		}
		f, diags := l.parser.ParseHCLFile(file)
		if diags.HasErrors() {
			l.diagnostics("", diags)
			continue
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			l.sort(&res, b)
		}
	}
	return res
}

func (l *tfLoader) sort(res *tfResources, b *hclsyntax.Block) {
	switch {
	case b.Type == "module" && len(b.Labels) == 1:
		res.modules = append(res.modules, b)
	case b.Type == "variable" && len(b.Labels) == 1:
		res.variables = append(res.variables, b)
	case b.Type != "resource" || len(b.Labels) != 2:
	case b.Labels[0] == "vault_auth_backend":
		res.backends = append(res.backends, b)
	case b.Labels[0] == "vault_policy":
		res.policies = append(res.policies, b)
	case b.Labels[0] == "vault_kubernetes_auth_backend_role":
		res.roles = append(res.roles, b)
	}
}

// diagnostics records HCL's errors; what, when set, prefixes each ("vault_policy.x: policy").
func (l *tfLoader) diagnostics(what string, diags hcl.Diagnostics) {
	for _, d := range diags.Errs() {
		var r hcl.Range
		if hd, ok := errors.AsType[*hcl.Diagnostic](d); ok && hd.Subject != nil {
			r = *hd.Subject
		}
		msg := d.Error()
		if hd, ok := errors.AsType[*hcl.Diagnostic](d); ok {
			msg = hd.Summary + ": " + hd.Detail
		}
		if what != "" {
			msg = what + ": " + msg
		}
		if r.Filename == "" {
			l.errs = append(l.errs, errors.New(msg))
			continue
		}
		l.errs = append(l.errs, &InputError{File: r.Filename, Line: r.Start.Line, Err: errors.New(msg)})
	}
}

// backend reads a vault_auth_backend: its path (default its type); kubernetes ones are mounts.
func (l *tfLoader) backend(m *tfModule, ctx *hcl.EvalContext, b *hclsyntax.Block) (name, path string, ok bool) {
	addr := m.prefix + b.Labels[0] + "." + b.Labels[1]
	if !l.single(addr, b) {
		return "", "", false
	}
	typ, okType := l.stringAttr(m, ctx, addr, b, "type", true)
	path, okPath := l.stringAttr(m, ctx, addr, b, "path", false)
	if !okType || !okPath {
		return "", "", false
	}
	if path = strings.Trim(path, "/"); path == "" {
		path = typ
	}
	if typ == "kubernetes" {
		l.v.Mounts[path] = true
	}
	return b.Labels[1], path, true
}

// role reads a vault_kubernetes_auth_backend_role.
func (l *tfLoader) role(m *tfModule, ctx *hcl.EvalContext, b *hclsyntax.Block) {
	addr := m.prefix + b.Labels[0] + "." + b.Labels[1]
	if !l.single(addr, b) {
		return
	}
	before := len(l.errs)
	r := &Role{Source: rangeAt(b.DefRange())}
	backend, _ := l.stringAttr(m, ctx, addr, b, "backend", false)
	r.Name, _ = l.stringAttr(m, ctx, addr, b, "role_name", true)
	r.TokenPolicies, _ = l.stringsAttr(m, ctx, addr, b, "token_policies")
	r.Policies, _ = l.stringsAttr(m, ctx, addr, b, "policies")
	r.NoDefaultPolicy, _ = l.boolAttr(m, ctx, addr, b, "token_no_default_policy")
	r.BoundServiceAccountNames, _ = l.stringsAttr(m, ctx, addr, b, "bound_service_account_names")
	r.BoundServiceAccountNamespaces, _ = l.stringsAttr(m, ctx, addr, b, "bound_service_account_namespaces")
	if len(l.errs) > before {
		return
	}
	if r.Mount = strings.Trim(backend, "/"); r.Mount == "" {
		r.Mount = "kubernetes"
	}
	if prev, dup := l.v.Roles[r.Ref()]; dup {
		l.fail(b.DefRange(), "%s: role %s/%s is also defined at %s", addr, r.Mount, r.Name, prev.Source)
		return
	}
	l.v.Roles[r.Ref()] = r
	l.v.RoleAddresses[addr] = r.Ref()
	l.v.Mounts[r.Mount] = true
}

// moduleCall is the module a call reads, or nil for one from elsewhere (a registry, git).
func (l *tfLoader) moduleCall(m *tfModule, ctx *hcl.EvalContext, b *hclsyntax.Block, depth int) *tfModule {
	addr := m.prefix + "module." + b.Labels[0]
	src, ok := l.stringAttr(m, ctx, addr, b, "source", true)
	if !ok || !(strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../")) || !l.single(addr, b) {
		return nil
	}
	if depth+1 > maxModuleDepth {
		l.fail(b.DefRange(), "%s: modules nested deeper than %d (a cycle?)", addr, maxModuleDepth)
		return nil
	}
	child := &tfModule{dir: filepath.Join(m.dir, src), rel: filepath.Join(m.rel, src), prefix: addr + ".",
		vars: map[string]cty.Value{}, isChild: true}
	// The call's arguments are the child's variables; one that does not evaluate is left out, so
	// only a use of it in the child is an error (a module's tags are none of check's business).
	for name, a := range b.Body.Attributes {
		switch name {
		case "source", "version", "providers", "depends_on", "count", "for_each":
			continue
		}
		if val, diags := a.Expr.Value(ctx); !diags.HasErrors() {
			child.vars[name] = val
		}
	}
	return child
}

// variableDefaults fills a called module's variables its call does not set from their defaults.
func (l *tfLoader) variableDefaults(m *tfModule, vars []*hclsyntax.Block) {
	for _, b := range vars {
		if _, set := m.vars[b.Labels[0]]; set {
			continue
		}
		if a, ok := b.Body.Attributes["default"]; ok {
			if val, diags := a.Expr.Value(nil); !diags.HasErrors() {
				m.vars[b.Labels[0]] = val
			}
		}
	}
}

// single refuses count and for_each: their instances are named from values check cannot know.
func (l *tfLoader) single(addr string, b *hclsyntax.Block) bool {
	for _, meta := range []string{"count", "for_each"} {
		if a, ok := b.Body.Attributes[meta]; ok {
			l.fail(a.SrcRange, "%s: %s: credchain check reads one instance per resource; a resource with count or for_each names its instances from values it cannot evaluate", addr, meta)
			return false
		}
	}
	return true
}

// rangeAt is "file:line" of r.
func rangeAt(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }
