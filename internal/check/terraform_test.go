package check

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/chain"
)

const incidentTF = "testdata/terraform/incident"

func TestLoadTerraformReadsTheIncident(t *testing.T) {
	t.Parallel()
	v, err := LoadTerraform(incidentTF)
	if err != nil {
		t.Fatal(err)
	}
	main, prod := filepath.Join(incidentTF, "main.tf"), filepath.Join(incidentTF, "modules/prod/main.tf")
	at := func(file, text string) string { return file + ":" + strconv.Itoa(lineOfText(t, file, text)) }

	wantRoles := map[chain.RoleRef]*Role{
		{Mount: "kubernetes", Name: "external-secrets-operator"}: {Mount: "kubernetes", Name: "external-secrets-operator",
			TokenPolicies:            []string{"eso-order-service", "eso-payments", "default"},
			BoundServiceAccountNames: []string{"external-secrets"}, BoundServiceAccountNamespaces: []string{"external-secrets"},
			Source: at(main, `resource "vault_kubernetes_auth_backend_role" "eso"`)},
		{Mount: "kubernetes", Name: "legacy-reader"}: {Mount: "kubernetes", Name: "legacy-reader",
			Policies:                 []string{"eso-payments"},
			BoundServiceAccountNames: []string{"*"}, BoundServiceAccountNamespaces: []string{"payments"},
			Source: at(main, `resource "vault_kubernetes_auth_backend_role" "legacy"`)},
		{Mount: "k8s-prod", Name: "prod-reader"}: {Mount: "k8s-prod", Name: "prod-reader",
			TokenPolicies: []string{"eso-order-service", "team-billing"}, NoDefaultPolicy: true,
			BoundServiceAccountNames: []string{"external-secrets"}, BoundServiceAccountNamespaces: []string{"external-secrets"},
			Source: at(prod, `resource "vault_kubernetes_auth_backend_role" "prod_reader"`)},
	}
	if len(v.Roles) != len(wantRoles) {
		t.Errorf("roles:%s\nwant%s", dumpRoles(v.Roles), dumpRoles(wantRoles))
	}
	for ref, want := range wantRoles {
		if got := v.Roles[ref]; got == nil || !roleEqual(got, want) {
			t.Errorf("role %v:\n got %+v\nwant %+v", ref, got, *want)
		}
	}
	wantAddr := map[string]chain.RoleRef{
		"vault_kubernetes_auth_backend_role.eso":                     {Mount: "kubernetes", Name: "external-secrets-operator"},
		"vault_kubernetes_auth_backend_role.legacy":                  {Mount: "kubernetes", Name: "legacy-reader"},
		"module.prod.vault_kubernetes_auth_backend_role.prod_reader": {Mount: "k8s-prod", Name: "prod-reader"},
	}
	if !maps.Equal(v.RoleAddresses, wantAddr) {
		t.Errorf("role addresses %v, want %v", v.RoleAddresses, wantAddr)
	}
	if want := map[string]bool{"kubernetes": true, "k8s-prod": true}; !maps.Equal(v.Mounts, want) || v.Complete {
		t.Errorf("mounts %v complete %v, want %v, not complete", v.Mounts, v.Complete, want)
	}
	wantSources := map[string]string{
		"eso-order-service": at(main, `resource "vault_policy" "eso_order_service"`),
		"eso-payments":      at(main, `resource "vault_policy" "eso_payments"`),
		"team-billing":      at(main, `resource "vault_policy" "team_billing"`),
	}
	if !maps.Equal(v.PolicySources, wantSources) {
		t.Errorf("policy sources %v, want %v", v.PolicySources, wantSources)
	}
	wantPolicyAddr := map[string]string{"vault_policy.eso_order_service": "eso-order-service",
		"vault_policy.eso_payments": "eso-payments", "vault_policy.team_billing": "team-billing"}
	if !maps.Equal(v.PolicyAddresses, wantPolicyAddr) {
		t.Errorf("policy addresses %v, want %v", v.PolicyAddresses, wantPolicyAddr)
	}
	checkIncidentRules(t, v, main)
}

