package check

import (
	"fmt"
	"strings"

	"github.com/credchain/credchain/internal/chain"
)

// planRoleFields are the role attributes check reads, in the order a summary lists them.
var planRoleFields = []string{"token_policies", "policies", "token_no_default_policy",
	"bound_service_account_names", "bound_service_account_namespaces"}

// roleItem is a vault_kubernetes_auth_backend_role change: a role is its backend and role_name
// (changing either replaces it); its other fields change in place.
func roleItem(it *planItem, c *planValues) error {
	var before *Role
	if c.del {
		r, err := planRole(c.before, it.source)
		if err != nil {
			return fmt.Errorf("change.before: %w", err)
		}
		ref := r.Ref()
		it.delRole, before = &ref, r
	}
	if c.put {
		if c.unknown("backend") || c.unknown("role_name") {
			it.unknownName, it.change.Unknown = true, "backend or role_name is known only after apply"
		} else if err := putRole(it, c); err != nil {
			return err
		}
	}
	it.change.Summary = roleSummary(it, before, c.action)
	return nil
}

func putRole(it *planItem, c *planValues) error {
	var unknown []string
	for _, f := range planRoleFields {
		if c.unknown(f) {
			unknown = append(unknown, f)
		}
	}
	r, err := planRole(c.after, it.source)
	if err != nil {
		return fmt.Errorf("change.after: %w", err)
	}
	if len(unknown) == 0 {
		it.putRole = r
		return nil
	}
	ref := r.Ref()
	it.unknownRole = &ref
	verb := " is"
	if len(unknown) > 1 {
		verb = " are"
	}
	it.change.Unknown = strings.Join(unknown, ", ") + verb + " known only after apply"
	return nil
}

// planRole is a role from a change's before or after values; values known only after apply are
// null there, and read as unset (the caller has recorded them as unknown).
func planRole(m map[string]any, source string) (*Role, error) {
	backend, err := planString(m, "backend", false)
	if err != nil {
		return nil, err
	}
	r := &Role{Mount: strings.Trim(backend, "/"), Source: source}
	if r.Mount == "" {
		r.Mount = "kubernetes"
	}
	if r.Name, err = planString(m, "role_name", true); err != nil {
		return nil, err
	}
	for key, dst := range map[string]*[]string{
		"token_policies": &r.TokenPolicies, "policies": &r.Policies,
		"bound_service_account_names": &r.BoundServiceAccountNames, "bound_service_account_namespaces": &r.BoundServiceAccountNamespaces,
	} {
		if *dst, err = planStrings(m, key); err != nil {
			return nil, err
		}
	}
	switch b := m["token_no_default_policy"].(type) {
	case bool:
		r.NoDefaultPolicy = b
	case nil:
	default:
		return nil, fmt.Errorf("token_no_default_policy: want a bool, got %T", b)
	}
	return r, nil
}

func roleSummary(it *planItem, before *Role, action string) string {
	var after *chain.RoleRef
	switch {
	case it.putRole != nil:
		ref := it.putRole.Ref()
		after = &ref
	case it.unknownRole != nil:
		after = it.unknownRole
	}
	switch {
	case it.unknownName && before != nil:
		return fmt.Sprintf("replaces role %s by one whose backend or role_name is known only after apply", rolePath(before.Ref()))
	case it.unknownName:
		return "creates a role"
	case before == nil:
		return "creates role " + rolePath(*after) + roleFieldDiff(nil, it.putRole)
	case after == nil:
		return "deletes role " + rolePath(before.Ref())
	case *after != before.Ref():
		return fmt.Sprintf("moves role %s to %s", rolePath(before.Ref()), rolePath(*after)) + roleFieldDiff(before, it.putRole)
	case action == "replace":
		return "replaces role " + rolePath(*after) + roleFieldDiff(before, it.putRole)
	}
	return "changes role " + rolePath(*after) + roleFieldDiff(before, it.putRole)
}

// roleFieldDiff lists the fields check reads that differ, ": token_policies [a b] → [a]"; for a
// new role (before nil) its policies.
func roleFieldDiff(before, after *Role) string {
	if after == nil {
		return ""
	}
	if before == nil {
		return fmt.Sprintf(" with token policies %v", after.TokenPolicyNames())
	}
	values := func(r *Role) []string {
		return []string{fmt.Sprint(r.TokenPolicies), fmt.Sprint(r.Policies), fmt.Sprint(r.NoDefaultPolicy),
			fmt.Sprint(r.BoundServiceAccountNames), fmt.Sprint(r.BoundServiceAccountNamespaces)}
	}
	b, a := values(before), values(after)
	var diffs []string
	for i, f := range planRoleFields {
		if b[i] != a[i] {
			diffs = append(diffs, fmt.Sprintf("%s %s → %s", f, b[i], a[i]))
		}
	}
	if len(diffs) == 0 {
		return " (no field check reads)"
	}
	return ": " + strings.Join(diffs, "; ")
}

// rolePath is the role's path in Vault.
func rolePath(ref chain.RoleRef) string { return "auth/" + ref.Mount + "/role/" + ref.Name }
