package explain

import (
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/chain"
)

// TestLoadBodies reads last known bodies from a policy directory and from Terraform (a heredoc,
// file(), templatefile() evaluated), the role definitions from Terraform, and refuses bad input
// with file and line.
func TestLoadBodies(t *testing.T) {
	t.Parallel()
	const tf = "../check/testdata/terraform/incident"
	tests := map[string]struct {
		policies, terraform string
		name                string
		text, source        string // what the body holds and its source starts with
		err                 string
	}{
		"a policy file, byte for byte": {policies: "../../cmd/credchain/app/testdata/explain/policies", name: "eso-order-service",
			text: "path \"registry-creds/data/order-service\" {\n  capabilities = [\"read\"]\n}\n", source: "--policies ../../cmd/credchain/app/testdata/explain/policies/eso-order-service.hcl"},
		"a Terraform heredoc, as Terraform evaluates it": {terraform: tf, name: "eso-order-service",
			text:   "path \"secret/data/order-service/*\" {\n  capabilities = [\"read\"]\n}\npath \"secret/metadata/order-service/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n",
			source: "--terraform " + tf + "/main.tf:27 (vault_policy.eso_order_service)"},
		"a Terraform templatefile(), its variables filled": {terraform: tf, name: "team-billing", text: "billing", source: "--terraform " + tf},
		"a policy Vault would refuse":                      {policies: "../../cmd/credchain/app/testdata/check/bad/policies", err: "typo.hcl:2"},
		"a Terraform directory that does not exist":        {terraform: "nope", err: "nope"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := LoadBodies(tc.policies, tc.terraform)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, ok := b.Policy(tc.name)
			if !ok || !strings.Contains(body.Text, tc.text) || !strings.HasPrefix(body.Source, tc.source) {
				t.Errorf("body %q from %q (ok %v), want it to hold %q, from %q", body.Text, body.Source, ok, tc.text, tc.source)
			}
		})
	}
	b, err := LoadBodies("", tf)
	if err != nil {
		t.Fatal(err)
	}
	r, src, ok := b.Role(chain.RoleRef{Mount: "kubernetes", Name: "external-secrets-operator"})
	if !ok || strings.Join(r.TokenPolicies, ",") != "eso-order-service,eso-payments,default" || !strings.Contains(src, "vault_kubernetes_auth_backend_role.eso") {
		t.Errorf("role %+v from %q", r, src)
	}
}
