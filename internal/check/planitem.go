package check

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// planItem is what one resource change does to Vault: what it removes, what it puts in its
// place, and what it leaves unknown. Apply removes first, for every item, then puts: a policy
// moved from one resource to another is deleted by one change and created by the other.
type planItem struct {
	change PlanChange
	source string // "plan.json:LINE"

	delPolicy, putPolicyName string
	putPolicy                *vaultacl.Policy
	unknownPolicy            string // a policy whose text is known only after apply

	delRole, unknownRole *chain.RoleRef
	putRole              *Role

	delMount, putMount string

	// unknownName is a policy, role or mount created under a name known only after apply: any
	// policy, role or mount absent may then exist.
	unknownName bool
}

// planKinds are the resource types a plan's changes are read for.
var planKinds = map[string]func(it *planItem, c *planValues) error{
	"vault_policy":                       policyItem,
	"vault_kubernetes_auth_backend_role": roleItem,
	"vault_auth_backend":                 mountItem,
}

// planValues are one change's values and what it does with them.
type planValues struct {
	address, planName string
	before, after     map[string]any
	afterUnknown      any
	del, put          bool
	action            string
}

// unknown is whether after_unknown marks key, or part of it, as known only after apply.
func (c *planValues) unknown(key string) bool {
	if b, ok := c.afterUnknown.(bool); ok {
		return b
	}
	m, _ := c.afterUnknown.(map[string]any)
	return containsTrue(m[key])
}

func containsTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case []any:
		return slices.ContainsFunc(v, containsTrue)
	case map[string]any:
		for _, e := range v {
			if containsTrue(e) {
				return true
			}
		}
	}
	return false
}

// newPlanItem reads one resource change; nil for what does not change Vault's policies, roles or
// Kubernetes mounts.
func newPlanItem(planName string, rc resourceChange) (*planItem, error) {
	kind := planKinds[rc.Type]
	if kind == nil || rc.Mode == "data" {
		return nil, nil
	}
	fail := func(err error) error {
		return &InputError{File: planName, Line: rc.line, Err: fmt.Errorf("%s: %w", rc.Address, err)}
	}
	action, err := planAction(rc.Change.Actions)
	if err != nil || action == "" {
		if err != nil {
			err = fail(err)
		}
		return nil, err
	}
	c := &planValues{address: rc.Address, planName: planName, before: rc.Change.Before, after: rc.Change.After, action: action,
		del: action != "create", put: action != "delete"}
	if len(rc.Change.AfterUnknown) > 0 {
		if err := json.Unmarshal(rc.Change.AfterUnknown, &c.afterUnknown); err != nil {
			return nil, fail(fmt.Errorf("change.after_unknown: %w", err))
		}
	}
	switch {
	case c.del && c.before == nil:
		return nil, fail(fmt.Errorf("%s without change.before", action))
	case c.put && c.after == nil && !c.unknown(""):
		return nil, fail(fmt.Errorf("%s without change.after", action))
	}
	it := &planItem{change: PlanChange{Address: rc.Address, Action: action, Line: rc.line}, source: planName + ":" + strconv.Itoa(rc.line)}
	if err := kind(it, c); err != nil {
		return nil, fail(err)
	}
	if it.change.Summary == "" { // a mount of another type
		return nil, nil
	}
	return it, nil
}

// planAction names change.actions; "" for no change.
func planAction(actions []string) (string, error) {
	switch strings.Join(actions, ",") {
	case "no-op", "read":
		return "", nil
	case "create", "update", "delete":
		return actions[0], nil
	case "delete,create", "create,delete":
		return "replace", nil
	}
	return "", fmt.Errorf("change.actions %q: not one Terraform plans (create, update, delete, a replace, no-op, read)", actions)
}

// policyItem is a vault_policy change: a policy is its name; a new name is a delete of the old.
func policyItem(it *planItem, c *planValues) error {
	if c.del {
		n, err := planString(c.before, "name", true)
		if err != nil {
			return fmt.Errorf("change.before: %w", err)
		}
		it.delPolicy = vaultacl.SanitizeName(n)
	}
	if c.put {
		if err := putPolicy(it, c); err != nil {
			return err
		}
	}
	it.change.Summary = policySummary(it, c.action)
	return nil
}

