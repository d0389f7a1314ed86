package check

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/chain"
)

var esoRole = chain.RoleRef{Mount: "kubernetes", Name: "external-secrets-operator"}

func TestPlanApply(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		file string
		// changes are the plan's, each Line found as the line of `"address": "ADDRESS"` under resource_changes, less one.
		changes []PlanChange
		// policies are the policy names after; esoPolicies the role's token_policies after (nil: the role is gone).
		policies    []string
		esoPolicies []string
		roles       []chain.RoleRef
		mounts      []string
		addresses   map[string]string
		unknownPol  map[string]string
		unknownRole map[chain.RoleRef]string
		incomplete  bool
	}{
		"(a) deletes vault_policy.eso_order_service": {
			file: "delete-policy.json",
			changes: []PlanChange{{Address: "vault_policy.eso_order_service", Action: "delete",
				Summary: `deletes policy "eso-order-service"`}},
			policies:    []string{"eso-payments", "team-billing"},
			esoPolicies: []string{"eso-order-service", "eso-payments", "default"}, // the role still names it
			addresses:   map[string]string{"vault_policy.eso_payments": "eso-payments", "vault_policy.team_billing": "team-billing"},
		},
		"(b) deletes it and drops it from the role": {
			file: "delete-policy-and-role.json",
			changes: []PlanChange{
				{Address: "vault_kubernetes_auth_backend_role.eso", Action: "update",
					Summary: "changes role auth/kubernetes/role/external-secrets-operator: token_policies [default eso-order-service eso-payments] → [default eso-payments]"},
				{Address: "vault_policy.eso_order_service", Action: "delete", Summary: `deletes policy "eso-order-service"`},
			},
			policies:    []string{"eso-payments", "team-billing"},
			esoPolicies: []string{"default", "eso-payments"},
			addresses:   map[string]string{"vault_policy.eso_payments": "eso-payments", "vault_policy.team_billing": "team-billing"},
		},
		"(c) renames a policy": {
			file: "rename-policy.json",
			changes: []PlanChange{{Address: "vault_policy.eso_payments", Action: "replace",
				Summary: `renames policy "eso-payments" to "eso-payments-v2" (Vault deletes "eso-payments")`}},
			policies:    []string{"eso-order-service", "eso-payments-v2", "team-billing"},
			esoPolicies: []string{"eso-order-service", "eso-payments", "default"},
			addresses: map[string]string{"vault_policy.eso_order_service": "eso-order-service",
				"vault_policy.eso_payments": "eso-payments-v2", "vault_policy.team_billing": "team-billing"},
		},
		"(d) values known only after apply, and a mount deleted": {
			file: "unknown-after.json",
			changes: []PlanChange{
				{Address: "vault_kubernetes_auth_backend_role.eso", Action: "update",
					Summary: "changes role auth/kubernetes/role/external-secrets-operator", Unknown: "token_policies is known only after apply"},
				{Address: "vault_policy.generated", Action: "create", Summary: `creates policy "generated"`, Unknown: "policy is known only after apply"},
				{Address: `module.tenants.vault_policy.tenant["a"]`, Action: "create", Summary: "creates a policy", Unknown: "name is known only after apply"},
				{Address: "module.prod.vault_auth_backend.k8s", Action: "delete", Summary: `deletes Kubernetes auth mount "k8s-prod" and every role on it`},
			},
			policies:    []string{"eso-order-service", "eso-payments", "team-billing"},
			roles:       []chain.RoleRef{{Mount: "kubernetes", Name: "legacy-reader"}},
			mounts:      []string{"kubernetes"},
			unknownPol:  map[string]string{"generated": "vault_policy.generated: policy is known only after apply"},
			unknownRole: map[chain.RoleRef]string{esoRole: "vault_kubernetes_auth_backend_role.eso: token_policies is known only after apply"},
			addresses: map[string]string{"vault_policy.eso_order_service": "eso-order-service", "vault_policy.eso_payments": "eso-payments",
				"vault_policy.team_billing": "team-billing", "vault_policy.generated": "generated"},
			incomplete: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			base, err := LoadTerraform(incidentTF, Authoritative())
			if err != nil {
				t.Fatal(err)
			}
			untouched, _ := LoadTerraform(incidentTF, Authoritative())
			file := filepath.Join("testdata/plans", tc.file)
			p := loadPlanFile(t, file)
			for i := range tc.changes {
				tc.changes[i].Line = changeLine(t, file, tc.changes[i].Address)
			}
			if got := p.Changes(); !reflect.DeepEqual(got, tc.changes) {
				t.Errorf("changes:\n got %+v\nwant %+v", got, tc.changes)
			}
			after := p.Apply(base)
			checkApplied(t, after, tc.policies, tc.esoPolicies, tc.addresses)
			if tc.roles != nil && !slices.Equal(sortedRefs(after.Roles), tc.roles) {
				t.Errorf("roles after %v, want %v", sortedRefs(after.Roles), tc.roles)
			}
			if tc.mounts != nil && !slices.Equal(slices.Sorted(maps.Keys(after.Mounts)), tc.mounts) {
				t.Errorf("mounts after %v, want %v", after.Mounts, tc.mounts)
			}
			if !maps.Equal(after.UnknownPolicies, orEmpty(tc.unknownPol)) || !maps.Equal(after.UnknownRoles, orEmpty(tc.unknownRole)) ||
				after.Complete == tc.incomplete {
				t.Errorf("unknown policies %v, roles %v, complete %v", after.UnknownPolicies, after.UnknownRoles, after.Complete)
			}
			if !reflect.DeepEqual(base, untouched) {
				t.Error("Apply modified the Vault it was given")
			}
		})
	}
}