// checkIncidentRules: the texts came through (heredoc, file(), templatefile()), and a rule names
// the line it is written on, in the .tf file for a heredoc, in the policy file for file().
func checkIncidentRules(t *testing.T, v *Vault, main string) {
	t.Helper()
	payments := filepath.Join(incidentTF, "policies/eso-payments.hcl")
	tests := map[string]struct {
		policies []string
		path     string
		caps     string
		file     string
		text     string // the rule's path line, found in file
	}{
		"heredoc": {policies: []string{"eso-order-service"}, path: "secret/metadata/order-service/regcred", caps: "list, read",
			file: main, text: `path "secret/metadata/order-service/*"`},
		"file()": {policies: []string{"eso-payments"}, path: "secret/data/payments/db", caps: "read",
			file: payments, text: `path "secret/data/payments/*"`},
		"templatefile()": {policies: []string{"team-billing"}, path: "secret/data/teams/billing/x", caps: "list, read",
			file: filepath.Join(incidentTF, "policies/team.hcl.tpl"), text: `path "secret/data/teams/${team}/*"`},
	}
	for name, tc := range tests {
		r := v.Policies.ACL(tc.policies...).Explain(tc.path)
		if got := r.Capabilities.String(); got != tc.caps || r.Rule == nil {
			t.Errorf("%s: %s on %s = %s, want %s", name, tc.policies, tc.path, got, tc.caps)
			continue
		}
		src := r.Rule.Sources[0]
		if want := lineOfText(t, tc.file, tc.text); src.File != tc.file || src.Line != want {
			t.Errorf("%s: rule from %s:%d, want %s:%d", name, src.File, src.Line, tc.file, want)
		}
	}
	if u := v.Policies.ACL("team-billing").Explain("secret/data/users/alice/x").Unknown; len(u) == 0 {
		t.Error("the templated rule of team.hcl.tpl is not reported as unknown")
	}
}

func TestLoadTerraformAuthoritative(t *testing.T) {
	t.Parallel()
	v, err := LoadTerraform(incidentTF, Authoritative())
	if err != nil || !v.Complete {
		t.Errorf("complete %v, error %v", v != nil && v.Complete, err)
	}
}

