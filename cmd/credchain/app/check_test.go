package app

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/check"
)

// noEnv is an environment without VAULT_ADDR.
func noEnv(string) string { return "" }

func TestCheckCommandConfig(t *testing.T) {
	t.Parallel()
	defaults := CheckConfig{Namespace: "default", Output: "table", ESOServiceAccount: "external-secrets/external-secrets"}
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    CheckConfig
		wantErr string
	}{
		"live Vault from VAULT_ADDR, the current context": {
			env:  map[string]string{"VAULT_ADDR": "https://vault:8200"},
			want: with(defaults, func(c *CheckConfig) { c.VaultAddr = "https://vault:8200" }),
		},
		"every flag": {
			args: []string{"--manifests", "a", "--manifests", "-", "-n", "prod", "--vault-policies", "p", "--vault-roles", "r.yaml",
				"--authoritative", "--terraform-plan", "plan.json", "-o", "junit", "--eso-service-account", "eso/eso", "--fail-on-unknown"},
			want: CheckConfig{Manifests: []string{"a", "-"}, Namespace: "prod", VaultPolicies: "p", VaultRoles: "r.yaml", Authoritative: true,
				TerraformPlan: "plan.json", Output: "junit", ESOServiceAccount: "eso/eso", FailOnUnknown: true},
		},
		"terraform with a plan on stdin, a kubeconfig": {
			args: []string{"--kubeconfig", "kc", "--terraform", "infra/vault", "--terraform-plan", "-"},
			want: with(defaults, func(c *CheckConfig) { c.Kubeconfig, c.Terraform, c.TerraformPlan = "kc", "infra/vault", "-" }),
		},
		"every error at once": {
			args: []string{"--kubeconfig", "kc", "--manifests", "-", "--terraform", "t", "--vault-roles", "r", "--terraform-plan", "-",
				"-o", "yaml", "--eso-service-account", "eso", "-n", " "},
			wantErr: "invalid configuration: --kubeconfig and --manifests: give one (a live cluster or manifests)\n" +
				"--namespace: empty\n" +
				"--terraform and --vault-policies/--vault-roles: give one Vault input\n" +
				"--terraform-plan - and --manifests -: only one can read stdin\n" +
				"-o \"yaml\": must be one of table, json, junit\n" +
				"--eso-service-account \"eso\": must be namespace/name",
		},
		"no Vault input": {
			args:    []string{"--manifests", "k8s"},
			wantErr: "invalid configuration: no Vault input: set VAULT_ADDR (and VAULT_TOKEN) for a live Vault, or give --vault-policies and --vault-roles, or --terraform",
		},
		"--authoritative with a live Vault": {
			args: []string{"--authoritative"}, env: map[string]string{"VAULT_ADDR": "http://v"},
			wantErr: "invalid configuration: --authoritative: only for an offline Vault input (a live read is the whole of Vault)",
		},
		"arguments are refused": {
			args: []string{"--terraform", "t", "extra"}, wantErr: `unknown command "extra" for "check"`,
		},
		"an unknown flag is bad input": {
			args: []string{"--vault-policy", "x"}, wantErr: "unknown flag: --vault-policy",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got *CheckConfig
			cmd := newCheckCommand(t.Context(), func(_ context.Context, c CheckConfig, _ checkIO) error {
				got = &c
				return nil
			}, func(k string) string { return tc.env[k] })
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if code := exitCode(err); code != 2 && !strings.HasPrefix(tc.wantErr, "unknown command") {
					t.Errorf("exit code %d, want 2", code)
				}
				if got != nil {
					t.Fatal("run called with an invalid config")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("config\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func with(c CheckConfig, f func(*CheckConfig)) CheckConfig {
	f(&c)
	return c
}

const td = "testdata/check/"

// The chain the incident names, as every failing run must name it.
var incidentChain = []string{"prod/order-service-regcred", "Secret prod/regcred-order-service", "Deployment prod/order-service",
	"external-secrets-operator", `"eso-order-service"`}

// TestCheckRuns runs the command on the fixtures under testdata/check: the incident's manifests
// against its Vault as files and as Terraform, with and without the plan that deletes the policy.
func TestCheckRuns(t *testing.T) {
	t.Parallel()
	files := []string{"--vault-policies", td + "vault/policies", "--vault-roles", td + "vault/roles.yaml"}
	deleted := []string{"--vault-policies", td + "vault-deleted/policies", "--vault-roles", td + "vault-deleted/roles.yaml"}
	tests := map[string]struct {
		args    []string
		stdin   string // a file fed to stdin
		code    int
		stdout  []string
		stderr  []string
		noStdio bool // stdout must be empty (the run failed before the report)
	}{
		"healthy chain, files": {
			args: append([]string{"--manifests", td + "k8s"}, files...), code: 0,
			stdout: []string{"ok  prod/order-service-regcred  SecretStore prod/vault-backend  kubernetes/external-secrets-operator  -",
				"2 ExternalSecrets: 2 ok, 0 broken"},
		},
		"the policy deleted, files declared the whole of Vault": {
			args: append([]string{"--manifests", td + "k8s", "--authoritative"}, deleted...), code: 1,
			stdout: append([]string{"broken  prod/order-service-regcred", "Policies roles name that"}, incidentChain...),
			stderr: []string{"1 ExternalSecret broken"},
		},
		"the policy absent from files that are not the whole of Vault: unknown, a warning": {
			args: append([]string{"--manifests", td + "k8s"}, deleted...), code: 0,
			stdout: []string{"unknown  prod/order-service-regcred", `policy "eso-order-service" is not in the Vault input`, "(may exist outside this input)"},
			stderr: []string{"warning: 2 ExternalSecrets could not be decided (unknown)"}, // both: the role names a policy the input lacks
		},
		"--fail-on-unknown": {
			args: append([]string{"--manifests", td + "k8s", "--fail-on-unknown"}, deleted...), code: 1,
			stderr: []string{"2 ExternalSecrets unknown (--fail-on-unknown)"},
		},
		"healthy chain, Terraform": {
			args: []string{"--manifests", td + "k8s", "--terraform", td + "terraform"}, code: 0,
			stdout: []string{"Vault: terraform " + td + "terraform", "2 ok, 0 broken"},
		},
		"a plan deleting the policy breaks the chain": {
			args: []string{"--manifests", td + "k8s", "--terraform", td + "terraform", "--terraform-plan", td + "plans/delete-policy.json"}, code: 1,
			stdout: append([]string{"broken  breaks  prod/order-service-regcred", "delete vault_policy.eso_order_service",
				"the change breaks 1, fixes 0"}, incidentChain...),
			stderr: []string{"the change breaks 1 ExternalSecret"},
		},
		"the plan from stdin, as terraform show -json | credchain check": {
			args: []string{"--manifests", td + "k8s", "--terraform", td + "terraform", "--terraform-plan", "-"}, stdin: td + "plans/delete-policy.json",
			code: 1, stdout: []string{"broken  breaks  prod/order-service-regcred"},
		},
		"the plan that also drops the policy from the role and from what the ExternalSecret needs": {
			args: []string{"--manifests", td + "k8s-fixed", "--terraform", td + "terraform", "--terraform-plan", td + "plans/fix.json"}, code: 0,
			stdout: []string{"ok  -  prod/order-service-regcred", "the change breaks 0"},
		},
		"manifests from stdin, kustomize build | credchain check": {
			args: append([]string{"--manifests", "-", "--authoritative"}, deleted...), stdin: td + "k8s/incident.yaml", code: 1,
			stdout: incidentChain,
		},
		"ESO's account from the flag": {
			args: append([]string{"--manifests", td + "k8s", "--eso-service-account", "eso/eso"}, files...), code: 1,
			stdout: []string{"ServiceAccount eso/eso is not bound by role", "service account name not authorized"},
		},
		"a manifest that does not decode: exit 2 with file and line": {
			args: append([]string{"--manifests", td + "bad/broken.yaml"}, files...), code: 2, noStdio: true,
			stderr: []string{td + "bad/broken.yaml:1: ExternalSecret"},
		},
		"a policy Vault would refuse: exit 2 with file and line": {
			args: []string{"--manifests", td + "k8s", "--vault-policies", td + "bad/policies"}, code: 2, noStdio: true,
			stderr: []string{td + "bad/policies/typo.hcl:2"},
		},
		"a plan that is not JSON: exit 2": {
			args: []string{"--manifests", td + "k8s", "--terraform", td + "terraform", "--terraform-plan", td + "k8s/incident.yaml"}, code: 2, noStdio: true,
			stderr: []string{td + "k8s/incident.yaml:1"},
		},
		"a missing plan file: exit 2": {
			args: []string{"--manifests", td + "k8s", "--terraform", td + "terraform", "--terraform-plan", td + "nope.json"}, code: 2, noStdio: true,
			stderr: []string{"--terraform-plan: open " + td + "nope.json"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runCheckCommand(t, tc.args, tc.stdin, noEnv)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			if tc.noStdio && stdout != "" {
				t.Errorf("a report was printed:\n%s", stdout)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(squeeze(stdout), squeeze(w)) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// runCheckCommand runs `credchain check args` as main would: stdout, stderr (with main's
// "credchain: " line for an error) and the exit code.
func runCheckCommand(t *testing.T, args []string, stdinFile string, getenv func(string) string) (string, string, int) {
	t.Helper()
	var in io.Reader = strings.NewReader("")
	if stdinFile != "" {
		f, err := os.Open(stdinFile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		in = f
	}
	var out, errOut bytes.Buffer
	cmd := newCheckCommand(t.Context(), runCheck, getenv)
	cmd.SetArgs(args)
	cmd.SetIn(in)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	code := 0
	if err := cmd.Execute(); err != nil {
		errOut.WriteString("credchain: " + err.Error() + "\n")
		code = exitCode(err)
	}
	return out.String(), errOut.String(), code
}

// squeeze folds runs of spaces, so expectations do not depend on column widths.
func squeeze(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

// TestCheckOutputs: -o json is the Report (schema and all), -o junit valid JUnit XML.
func TestCheckOutputs(t *testing.T) {
	t.Parallel()
	args := []string{"--manifests", td + "k8s", "--terraform", td + "terraform", "--terraform-plan", td + "plans/delete-policy.json"}
	tests := map[string]func(t *testing.T, out string){
		"json": func(t *testing.T, out string) {
			var r check.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if r.Schema != check.Schema || r.Summary.Breaks != 1 || r.ExternalSecrets[0].Change != check.Breaks ||
				r.ExternalSecrets[0].ExternalSecret.Name != "order-service-regcred" || len(r.PlanChanges) != 1 {
				t.Errorf("report:\n%s", out)
			}
		},
		"junit": func(t *testing.T, out string) {
			var d struct {
				Tests    int `xml:"tests,attr"`
				Failures int `xml:"failures,attr"`
				Suites   []struct {
					Cases []struct {
						Name    string    `xml:"name,attr"`
						Failure *struct{} `xml:"failure"`
					} `xml:"testcase"`
				} `xml:"testsuite"`
			}
			if err := xml.Unmarshal([]byte(out), &d); err != nil {
				t.Fatal(err)
			}
			if d.Tests != 2 || d.Failures != 1 || d.Suites[0].Cases[0].Name != "ExternalSecret prod/order-service-regcred" || d.Suites[0].Cases[0].Failure == nil {
				t.Errorf("junit:\n%s", out)
			}
		},
	}
	for format, verify := range tests {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			out, stderr, code := runCheckCommand(t, append(args, "-o", format), "", noEnv)
			if code != 1 {
				t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			verify(t, out)
		})
	}
}