func checkApplied(t *testing.T, after *Vault, policies, esoPolicies []string, addresses map[string]string) {
	t.Helper()
	if got := after.Policies.Names(); !slices.Equal(got, policies) {
		t.Errorf("policies after %v, want %v", got, policies)
	}
	for _, n := range policies {
		if after.PolicySources[n] == "" {
			t.Errorf("policy %s has no source", n)
		}
	}
	if len(after.PolicySources) != len(policies)+len(after.UnknownPolicies) {
		t.Errorf("policy sources %v for policies %v", after.PolicySources, policies)
	}
	r := after.Roles[esoRole]
	switch {
	case esoPolicies == nil && r != nil:
		t.Errorf("role %v still there: %+v", esoRole, *r)
	case esoPolicies != nil && (r == nil || !slices.Equal(r.TokenPolicies, esoPolicies)):
		t.Errorf("role %v after: %+v, want token_policies %v", esoRole, r, esoPolicies)
	}
	if !maps.Equal(after.PolicyAddresses, addresses) {
		t.Errorf("policy addresses %v, want %v", after.PolicyAddresses, addresses)
	}
}

// TestPlanApplyRenamedPolicyCarriesItsRules: the created policy is the plan's text, parsed, and
// says where it comes from.
func TestPlanApplyRenamedPolicyCarriesItsRules(t *testing.T) {
	t.Parallel()
	file := "testdata/plans/rename-policy.json"
	after := loadPlanFile(t, file).Apply(&Vault{})
	r := after.Policies.ACL("eso-payments-v2").Explain("secret/data/payments/db")
	if r.Capabilities.String() != "read" || r.Rule == nil || r.Rule.Sources[0].File != "vault_policy.eso_payments in "+file {
		t.Errorf("eso-payments-v2 on secret/data/payments/db: %+v", r)
	}
	if got, want := after.PolicySources["eso-payments-v2"], file+":"+strconv.Itoa(changeLine(t, file, "vault_policy.eso_payments")); got != want {
		t.Errorf("source %q, want %q", got, want)
	}
}

