package explain

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
)

// role fixes a broken role link: a role that does not bind ESO's ServiceAccount gets it added to
// the binding that refuses it; a missing role is written from its last known definition.
func (x *fixer) role(i int) {
	rd := x.r.Links[i].Role
	ref := chain.RoleRef{Mount: rd.Mount, Name: rd.Name}
	switch {
	case !rd.Exists:
		x.missingRole(ref, rd.LoginAs)
	case rd.LoginAs != "":
		x.binding(ref, rd.LoginAs)
	}
}

// binding adds sa to the bindings of ref that refuse it, keeping every other field of the role
// as Vault returned it (Vault keeps fields a write does not name, but the command says them all
// so that it is the whole role, reviewable as it stands).
func (x *fixer) binding(ref chain.RoleRef, loginAs string) {
	role := x.f.Vault.Roles[ref]
	ns, name, _ := strings.Cut(loginAs, "/")
	sa := chain.ServiceAccountName{Namespace: ns, Name: name}
	fixed := *role
	fixed.BoundServiceAccountNames = slices.Clone(role.BoundServiceAccountNames)
	fixed.BoundServiceAccountNamespaces = slices.Clone(role.BoundServiceAccountNamespaces)
	// Vault checks the names first, then the namespaces: ask again after each fix.
	for range 2 {
		why := check.BindingRefusal(&fixed, sa)
		switch {
		case why == "":
		case strings.HasPrefix(why, "bound_service_account_names "): // not _namespaces
			fixed.BoundServiceAccountNames = append(fixed.BoundServiceAccountNames, sa.Name)
		default:
			fixed.BoundServiceAccountNamespaces = append(fixed.BoundServiceAccountNamespaces, sa.Namespace)
		}
	}
	args := roleArgs(x.f.RoleData[ref], &fixed)
	x.add(FixStep{Why: fmt.Sprintf("bind ServiceAccount %s to role %s/%s again, keeping its other fields", sa, ref.Mount, ref.Name),
		Command: "vault write " + shellQuote("auth/"+ref.Mount+"/role/"+ref.Name) + " " + strings.Join(args, " ")})
}

func (x *fixer) missingRole(ref chain.RoleRef, loginAs string) {
	r, src, ok := x.f.Bodies.Role(ref)
	if !ok {
		x.add(FixStep{Why: fmt.Sprintf("role %s/%s does not exist and no last known definition is at hand (give --terraform DIR): create it binding ServiceAccount %s with the policies ESO needs",
			ref.Mount, ref.Name, cmpOr(loginAs, "ESO's"))})
		return
	}
	x.add(FixStep{Why: fmt.Sprintf("create role %s/%s as last known, from %s", ref.Mount, ref.Name, src),
		Command: "vault write " + shellQuote("auth/"+ref.Mount+"/role/"+ref.Name) + " " + strings.Join(roleArgs(nil, r), " ")})
}

// legacyFields are the deprecated aliases Vault returns next to their token_ field; writing the
// token_ field is the same and clears the alias.
var legacyFields = map[string]string{"policies": "token_policies", "ttl": "token_ttl", "max_ttl": "token_max_ttl",
	"period": "token_period", "num_uses": "token_num_uses", "bound_cidrs": "token_bound_cidrs"}

// defaultFields are values Vault gives a role that sets nothing: not worth a word in the command.
var defaultFields = map[string]string{"alias_name_source": "serviceaccount_uid", "token_type": "default"}

// roleArgs are key=value arguments for `vault write` of role r: the bindings and token policies
// from r, then every other field of the raw read that is set (not empty, zero, false or a
// default), sorted.
func roleArgs(raw map[string]any, r *check.Role) []string {
	policies := r.TokenPolicies
	if len(policies) == 0 {
		policies = r.Policies
	}
	args := []string{
		arg("bound_service_account_names", strings.Join(r.BoundServiceAccountNames, ",")),
		arg("bound_service_account_namespaces", strings.Join(r.BoundServiceAccountNamespaces, ",")),
		arg("token_policies", strings.Join(policies, ",")),
	}
	if raw == nil && r.NoDefaultPolicy {
		args = append(args, "token_no_default_policy=true")
	}
	done := map[string]bool{"bound_service_account_names": true, "bound_service_account_namespaces": true, "token_policies": true}
	var rest []string
	for k, v := range raw {
		if done[k] || (legacyFields[k] != "" && raw[legacyFields[k]] != nil) || legacyFields[k] == "token_policies" {
			continue
		}
		if s, set := fieldValue(v); set && defaultFields[k] != s {
			rest = append(rest, arg(k, s))
		}
	}
	sort.Strings(rest)
	return append(args, rest...)
}

// fieldValue renders one field of a Vault answer as `vault write` takes it; set is false for an
// empty, zero or false value.
func fieldValue(v any) (s string, set bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return v, v != ""
	case bool:
		return "true", v
	case json.Number:
		return v.String(), v.String() != "0"
	case float64:
		s := fmt.Sprint(v)
		return s, v != 0
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, fmt.Sprint(e))
		}
		return strings.Join(parts, ","), len(parts) > 0
	}
	return fmt.Sprint(v), true
}

func arg(k, v string) string { return shellQuote(k + "=" + v) }

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
