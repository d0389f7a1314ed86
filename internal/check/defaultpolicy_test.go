package check

import (
	"fmt"
	"slices"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/testenv"
	"github.com/credchain/credchain/internal/vaultacl"
)

// TestBuiltinDefaultIsVaults holds builtinDefault to the default policy a real Vault 1.21 dev
// server creates: the same rules, path by path, with the same capabilities.
func TestBuiltinDefaultIsVaults(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	dv := testenv.StartVault(t)
	cfg := vaultapi.DefaultConfig()
	cfg.Address = dv.Addr
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(dv.RootToken)
	text, err := c.Sys().GetPolicyWithContext(t.Context(), "default")
	if err != nil {
		t.Fatal(err)
	}
	real, err := vaultacl.Parse("default", "vault", text)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ruleLines(builtinDefaultPolicy()), ruleLines(real); !slices.Equal(got, want) {
		t.Errorf("built-in default policy:\n%q\nVault's:\n%q", got, want)
	}
}

func ruleLines(p *vaultacl.Policy) []string {
	var out []string
	for _, r := range p.Rules {
		out = append(out, fmt.Sprintf("%s %v templated=%v restrictions=%d", r.Written, r.Capabilities.Strings(), r.Templated, len(r.Restrictions)))
	}
	slices.Sort(out)
	return out
}

// TestWithDefault: the built-in default is added only when the input has none, and the input's
// set is not modified.
func TestWithDefault(t *testing.T) {
	t.Parallel()
	own, err := vaultacl.Parse("default", "default.hcl", `path "x" { capabilities = ["read"] }`)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		in   vaultacl.Set
		want *vaultacl.Policy
	}{
		"no default: the built-in": {in: vaultacl.Set{}, want: builtinDefaultPolicy()},
		"the input's own default":  {in: vaultacl.Set{"default": own}, want: own},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := len(tc.in)
			if got := withDefault(tc.in)["default"]; got != tc.want {
				t.Errorf("default is %s, want %s", got.File, tc.want.File)
			}
			if len(tc.in) != n {
				t.Errorf("the input set was modified")
			}
		})
	}
}