func TestLoadPlanRefusesBadInput(t *testing.T) {
	t.Parallel()
	change := func(actions, before, after string) string {
		return `{"format_version": "1.2", "planned_values": {}, "resource_changes": [` + "\n" +
			`{"address": "vault_policy.p", "mode": "managed", "type": "vault_policy", "name": "p",` + "\n" +
			`"change": {"actions": ` + actions + `, "before": ` + before + `, "after": ` + after + `, "after_unknown": {}}}]}`
	}
	tests := map[string]struct{ plan, want string }{
		"format 2":          {`{"format_version": "2.0", "resource_changes": []}`, `PLAN:1: format_version "2.0": credchain reads Terraform's JSON plan format 1.x (terraform show -json PLANFILE)`},
		"no format_version": {`{"resource_changes": []}`, `PLAN:1: no format_version: not the output of terraform show -json PLANFILE`},
		"a state":           {"{\n  \"format_version\": \"1.0\",\n  \"values\": {}\n}", `PLAN:1: a state, not a plan (no planned_values or resource_changes): give it terraform show -json PLANFILE`},
		"errored":           {"{\"format_version\": \"1.2\", \"planned_values\": {},\n\"errored\": true}", `PLAN:2: the plan errored: Terraform could not finish planning, so what it would change is not known`},
		"syntax":            {"{\n  \"format_version\": \"1.2\",\n  \"resource_changes\": [\n    {,\n", `PLAN:4: invalid character ',' looking for beginning of object key string`},
		"truncated":         {"{\n  \"format_version\": \"1.2\",\n  \"resource_changes\": [\n", `PLAN:3: unexpected end of JSON input`},
		"not an object":     {`[]`, `PLAN:1: want a JSON object, the output of terraform show -json PLANFILE`},
		"empty":             {"\n", `PLAN: empty: want the output of terraform show -json PLANFILE`},
		"wrong type":        {"{\"format_version\": \"1.2\",\n \"resource_changes\": [\n {\"address\": 3}]}", `PLAN:3: resource_changes[0]: json: cannot unmarshal number into Go struct field resourceChange.address of type string`},
		"bad policy text": {change(`["create"]`, `null`, `{"name": "p", "policy": "path \"x\" {\n  capabilities = [\"reed\"]\n}"}`),
			`PLAN:2: vault_policy.p: change.after.policy: line 2: path "x": invalid capability "reed"`},
		"unknown action":       {change(`["frobnicate"]`, `null`, `null`), `PLAN:2: vault_policy.p: change.actions ["frobnicate"]: not one Terraform plans (create, update, delete, a replace, no-op, read)`},
		"delete without name":  {change(`["delete"]`, `{"policy": "x"}`, `null`), `PLAN:2: vault_policy.p: change.before: no name`},
		"create without after": {change(`["create"]`, `null`, `null`), `PLAN:2: vault_policy.p: create without change.after`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadPlan(strings.NewReader(tc.plan), "plan.json")
			if want := "plan.json" + strings.TrimPrefix(tc.want, "PLAN"); err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
			if _, ok := errors.AsType[*InputError](err); !ok {
				t.Errorf("%v is not an InputError", err)
			}
		})
	}
}

func TestLoadPlanIgnoresOtherResources(t *testing.T) {
	t.Parallel()
	plan := `{"format_version": "1.2", "planned_values": {}, "resource_changes": [
	  {"address": "vault_mount.kv", "mode": "managed", "type": "vault_mount", "change": {"actions": ["delete"], "before": {"path": "secret"}, "after": null}},
	  {"address": "data.vault_policy_document.p", "mode": "data", "type": "vault_policy", "change": {"actions": ["read"], "before": null, "after": {}}},
	  {"address": "vault_auth_backend.approle", "mode": "managed", "type": "vault_auth_backend", "change": {"actions": ["delete"], "before": {"type": "approle", "path": "approle"}, "after": null}},
	  {"address": "vault_policy.same", "mode": "managed", "type": "vault_policy", "change": {"actions": ["no-op"], "before": {"name": "same"}, "after": {"name": "same"}}}
	]}`
	p, err := LoadPlan(strings.NewReader(plan), "-")
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Changes(); len(c) != 0 {
		t.Errorf("changes %+v, want none", c)
	}
}

func loadPlanFile(t *testing.T, file string) *Plan {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := LoadPlan(f, file)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// changeLine is the line the resource change of address starts on: its "address" line under
// resource_changes, less one (the fixtures open each change with "{" on a line of its own).
func changeLine(t *testing.T, file, address string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, `"resource_changes"`)
	quoted := strings.ReplaceAll(address, `"`, `\"`)
	i := strings.Index(s[start:], `"address": "`+quoted+`"`)
	if start < 0 || i < 0 {
		t.Fatalf("%s has no resource change %s", file, address)
	}
	return strings.Count(s[:start+i], "\n")
}

func sortedRefs[V any](m map[chain.RoleRef]V) []chain.RoleRef {
	out := slices.Collect(maps.Keys(m))
	slices.SortFunc(out, func(a, b chain.RoleRef) int { return strings.Compare(a.Mount+"/"+a.Name, b.Mount+"/"+b.Name) })
	return out
}

func orEmpty[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
