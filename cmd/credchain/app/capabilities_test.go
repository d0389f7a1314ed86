package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/testenv"
)

// exitCode is what main should exit with for err (the ExitCode of an error in its chain, else 1).
func exitCode(err error) int {
	if ec, ok := errors.AsType[interface {
		error
		ExitCode() int
	}](err); ok {
		return ec.ExitCode()
	}
	return 1
}

func TestCapabilitiesCommand(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args    []string
		want    CapabilitiesConfig
		wantErr string
	}{
		"minimal": {
			args: []string{"--policy-dir", "d", "--policy", "eso", "secret/data/x"},
			want: CapabilitiesConfig{PolicyDir: "d", Policies: []string{"eso"}, Output: "text", Paths: []string{"secret/data/x"}},
		},
		"every flag, repeated and comma-separated policies, paths after --": {
			args: []string{"--policy-dir=d", "--policy", "a,b", "--policy", "c", "-o", "json", "--", "-odd/path", "x/"},
			want: CapabilitiesConfig{PolicyDir: "d", Policies: []string{"a", "b", "c"}, Output: "json", Paths: []string{"-odd/path", "x/"}},
		},
		"every error at once": {
			args:    []string{"-o", "yaml", "--policy", " "},
			wantErr: "invalid configuration: --policy-dir: required\n--policy: an empty policy name\n-o \"yaml\": must be text or json\nat least one PATH is required",
		},
		"no policy": {
			args:    []string{"--policy-dir", "d", "x", " "},
			wantErr: "invalid configuration: --policy: at least one policy is required (the token's policies; default is not added)\nPATH: an empty path (Vault answers \"missing path\")",
		},
		"an unknown flag is bad input too": {
			args:    []string{"--policies", "x"},
			wantErr: "unknown flag: --policies",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got *CapabilitiesConfig
			cmd := newCapabilitiesCommand(t.Context(), func(_ context.Context, c CapabilitiesConfig, _, _ io.Writer) error {
				got = &c
				return nil
			})
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
				t.Errorf("config:\n%+v\nwant\n%+v", *got, tc.want)
			}
		})
	}
}

// policyDir writes files (name → text) to a new directory.
func policyDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runRoot runs `credchain ARGS...` through the root command (so the subcommand's registration is
// tested too) and returns stdout, stderr and the exit code main would use.
func runRoot(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := NewRootCommand(t.Context(), Runners{})
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.Execute(); err != nil {
		return out.String(), err.Error(), exitCode(err)
	}
	return out.String(), errOut.String(), 0
}

var esoPolicies = map[string]string{
	"ESO-Order-Service.hcl": `
path "secret/data/order-service/*" {
  capabilities       = ["read"]
  allowed_parameters = { "version" = [] }
}
path "secret/metadata/order-service/*" { capabilities = ["read", "list"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
`,
	"guard.json":  `{"path": {"secret/data/order-service/admin": {"capabilities": ["deny"]}}}`,
	"team.hcl":    `path "secret/data/+/shared" { capabilities = ["read", "update"] }`,
	"ignored.txt": "not a policy",
}

func TestCapabilitiesOutput(t *testing.T) {
	t.Parallel()
	dir := policyDir(t, esoPolicies)
	tests := map[string]struct {
		args           []string
		stdout, stderr string
		code           int
	}{
		"one path prints what vault token capabilities prints": {
			args:   []string{"--policy", "eso-order-service", "auth/token/lookup-self"},
			stdout: "read\n",
		},
		"several paths, in the order given, duplicates once": {
			args: []string{"--policy", "eso-order-service,guard", "--policy", "TEAM", "secret/data/order-service/admin",
				"secret/metadata/order-service/", "secret/data/billing/shared", "sys/seal", "sys/seal"},
			stdout: "secret/data/order-service/admin: deny\nsecret/metadata/order-service/: list, read\nsecret/data/billing/shared: read, update\nsys/seal: deny\n",
		},
		"json": {
			args:   []string{"--policy", "eso-order-service", "-o", "json", "secret/data/order-service/db", "secret/x"},
			stdout: `{"secret/data/order-service/db":["read"],"secret/x":["deny"]}` + "\n",
			stderr: "secret/data/order-service/db: " + filepath.Join(dir, "ESO-Order-Service.hcl") + ":4: allowed_parameters version: restriction not visible to Vault's capabilities API\n",
		},
		"root needs no file": {
			args:   []string{"--policy", "root", "-o", "json", "anything"},
			stdout: `{"anything":["root"]}` + "\n",
		},
		"default is not added": {
			args:   []string{"--policy", "default", "auth/token/lookup-self"},
			stderr: `policy "default": not in ` + dir + " (no default.hcl or default.json there)",
			code:   2,
		},
		"a named policy that is missing": {
			args:   []string{"--policy", "eso-order-service", "--policy", "nope", "x"},
			stderr: `policy "nope": not in ` + dir + " (no nope.hcl or nope.json there)",
			code:   2,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runRoot(t, append([]string{"capabilities", "--policy-dir", dir}, tc.args...)...)
			if stdout != tc.stdout || stderr != tc.stderr || code != tc.code {
				t.Errorf("got stdout %q, stderr %q, exit %d\nwant stdout %q, stderr %q, exit %d", stdout, stderr, code, tc.stdout, tc.stderr, tc.code)
			}
		})
	}
}

