package check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/chain"
)

const filesDir = "testdata/files"

func TestLoadVaultFilesReadsPoliciesAndRoles(t *testing.T) {
	t.Parallel()
	policies := filepath.Join(filesDir, "policies")
	yamlFile, jsonFile := filepath.Join(filesDir, "roles.yaml"), filepath.Join(filesDir, "roles.json")
	eso := &Role{Mount: "kubernetes", Name: "external-secrets-operator",
		TokenPolicies:            []string{"eso-order-service", "eso-payments"},
		BoundServiceAccountNames: []string{"external-secrets"}, BoundServiceAccountNamespaces: []string{"external-secrets"}}
	tests := map[string]struct {
		rolesFile string
		opts      []LoadOption
		roles     map[chain.RoleRef]*Role
		mounts    map[string]bool
		complete  bool
	}{
		"yaml, mount defaulted and trimmed, legacy policies": {
			rolesFile: yamlFile,
			roles: map[chain.RoleRef]*Role{
				{Mount: "kubernetes", Name: "external-secrets-operator"}: withSource(eso, yamlFile+":3"),
				{Mount: "kubernetes", Name: "legacy-reader"}: {Mount: "kubernetes", Name: "legacy-reader",
					Policies: []string{"eso-payments"}, NoDefaultPolicy: true,
					BoundServiceAccountNames: []string{"*"}, BoundServiceAccountNamespaces: []string{"payments"},
					Source: yamlFile + ":10"},
				{Mount: "k8s-prod", Name: "prod-reader"}: {Mount: "k8s-prod", Name: "prod-reader",
					TokenPolicies:            []string{"eso-order-service"},
					BoundServiceAccountNames: []string{"external-secrets"}, BoundServiceAccountNamespaces: []string{"external-secrets"},
					Source: yamlFile + ":15"},
			},
			mounts: map[string]bool{"kubernetes": true, "k8s-prod": true},
		},
		"json": {
			rolesFile: jsonFile,
			roles:     map[chain.RoleRef]*Role{{Mount: "kubernetes", Name: "external-secrets-operator"}: withSource(eso, jsonFile+":3")},
			mounts:    map[string]bool{"kubernetes": true},
		},
		"authoritative": {
			rolesFile: jsonFile,
			opts:      []LoadOption{Authoritative()},
			roles:     map[chain.RoleRef]*Role{{Mount: "kubernetes", Name: "external-secrets-operator"}: withSource(eso, jsonFile+":3")},
			mounts:    map[string]bool{"kubernetes": true},
			complete:  true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, err := LoadVaultFiles(policies, tc.rolesFile, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v.Roles, tc.roles) {
				t.Errorf("roles:\n got %s\nwant %s", dumpRoles(v.Roles), dumpRoles(tc.roles))
			}
			if !reflect.DeepEqual(v.Mounts, tc.mounts) || v.Complete != tc.complete {
				t.Errorf("mounts %v complete %v, want %v %v", v.Mounts, v.Complete, tc.mounts, tc.complete)
			}
			if got := v.Policies.Names(); !reflect.DeepEqual(got, []string{"eso-order-service", "eso-payments"}) {
				t.Errorf("policies %v", got)
			}
			wantSources := map[string]string{
				"eso-order-service": filepath.Join(policies, "eso-order-service.hcl"),
				"eso-payments":      filepath.Join(policies, "eso-payments.json"),
			}
			if !reflect.DeepEqual(v.PolicySources, wantSources) {
				t.Errorf("policy sources %v, want %v", v.PolicySources, wantSources)
			}
			acl := v.Policies.ACL(v.Roles[eso.Ref()].TokenPolicyNames()...)
			if got := acl.Capabilities("secret/data/order-service/regcred").String(); got != "read" {
				t.Errorf("capabilities on secret/data/order-service/regcred = %s, want read", got)
			}
		})
	}
}

func TestLoadVaultFilesRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		roles  string
		policy string // written as bad.hcl when set
		// want are the errors, each "file:line: message" with FILE for the file's path.
		want []string
	}{
		"unknown field": {
			roles: "roles:\n  - name: a\n    token_polices: [x]\n",
			want:  []string{`ROLES:3: unknown field "token_polices" in a role (known: mount, name, token_policies, policies, token_no_default_policy, bound_service_account_names, bound_service_account_namespaces)`},
		},
		"unknown top-level field": {
			roles: "role:\n  - name: a\n",
			want:  []string{`ROLES:1: unknown field "role" (the file holds roles: [...])`},
		},
		"wrong types, every one reported": {
			roles: "roles:\n  - name: a\n    token_policies: x\n    token_no_default_policy: maybe\n  - name: [b]\n",
			want: []string{
				`ROLES:3: token_policies: want a list of strings, got a scalar`,
				`ROLES:4: token_no_default_policy: want true or false, got "maybe"`,
				`ROLES:5: name: want a string, got a list`,
			},
		},
		"missing name": {
			roles: "roles:\n  - mount: kubernetes\n    token_policies: [x]\n",
			want:  []string{`ROLES:2: a role needs a name`},
		},
		"duplicate role": {
			roles: "roles:\n  - name: a\n  - mount: /kubernetes\n    name: a\n",
			want:  []string{`ROLES:3: role kubernetes/a is also defined at line 2`},
		},
		"yaml syntax": {
			roles: "roles:\n  - name: a\n  bad\n",
			want:  []string{`ROLES:3: could not find expected ':'`},
		},
		"roles not a list": {
			roles: "roles: {name: a}\n",
			want:  []string{`ROLES:1: roles: want a list of roles, got a mapping`},
		},
		"bad policy": {
			roles:  "roles: []\n",
			policy: "path \"secret/*\" {\n  capabilities = [\"reed\"]\n}\n",
			want:   []string{`POLICY:2: path "secret/*": invalid capability "reed"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			rolesFile, policyFile := filepath.Join(dir, "roles.yaml"), filepath.Join(dir, "bad.hcl")
			write(t, rolesFile, tc.roles)
			if tc.policy != "" {
				write(t, policyFile, tc.policy)
			}
			_, err := LoadVaultFiles(dir, rolesFile)
			if err == nil {
				t.Fatal("no error")
			}
			want := strings.NewReplacer("ROLES", rolesFile, "POLICY", policyFile).Replace(strings.Join(tc.want, "\n"))
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			var ie *InputError
			if !errors.As(err, &ie) || ie.ExitCode() != 2 {
				t.Errorf("%v is not an InputError", err)
			}
		})
	}
}

func TestLoadVaultFilesMissingFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := map[string]struct{ policyDir, rolesFile, file string }{
		"no roles file":   {policyDir: dir, rolesFile: filepath.Join(dir, "nope.yaml"), file: filepath.Join(dir, "nope.yaml")},
		"no policies dir": {policyDir: filepath.Join(dir, "nope"), rolesFile: "", file: filepath.Join(dir, "nope")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadVaultFiles(tc.policyDir, tc.rolesFile)
			ie, ok := errors.AsType[*InputError](err)
			if !ok || ie.File != tc.file || !errors.Is(err, os.ErrNotExist) {
				t.Errorf("error %v, want an InputError for %s wrapping not-exist", err, tc.file)
			}
		})
	}
}

func withSource(r *Role, source string) *Role {
	c := *r
	c.Source = source
	return &c
}

func dumpRoles(roles map[chain.RoleRef]*Role) string {
	var b strings.Builder
	for ref, r := range roles {
		b.WriteString("\n  " + ref.Mount + "/" + ref.Name + ": ")
		fmt.Fprintf(&b, "%+v", *r)
	}
	return b.String()
}

func write(t *testing.T, file, text string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
