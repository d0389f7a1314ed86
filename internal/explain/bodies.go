package explain

import (
	"fmt"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
	"github.com/credchain/credchain/internal/vaultacl"
)

// Bodies are the last known policy bodies (and, from Terraform, role definitions) that a fix
// writes back: the desired state as the team keeps it, in a directory of policy files
// (--policies) or a Terraform configuration (--terraform). Each body is the text Vault would be
// sent (vaultacl.Policy.Text): a file as written, a Terraform policy as Terraform evaluates it
// (a heredoc, file(), templatefile() with its variables).
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
			b.policies[name] = Body{Text: p.Text, Source: "--policies " + p.File, Policy: p}
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
		b.policies[name] = Body{Text: p.Text, Source: fmt.Sprintf("--terraform %s (%s)", v.PolicySources[name], addr[name]), Policy: p}
	}
	for a, ref := range v.RoleAddresses {
		if r := v.Roles[ref]; r != nil {
			b.roles[ref], b.roleSources[ref] = r, fmt.Sprintf("--terraform %s (%s)", r.Source, a)
		}
	}
	return nil
}

// Policy returns name's last known body; ok is false when there is none.
func (b *Bodies) Policy(name string) (Body, bool) {
	if b == nil {
		return Body{}, false
	}
	p, ok := b.policies[name]
	return p, ok
}

// Role returns ref's last known definition and where it comes from.
func (b *Bodies) Role(ref chain.RoleRef) (*check.Role, string, bool) {
	if b == nil || b.roles[ref] == nil {
		return nil, "", false
	}
	return b.roles[ref], b.roleSources[ref], true
}