func TestCapabilitiesBadPolicyDir(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		files   map[string]string
		wantErr func(dir string) string
	}{
		"a policy Vault would refuse, with file and line, even when not named": {
			files: map[string]string{"ok.hcl": `path "x" { capabilities = ["read"] }`, "bad.hcl": "path \"a\" {\n  capabilities = [\"reed\"]\n}\n"},
			wantErr: func(dir string) string {
				return filepath.Join(dir, "bad.hcl") + `:2: path "a": invalid capability "reed"`
			},
		},
		"two files for one policy": {
			files: map[string]string{"ok.hcl": `path "x" { capabilities = ["read"] }`, "OK.json": `{"path": {"x": {"capabilities": ["read"]}}}`},
			wantErr: func(dir string) string {
				return filepath.Join(dir, "ok.hcl") + `: policy "ok" is also defined by ` + filepath.Join(dir, "OK.json")
			},
		},
		"a reserved name": {
			files: map[string]string{"ok.hcl": `path "x" { capabilities = ["read"] }`, "root.hcl": `path "x" { capabilities = ["read"] }`},
			wantErr: func(dir string) string {
				return filepath.Join(dir, "root.hcl") + `: cannot update "root" policy: Vault reserves the name`
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := policyDir(t, tc.files)
			_, stderr, code := runRoot(t, "capabilities", "--policy-dir", dir, "--policy", "ok", "x")
			if want := tc.wantErr(dir); stderr != want || code != 2 {
				t.Errorf("stderr %q, exit %d\nwant %q, exit 2", stderr, code, want)
			}
		})
	}
	if _, stderr, code := runRoot(t, "capabilities", "--policy-dir", filepath.Join(t.TempDir(), "none"), "--policy", "x", "y"); code != 2 || !strings.HasPrefix(stderr, "reading policy directory: ") {
		t.Errorf("missing directory: %q, exit %d", stderr, code)
	}
}

// TestCapabilitiesMatchesVaultCLI writes the policies to a real Vault, creates a token holding
// exactly them and compares `vault token capabilities TOKEN PATH` (Vault's own CLI, against its
// dev server) with `credchain capabilities` for each path, line for line.
func TestCapabilitiesMatchesVaultCLI(t *testing.T) {
	v := testenv.StartVault(t)
	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(v.RootToken)
	dir := policyDir(t, esoPolicies)
	names := []string{"eso-order-service", "guard", "team"}
	for _, file := range []string{"ESO-Order-Service.hcl", "guard.json", "team.hcl"} {
		name := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(file, ".hcl"), ".json"))
		if err := c.Sys().PutPolicy(name, esoPolicies[file]); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: names, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"secret/data/order-service/db", "secret/data/order-service/admin", "secret/metadata/order-service/",
		"secret/metadata/order-service", "secret/data/billing/shared", "auth/token/lookup-self", "sys/policies/acl/x"} {
		cmd := exec.CommandContext(t.Context(), v.Bin, "token", "capabilities", tok.Auth.ClientToken, path)
		cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.RootToken, "HOME="+t.TempDir())
		want, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vault token capabilities %s: %v\n%s", path, err, want)
		}
		args := []string{"capabilities", "--policy-dir", dir}
		for _, n := range names {
			args = append(args, "--policy", n)
		}
		got, _, code := runRoot(t, append(args, path)...)
		if got != string(want) || code != 0 {
			t.Errorf("%s: credchain %q (exit %d), vault %q", path, got, code, want)
		}
	}
}
