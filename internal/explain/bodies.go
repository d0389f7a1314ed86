package explain

import (
	"fmt"
	"os"
	"strings"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
	"github.com/credchain/credchain/internal/vaultacl"
)

// Bodies are the last known policy bodies (and, from Terraform, role definitions) that a fix
// writes back: the desired state as the team keeps it, in a directory of policy files
// (--policies) or a Terraform configuration (--terraform). A directory's files are written back
// byte for byte; a Terraform policy is written back from its parsed rules (LoadTerraform keeps
// the rules, not the text), which is exact for rules of paths and capabilities and refused for
// rules with parameter or wrapping restrictions, whose text could not be reproduced exactly.
type Bodies struct {
	policies map[string]Body
	roles    map[chain.RoleRef]*check.Role
	// roleSources are where each role is defined, for the fix's words.
	roleSources map[chain.RoleRef]string
}

// Body is one policy's last known body.
type Body struct {
	Text string
	// Source says where it came from: "--policies policies/eso.hcl", "--terraform infra/main.tf:12
	// (vault_policy.eso)".
	Source string
	Policy *vaultacl.Policy
	// Unusable, when set, is why the source defines the policy but its body cannot be used.
	Unusable string
}

// LoadBodies reads the policy bodies of policiesDir and terraformDir, either of which may be
// "". A name both define takes policiesDir's. Errors are bad input: a policy Vault would refuse
// (vaultacl.PolicyError) or a Terraform configuration LoadTerraform refuses (check.InputError),
// with file and line.
func LoadBodies(policiesDir, terraformDir string) (*Bodies, error) {
	b := &Bodies{policies: map[string]Body{}, roles: map[chain.RoleRef]*check.Role{}, roleSources: map[chain.RoleRef]string{}}
	if terraformDir != "" {
		if err := b.loadTerraform(terraformDir); err != nil {
			return nil, err
		}
	}
	if policiesDir != "" {
		set, err := vaultacl.LoadDir(policiesDir)
		if err != nil {
			return nil, err
		}
		for name, p := range set {
			text, err := os.ReadFile(p.File)
			if err != nil {
				return nil, fmt.Errorf("--policies: %w", err)
			}
			b.policies[name] = Body{Text: string(text), Source: "--policies " + p.File, Policy: p}
		}
	}
	return b, nil
}

func (b *Bodies) loadTerraform(dir string) error {
	v, err := check.LoadTerraform(dir)
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for a, name := range v.PolicyAddresses {
		addr[name] = a
	}
	for name, p := range v.Policies {
		src := fmt.Sprintf("--terraform %s (%s)", v.PolicySources[name], addr[name])
		text, why := renderPolicy(p)
		if why != "" {
			why = fmt.Sprintf("%s defines it, but %s; apply it with terraform apply -target=%s", src, why, addr[name])
		}
		b.policies[name] = Body{Text: text, Source: src + ", its rules as parsed", Policy: p, Unusable: why}
	}
	for a, ref := range v.RoleAddresses {
		if r := v.Roles[ref]; r != nil {
			b.roles[ref], b.roleSources[ref] = r, fmt.Sprintf("--terraform %s (%s)", r.Source, a)
		}
	}
	return nil
}

// Policy returns name's last known body; ok is false when there is none to write (Unusable
// may say why).
func (b *Bodies) Policy(name string) (Body, bool) {
	if b == nil {
		return Body{}, false
	}
	p, ok := b.policies[name]
	return p, ok && p.Unusable == ""
}

// Role returns ref's last known definition and where it comes from.
func (b *Bodies) Role(ref chain.RoleRef) (*check.Role, string, bool) {
	if b == nil || b.roles[ref] == nil {
		return nil, "", false
	}
	return b.roles[ref], b.roleSources[ref], true
}

// renderPolicy writes p's rules back as policy text, or says why it cannot exactly: the rules'
// restrictions are kept as Vault parsed them, not as written.
func renderPolicy(p *vaultacl.Policy) (string, string) {
	var sb strings.Builder
	for _, r := range p.Rules {
		if len(r.Restrictions) > 0 || r.MinWrappingTTL > 0 || r.MaxWrappingTTL > 0 {
			return "", fmt.Sprintf("its rule %q has restrictions that cannot be written back exactly", r.Written)
		}
		caps := []string{}
		if r.Capabilities != 0 {
			caps = r.Capabilities.Strings()
		}
		q := make([]string, len(caps))
		for i, c := range caps {
			q[i] = fmt.Sprintf("%q", c)
		}
		fmt.Fprintf(&sb, "path %q {\n  capabilities = [%s]\n}\n", r.Written, strings.Join(q, ", "))
	}
	return sb.String(), ""
}
