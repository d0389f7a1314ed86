package check

import (
	"errors"
	"os"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// LoadVaultFiles reads the Vault half offline, from files a repository keeps (`credchain check
// --vault-policies DIR --vault-roles FILE`).
//
// Policies are policyDir/NAME.hcl and policyDir/NAME.json, the policy named by the file (as
// vaultacl.LoadDir reads them: lower-cased, every file one Vault would accept). Roles are the
// Kubernetes auth roles in rolesFile, YAML or JSON:
//
//	roles:
//	  - mount: kubernetes          # the auth mount's path; default "kubernetes"
//	    name: external-secrets-operator
//	    token_policies: [eso-order-service]
//	    token_no_default_policy: false             # default false: the token also gets "default"
//	    bound_service_account_names: [external-secrets]
//	    bound_service_account_namespaces: [external-secrets]
//	  - name: legacy-role
//	    policies: [eso-payments]   # the legacy field, used when token_policies is empty
//
// The keys are Vault's own (`vault read auth/kubernetes/role/NAME` prints them), so a role can be
// copied from Vault as it is; any other key is an error, as are a role without a name and a role
// defined twice. Either argument may be "" for none.
//
// Mounts are the mounts the roles name: files say nothing about others. Vault.Complete is false
// unless Authoritative() is given: a policy or role absent from the files is then "unknown", not
// "missing". Every error is an InputError (file and line), all of them reported at once.
func LoadVaultFiles(policyDir, rolesFile string, opts ...LoadOption) (*Vault, error) {
	o := applyLoadOptions(opts)
	v := &Vault{
		Source:        "files " + describeFiles(policyDir, rolesFile),
		Policies:      vaultacl.Set{},
		PolicySources: map[string]string{},
		Roles:         map[chain.RoleRef]*Role{},
		Mounts:        map[string]bool{},
		Complete:      o.authoritative,
	}
	var errs []error
	if policyDir != "" {
		set, err := vaultacl.LoadDir(policyDir)
		if err != nil {
			errs = append(errs, policyInputError(err, policyDir))
		}
		for name, p := range set {
			v.Policies[name], v.PolicySources[name] = p, p.File
		}
	}
	if rolesFile != "" {
		roles, err := loadRolesFile(rolesFile)
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range roles {
			v.Roles[r.Ref()] = r
			v.Mounts[r.Mount] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return v, nil
}

func describeFiles(policyDir, rolesFile string) string {
	switch {
	case policyDir == "":
		return rolesFile
	case rolesFile == "":
		return policyDir
	}
	return policyDir + " + " + rolesFile
}

// policyInputError turns vaultacl's errors (PolicyErrors, joined, or the directory's read error)
// into InputErrors, keeping each one's file and line; file names the source when an error has
// none of its own.
func policyInputError(err error, file string) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, policyInputError(e, file))
		}
		return errors.Join(out...)
	}
	if pe, ok := errors.AsType[*vaultacl.PolicyError](err); ok {
		if pe.File != "" {
			file = pe.File
		}
		return &InputError{File: file, Line: pe.Line, Err: pe.Err}
	}
	if _, ok := errors.AsType[*os.PathError](err); ok {
		return fileError(file, err)
	}
	return &InputError{File: file, Err: err}
}