func TestLoadTerraformRefusesWhatItCannotRead(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		tf    string
		files map[string]string
		// want are the errors in order, FILE the main.tf written, LINE(text) the line of text in it.
		want []string
	}{
		"variable in token_policies": {
			tf:   "variable \"p\" {}\nresource \"vault_kubernetes_auth_backend_role\" \"r\" {\n  role_name = \"r\"\n  token_policies = var.p\n}\n",
			want: []string{`FILE:4: vault_kubernetes_auth_backend_role.r: token_policies: var.p is a root module variable, set only when Terraform plans (-var, -var-file, TF_VAR_*); ` + planHint},
		},
		"reference to a policy the directory does not define": {
			tf:   "resource \"vault_kubernetes_auth_backend_role\" \"r\" {\n  role_name = \"r\"\n  token_policies = [vault_policy.gone.name]\n}\n",
			want: []string{`FILE:3: vault_kubernetes_auth_backend_role.r: token_policies: vault_policy.gone is not defined in DIR; or it has an error of its own`},
		},
		"another function": {
			tf:   "resource \"vault_policy\" \"p\" {\n  name = upper(\"p\")\n  policy = \"path \\\"x\\\" { capabilities = [\\\"read\\\"] }\"\n}\n",
			want: []string{`FILE:2: vault_policy.p: name: Call to unknown function: There is no function named "upper". ` + notReadable},
		},
		"policy document data source": {
			tf:   "resource \"vault_policy\" \"p\" {\n  name = \"p\"\n  policy = data.vault_policy_document.p.hcl\n}\n",
			want: []string{`FILE:3: vault_policy.p: policy: data.vault_policy_document.p.hcl is a data source, which Terraform reads when it plans; ` + planHint},
		},
		"for_each": {
			tf:   "resource \"vault_policy\" \"p\" {\n  for_each = toset([\"a\"])\n  name = each.key\n  policy = \"path \\\"x\\\" { capabilities = [\\\"read\\\"] }\"\n}\n",
			want: []string{`FILE:2: vault_policy.p: for_each: credchain check reads one instance per resource; a resource with count or for_each names its instances from values it cannot evaluate`},
		},
		"bad policy in a heredoc: the .tf line": {
			tf:   "resource \"vault_policy\" \"p\" {\n  name = \"p\"\n  policy = <<EOT\npath \"secret/*\" {\n  capabilities = [\"reed\"]\n}\nEOT\n}\n",
			want: []string{`FILE:5: path "secret/*": invalid capability "reed"`},
		},
		"bad policy in a file: its line": {
			tf:    "resource \"vault_policy\" \"p\" {\n  name = \"p\"\n  policy = file(\"p.hcl\")\n}\n",
			files: map[string]string{"p.hcl": "\n\npath \"secret/*\" {\n  capabilities = [\"reed\"]\n}\n"},
			want:  []string{`DIR/p.hcl:4: path "secret/*": invalid capability "reed"`},
		},
		"missing file": {
			tf:   "resource \"vault_policy\" \"p\" {\n  name = \"p\"\n  policy = file(\"nope.hcl\")\n}\n",
			want: []string{`FILE:3: vault_policy.p: policy: Error in function call: Call to function "file" failed: open DIR/nope.hcl: no such file or directory.`},
		},
		"no name, and a role without role_name": {
			tf: "resource \"vault_policy\" \"p\" {\n  policy = \"path \\\"x\\\" { capabilities = [\\\"read\\\"] }\"\n}\n" +
				"resource \"vault_kubernetes_auth_backend_role\" \"r\" {\n  token_policies = []\n}\n",
			want: []string{`FILE:1: vault_policy.p: name is required`, `FILE:4: vault_kubernetes_auth_backend_role.r: role_name is required`},
		},
		"two resources, one policy": {
			tf: "resource \"vault_policy\" \"a\" {\n  name = \"p\"\n  policy = \"path \\\"x\\\" { capabilities = [\\\"read\\\"] }\"\n}\n" +
				"resource \"vault_policy\" \"b\" {\n  name = \"P\"\n  policy = \"path \\\"x\\\" { capabilities = [\\\"read\\\"] }\"\n}\n",
			want: []string{`FILE:5: vault_policy.b: policy "p" is also defined by vault_policy.a (FILE:1)`},
		},
		"wrong type": {
			tf:   "resource \"vault_kubernetes_auth_backend_role\" \"r\" {\n  role_name = \"r\"\n  token_no_default_policy = [true]\n}\n",
			want: []string{`FILE:3: vault_kubernetes_auth_backend_role.r: token_no_default_policy: want a bool: bool required, but have tuple`},
		},
		"syntax error": {
			tf:   "resource \"vault_policy\" \"p\" {\n  name = \"p\"\n  policy = \n}\n",
			want: []string{`FILE:3: Invalid expression: Expected the start of an expression, but found an invalid expression token.`},
		},
		"tf.json": {
			files: map[string]string{"main.tf.json": "{}"},
			want:  []string{`DIR/main.tf.json: Terraform's JSON syntax is not read; write the Vault resources in .tf files`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			main := filepath.Join(dir, "main.tf")
			if tc.tf != "" {
				write(t, main, tc.tf)
			}
			for f, text := range tc.files {
				write(t, filepath.Join(dir, f), text)
			}
			_, err := LoadTerraform(dir)
			if err == nil {
				t.Fatal("no error")
			}
			want := strings.NewReplacer("FILE", main, "DIR", dir).Replace(strings.Join(tc.want, "\n"))
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			if _, ok := errors.AsType[*InputError](err); !ok {
				t.Errorf("%v is not an InputError", err)
			}
		})
	}
}

func TestLoadTerraformNoDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := LoadTerraform(dir)
	if ie, ok := errors.AsType[*InputError](err); !ok || ie.File != dir || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want an InputError for %s", err, dir)
	}
}

func roleEqual(a, b *Role) bool {
	return a.Mount == b.Mount && a.Name == b.Name && slices.Equal(a.TokenPolicies, b.TokenPolicies) &&
		slices.Equal(a.Policies, b.Policies) && a.NoDefaultPolicy == b.NoDefaultPolicy &&
		slices.Equal(a.BoundServiceAccountNames, b.BoundServiceAccountNames) &&
		slices.Equal(a.BoundServiceAccountNamespaces, b.BoundServiceAccountNamespaces) && a.Source == b.Source
}

// lineOfText is the line of file on which text first appears.
func lineOfText(t *testing.T, file, text string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), text)
	if i < 0 {
		t.Fatalf("%s has no %q", file, text)
	}
	return strings.Count(string(b[:i]), "\n") + 1
}
