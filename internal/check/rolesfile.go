package check

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/credchain/credchain/internal/chain"
)

// maxRolesBytes bounds the roles file: fifty roles are a few kilobytes, and a file this size is
// not a roles file.
const maxRolesBytes = 16 << 20

// roleFields are the keys of one role in the roles file, Vault's own names for them
// (auth/<mount>/role/<name>) plus mount and name, which are the role's path.
var roleFields = []string{"mount", "name", "token_policies", "policies", "token_no_default_policy",
	"bound_service_account_names", "bound_service_account_namespaces"}

// loadRolesFile reads the roles file (see LoadVaultFiles for its shape) and returns its roles in
// file order. Every problem is reported, each an InputError with the line: an unknown key is an
// error, not ignored, because a misspelt token_policies would otherwise read as a role without
// policies and fail every chain through it for the wrong reason.
func loadRolesFile(file string) ([]*Role, error) {
	b, err := readBoundedFile(file, maxRolesBytes)
	if err != nil {
		return nil, err
	}
	return decodeRoles(b, file)
}

// decodeRoles is loadRolesFile on the file's bytes.
func decodeRoles(b []byte, file string) ([]*Role, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		// JSON: a raw tab can only be whitespace there (JSON strings escape it), and YAML, which
		// parses the rest of JSON as it is, refuses tabs where JSON allows them.
		b = bytes.ReplaceAll(b, []byte("\t"), []byte(" "))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		line, msg := yamlErrorLine(err)
		return nil, &InputError{File: file, Line: line, Err: errors.New(msg)}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	d := &rolesDecoder{file: file}
	seq := d.rolesList(doc.Content[0])
	var roles []*Role
	at := map[chain.RoleRef]int{}
	for _, item := range seq {
		r := d.role(item)
		if r == nil {
			continue
		}
		if first, dup := at[r.Ref()]; dup {
			d.fail(item.Line, "role %s/%s is also defined at line %d", r.Mount, r.Name, first)
			continue
		}
		at[r.Ref()] = item.Line
		roles = append(roles, r)
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return roles, nil
}

// rolesDecoder walks the YAML nodes, which keep their lines, collecting every error.
type rolesDecoder struct {
	file string
	errs []error
}

func (d *rolesDecoder) fail(line int, format string, args ...any) {
	d.errs = append(d.errs, &InputError{File: d.file, Line: line, Err: fmt.Errorf(format, args...)})
}

// rolesList is the top level's roles: the only key it may have.
func (d *rolesDecoder) rolesList(root *yaml.Node) []*yaml.Node {
	root = deref(root)
	if root.Kind != yaml.MappingNode {
		d.fail(root.Line, "want a mapping with roles: [...], got %s", kindName(root))
		return nil
	}
	var list []*yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], deref(root.Content[i+1])
		switch {
		case k.Value != "roles":
			d.fail(k.Line, "unknown field %q (the file holds roles: [...])", k.Value)
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		case v.Kind != yaml.SequenceNode:
			d.fail(v.Line, "roles: want a list of roles, got %s", kindName(v))
		default:
			list = v.Content
		}
	}
	return list
}

// role decodes one item of roles; nil when it has errors (recorded).
func (d *rolesDecoder) role(n *yaml.Node) *Role {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, "a role: want a mapping, got %s", kindName(n))
		return nil
	}
	before := len(d.errs)
	r := &Role{Source: d.file + ":" + strconv.Itoa(n.Line)}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, "%s is also set at line %d", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		switch k.Value {
		case "mount":
			r.Mount = d.str(k.Value, v)
		case "name":
			r.Name = d.str(k.Value, v)
		case "token_policies":
			r.TokenPolicies = d.strs(k.Value, v)
		case "policies":
			r.Policies = d.strs(k.Value, v)
		case "token_no_default_policy":
			r.NoDefaultPolicy = d.boolean(k.Value, v)
		case "bound_service_account_names":
			r.BoundServiceAccountNames = d.strs(k.Value, v)
		case "bound_service_account_namespaces":
			r.BoundServiceAccountNamespaces = d.strs(k.Value, v)
		default:
			d.fail(k.Line, "unknown field %q in a role (known: %s)", k.Value, strings.Join(roleFields, ", "))
		}
	}
	if r.Mount = strings.Trim(r.Mount, "/"); r.Mount == "" {
		r.Mount = "kubernetes"
	}
	if r.Name == "" && len(d.errs) == before {
		d.fail(n.Line, "a role needs a name")
	}
	if len(d.errs) > before {
		return nil
	}
	return r
}

func (d *rolesDecoder) str(key string, v *yaml.Node) string {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		d.fail(v.Line, "%s: want a string, got %s", key, kindName(v))
		return ""
	}
	return v.Value
}

func (d *rolesDecoder) strs(key string, v *yaml.Node) []string {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.fail(v.Line, "%s: want a list of strings, got %s", key, kindName(v))
		return nil
	}
	out := []string{}
	for _, e := range v.Content {
		e = deref(e)
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
			d.fail(e.Line, "%s: want a list of strings, got %s in it", key, kindName(e))
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

func (d *rolesDecoder) boolean(key string, v *yaml.Node) bool {
	var b bool
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&b) != nil {
		d.fail(v.Line, "%s: want true or false, got %q", key, v.Value)
	}
	return b
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Tag == "!!null":
		return "null"
	}
	return "a scalar"
}

// yamlLine is the position yaml.v3 writes into its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlErrorLine splits a yaml.v3 error into its line (0 when it has none) and message.
func yamlErrorLine(err error) (int, string) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(err.Error(), "yaml: ")
}

// readBoundedFile reads a whole input file of at most limit bytes; its errors are InputErrors.
func readBoundedFile(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fileError(file, err)
	}
	defer f.Close()
	return readBounded(f, file, limit)
}

// readBounded reads r whole, refusing more than limit bytes.
func readBounded(r io.Reader, name string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, &InputError{File: name, Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &InputError{File: name, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	return b, nil
}

// fileError is an InputError for a file that cannot be opened or read, without the path twice.
func fileError(file string, err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		err = pe.Err
	}
	return &InputError{File: file, Err: err}
}
