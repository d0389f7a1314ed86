package app

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestExplainCommandConfig(t *testing.T) {
	t.Parallel()
	defaults := ExplainConfig{Target: "deployment/order-service", Namespace: "default", Output: "text", ESOServiceAccount: "external-secrets/external-secrets"}
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    ExplainConfig
		wantErr string
	}{
		"a deployment, Vault from VAULT_ADDR": {
			args: []string{"deployment/order-service"}, env: map[string]string{"VAULT_ADDR": "https://vault:8200"},
			want: withExplain(defaults, func(c *ExplainConfig) { c.VaultAddr = "https://vault:8200" }),
		},
		"every flag": {
			args: []string{"externalsecret/order-service-regcred", "-n", "prod", "--kubeconfig", "kc", "--policies", "p", "--terraform", "tf",
				"--registry-check", "--registry-insecure", "--registry-ca", "ca.pem", "-o", "json", "--eso-service-account", "eso/eso"},
			want: ExplainConfig{Target: "externalsecret/order-service-regcred", Namespace: "prod", Kubeconfig: "kc", Policies: "p", Terraform: "tf",
				RegistryCheck: true, RegistryInsecure: true, RegistryCA: "ca.pem", Output: "json", ESOServiceAccount: "eso/eso"},
		},
		"no -n: the kubeconfig context's namespace, as kubectl": {
			args: []string{"deployment/order-service", "--kubeconfig", "testdata/explain/kubeconfig-team-a.yaml"},
			want: withExplain(defaults, func(c *ExplainConfig) {
				c.Namespace, c.Kubeconfig = "team-a", "testdata/explain/kubeconfig-team-a.yaml"
			}),
		},
		"kubectl's short names and groups": {
			args: []string{"deployments.apps/order-service"}, want: withExplain(defaults, func(c *ExplainConfig) { c.Target = "deployments.apps/order-service" }),
		},
		"every error at once": {
			args: []string{"secret/regcred", "-o", "yaml", "--eso-service-account", "eso", "--registry-ca", "ca.pem"},
			wantErr: "invalid configuration: \"secret/regcred\": explain does not know kind \"secret\"; give one of cronjob, daemonset, deployment, externalsecret, job, pod, replicaset, replicationcontroller, statefulset\n" +
				"-o \"yaml\": must be one of text, json\n" +
				"--eso-service-account \"eso\": must be namespace/name\n" +
				"--registry-insecure and --registry-ca: only with --registry-check",
		},
		"no NAME": {
			args: []string{"deployment"}, wantErr: "invalid configuration: \"deployment\": want KIND/NAME, e.g. deployment/order-service or externalsecret/order-service-regcred",
		},
		"a kind in the wrong group": {
			args:    []string{"deployments.batch/x"},
			wantErr: "invalid configuration: \"deployments.batch/x\": explain does not know kind \"deployments.batch\"; give one of cronjob, daemonset, deployment, externalsecret, job, pod, replicaset, replicationcontroller, statefulset",
		},
		"two targets": {
			args: []string{"deployment/a", "deployment/b"}, wantErr: "want one KIND/NAME, got 2 arguments",
		},
		"an unknown flag is bad input": {
			args: []string{"deployment/a", "--policy", "x"}, wantErr: "unknown flag: --policy",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got *ExplainConfig
			cmd := newExplainCommand(t.Context(), func(_ context.Context, c ExplainConfig, _ checkIO) error {
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
				if code := exitCode(err); code != 2 {
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

func withExplain(c ExplainConfig, f func(*ExplainConfig)) ExplainConfig {
	f(&c)
	return c
}

// runExplainCommand runs `credchain explain args` as main would: stdout, stderr (with main's
// "credchain: " line for an error) and the exit code.
func runExplainCommand(t *testing.T, args []string, getenv func(string) string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newExplainCommand(t.Context(), runExplain, getenv)
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(""))
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