func putPolicy(it *planItem, c *planValues) error {
	if c.unknown("name") {
		it.unknownName = true
		it.change.Unknown = "name is known only after apply"
		return nil
	}
	n, err := planString(c.after, "name", true)
	if err != nil {
		return fmt.Errorf("change.after: %w", err)
	}
	it.putPolicyName = vaultacl.SanitizeName(n)
	if c.unknown("policy") {
		it.unknownPolicy = it.putPolicyName
		it.change.Unknown = "policy is known only after apply"
		return nil
	}
	text, err := planString(c.after, "policy", true)
	if err != nil {
		return fmt.Errorf("change.after: %w", err)
	}
	p, err := vaultacl.Parse(n, "", text)
	if err != nil {
		return fmt.Errorf("change.after.policy: %w", err)
	}
	p.File = c.address + " in " + c.planName
	for i := range p.Rules {
		for j := range p.Rules[i].Restrictions {
			p.Rules[i].Restrictions[j].File = p.File
		}
	}
	it.putPolicy = p
	return nil
}

func policySummary(it *planItem, action string) string {
	switch {
	case it.unknownName && it.delPolicy != "":
		return fmt.Sprintf("replaces policy %q by one whose name is known only after apply", it.delPolicy)
	case it.unknownName:
		return "creates a policy"
	case action == "create":
		return fmt.Sprintf("creates policy %q", it.putPolicyName)
	case action == "delete":
		return fmt.Sprintf("deletes policy %q", it.delPolicy)
	case it.delPolicy != it.putPolicyName:
		return fmt.Sprintf("renames policy %q to %q (Vault deletes %q)", it.delPolicy, it.putPolicyName, it.delPolicy)
	case action == "replace":
		return fmt.Sprintf("replaces policy %q", it.delPolicy)
	}
	return fmt.Sprintf("changes the rules of policy %q", it.delPolicy)
}

// planString is a string attribute of change.before or change.after.
func planString(m map[string]any, key string, required bool) (string, error) {
	switch v := m[key].(type) {
	case string:
		return v, nil
	case nil:
		if required {
			return "", fmt.Errorf("no %s", key)
		}
		return "", nil
	default:
		return "", fmt.Errorf("%s: want a string, got %T", key, v)
	}
}

// planStrings is a list-of-strings attribute (Terraform writes sets as lists too).
func planStrings(m map[string]any, key string) ([]string, error) {
	raw, ok := m[key].([]any)
	if !ok {
		if m[key] != nil {
			return nil, fmt.Errorf("%s: want a list, got %T", key, m[key])
		}
		return nil, nil
	}
	out := make([]string, 0, len(raw))
	for _, e := range raw {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s: want strings, got %T in the list", key, e)
		}
		out = append(out, s)
	}
	return out, nil
}

// mountItem is a vault_auth_backend change; only Kubernetes mounts matter to check. Vault deletes
// a mount's roles with it, so a replaced mount comes back empty unless the plan recreates them.
func mountItem(it *planItem, c *planValues) error {
	if c.del {
		p, k8s, err := mountPath(c.before)
		if err != nil {
			return fmt.Errorf("change.before: %w", err)
		}
		if k8s {
			it.delMount = p
		}
	}
	if c.put {
		if c.unknown("path") || c.unknown("type") {
			it.unknownName, it.change.Unknown = true, "path is known only after apply"
		} else if p, k8s, err := mountPath(c.after); err != nil {
			return fmt.Errorf("change.after: %w", err)
		} else if k8s {
			it.putMount = p
		}
	}
	switch {
	case it.delMount != "" && it.delMount == it.putMount:
		it.change.Summary = fmt.Sprintf("replaces Kubernetes auth mount %q: Vault deletes every role on it", it.delMount)
	case it.delMount != "" && it.putMount != "":
		it.change.Summary = fmt.Sprintf("moves Kubernetes auth mount %q to %q: Vault deletes every role on it", it.delMount, it.putMount)
	case it.delMount != "":
		it.change.Summary = fmt.Sprintf("deletes Kubernetes auth mount %q and every role on it", it.delMount)
	case it.putMount != "":
		it.change.Summary = fmt.Sprintf("enables Kubernetes auth mount %q", it.putMount)
	case it.unknownName:
		it.change.Summary = "enables an auth mount"
	}
	return nil
}

// mountPath is a vault_auth_backend's path (its type when unset) and whether it is Kubernetes.
func mountPath(m map[string]any) (string, bool, error) {
	typ, err := planString(m, "type", true)
	if err != nil {
		return "", false, err
	}
	p, err := planString(m, "path", false)
	if p = strings.Trim(p, "/"); p == "" {
		p = typ
	}
	return p, typ == "kubernetes", err
}
