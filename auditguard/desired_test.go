package auditguard

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/vaultacl"
)

const desiredOrderService = `path "registry-creds/data/order-service" {
  capabilities = ["read"]
}
path "registry-creds/metadata/*" {
  capabilities = ["list"]
}
`

// TestCompareRules: drift is a difference in what the rules grant, keyed by rule (kind and path),
// so whatever Vault's parser makes the same is no drift.
func TestCompareRules(t *testing.T) {
	t.Parallel()
	read := events.RuleChange{Path: "registry-creds/data/order-service", Desired: "read"}
	tests := map[string]struct {
		vault string
		want  *events.Drift
	}{
		"the same text": {vault: desiredOrderService},
		"reformatted, commented, reordered, one line": {vault: `# owned by team orders
path "registry-creds/metadata/*" { capabilities = ["list"] } // listing
/* the secret */ path "registry-creds/data/order-service" {
      capabilities = [ "read" ]
}`},
		"JSON": {vault: `{"path": {"registry-creds/data/order-service": {"capabilities": ["read"]}, "registry-creds/metadata/*": {"capabilities": ["list"]}}}`},
		"a leading slash is the same path": {vault: `path "/registry-creds/data/order-service" { capabilities = ["read"] }
path "registry-creds/metadata/*" { capabilities = ["list"] }`},
		"two stanzas of one path merge": {vault: `path "registry-creds/data/order-service" { capabilities = ["read"] }
path "registry-creds/metadata/*" { capabilities = [] }
path "registry-creds/metadata/*" { capabilities = ["list"] }`},
		"the incident's edit: grants nothing": {vault: `path "registry-creds/data/order-service" { capabilities = [] }
path "registry-creds/metadata/*" { capabilities = ["list"] }`,
			want: &events.Drift{Changed: []events.RuleChange{{Path: read.Path, Desired: "read", Vault: "none"}}}},
		"capabilities = [] is not deny": {vault: `path "registry-creds/data/order-service" { capabilities = ["deny"] }
path "registry-creds/metadata/*" { capabilities = ["list"] }`,
			want: &events.Drift{Changed: []events.RuleChange{{Path: read.Path, Desired: "read", Vault: "deny"}}}},
		"a deny absorbs what is beside it": {vault: `path "registry-creds/data/order-service" { capabilities = ["deny", "read"] }
path "registry-creds/metadata/*" { capabilities = ["list"] }`,
			want: &events.Drift{Changed: []events.RuleChange{{Path: read.Path, Desired: "read", Vault: "deny"}}}},
		"a rule removed": {vault: `path "registry-creds/metadata/*" { capabilities = ["list"] }`,
			want: &events.Drift{Removed: []events.RuleChange{read}}},
		"a rule added, one widened": {vault: desiredOrderService + `path "sys/policies/acl/*" { capabilities = ["update"] }
path "registry-creds/metadata/*" { capabilities = ["list", "read"] }`,
			want: &events.Drift{Added: []events.RuleChange{{Path: "sys/policies/acl/*", Vault: "update"}},
				Changed: []events.RuleChange{{Path: "registry-creds/metadata/*", Desired: "list", Vault: "list, read"}}}},
		"exact made prefix: another rule": {vault: `path "registry-creds/data/order-service*" { capabilities = ["read"] }
path "registry-creds/metadata/*" { capabilities = ["list"] }`,
			want: &events.Drift{Added: []events.RuleChange{{Path: "registry-creds/data/order-service*", Vault: "read"}},
				Removed: []events.RuleChange{read}}},
		"a restriction added": {vault: `path "registry-creds/data/order-service" {
  capabilities = ["read"]
  allowed_parameters = { "version" = [] }
}
path "registry-creds/metadata/*" { capabilities = ["list"] }`,
			want: &events.Drift{Changed: []events.RuleChange{{Path: read.Path, Desired: "read", Vault: "read; allowed_parameters version"}}}},
		"the legacy policy = \"read\" is read and list": {vault: `path "registry-creds/data/order-service" { policy = "read" }
path "registry-creds/metadata/*" { capabilities = ["list"] }`,
			want: &events.Drift{Changed: []events.RuleChange{{Path: read.Path, Desired: "read", Vault: "list, read"}}}},
	}
	desired := parsePolicy(t, desiredOrderService)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := compareRules(desired, parsePolicy(t, tc.vault))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("drift = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func parsePolicy(t *testing.T, text string) *vaultacl.Policy {
	t.Helper()
	p, err := vaultacl.Parse("eso-order-service", "", text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFiles writes name → content under dir (creating subdirectories).
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const tfPayment = `resource "vault_policy" "eso_payment_service" {
  name   = "eso-payment-service"
  policy = <<EOT
path "registry-creds/data/payment-service" {
  capabilities = ["read"]
}
EOT
}
`

// TestLoadDesired: --desired-policies (a policy per file) and --terraform (vault_policy
// resources) make one desired state, each policy with its body and where it is defined; what
// cannot be the desired state is refused with the file and line.
func TestLoadDesired(t *testing.T) {
	t.Parallel()
	type want struct {
		origins map[string]string // policy → origin, relative to the test's directory
		err     string            // a substring of the error, with "DIR" for the test's directory
	}
	tests := map[string]struct {
		policies, terraform map[string]string // nil: the flag is not given
		want                want
	}{
		"a policy directory": {
			policies: map[string]string{"eso-order-service.hcl": desiredOrderService, "Team-A.json": `{"path": {"a/*": {"capabilities": ["read"]}}}`, "README.md": "not a policy"},
			want:     want{origins: map[string]string{"eso-order-service": "policies/eso-order-service.hcl", "team-a": "policies/Team-A.json"}},
		},
		"terraform": {
			terraform: map[string]string{"main.tf": tfPayment},
			want:      want{origins: map[string]string{"eso-payment-service": "vault_policy.eso_payment_service (DIR/tf/main.tf:1)"}},
		},
		"both": {
			policies:  map[string]string{"eso-order-service.hcl": desiredOrderService},
			terraform: map[string]string{"main.tf": tfPayment},
			want: want{origins: map[string]string{"eso-order-service": "policies/eso-order-service.hcl",
				"eso-payment-service": "vault_policy.eso_payment_service (DIR/tf/main.tf:1)"}},
		},
		"a policy in both": {
			policies:  map[string]string{"eso-payment-service.hcl": desiredOrderService},
			terraform: map[string]string{"main.tf": tfPayment},
			want:      want{err: `policy "eso-payment-service" is defined by both DIR/policies/eso-payment-service.hcl and vault_policy.eso_payment_service (DIR/tf/main.tf:1)`},
		},
		"a syntax error": {
			policies: map[string]string{"eso-order-service.hcl": desiredOrderService, "broken.hcl": "path \"a\" {\n  capabilities = [\"read\"\n"},
			want:     want{err: "DIR/policies/broken.hcl:"},
		},
		"a policy Vault refuses": {
			policies: map[string]string{"eso-order-service.hcl": "path \"a\" {\n  capabilities = [\"reed\"]\n}\n"},
			want:     want{err: "DIR/policies/eso-order-service.hcl:"},
		},
		"terraform that does not evaluate": {
			terraform: map[string]string{"main.tf": strings.Replace(tfPayment, `"eso-payment-service"`, "var.name", 1)},
			want:      want{err: "DIR/tf/main.tf:2"},
		},
		"an empty directory is no desired state": {
			policies: map[string]string{"README.md": "nothing yet"},
			want:     want{err: "defines no policy"},
		},
		"a directory that is not there": {
			want: want{err: "DIR/policies"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var src DesiredSource
			if tc.policies != nil || tc.terraform == nil {
				src.PoliciesDir = filepath.Join(dir, "policies")
				if tc.policies != nil {
					writeFiles(t, src.PoliciesDir, tc.policies)
				}
			}
			if tc.terraform != nil {
				src.TerraformDir = filepath.Join(dir, "tf")
				writeFiles(t, src.TerraformDir, tc.terraform)
			}
			r := src.load()
			if tc.want.err != "" {
				wantErr := strings.ReplaceAll(tc.want.err, "DIR", dir)
				if r.err == nil || !strings.Contains(r.err.Error(), wantErr) {
					t.Fatalf("error = %v, want it to contain %q", r.err, wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			got := map[string]string{}
			for n, p := range r.desired.Policies {
				got[n] = strings.ReplaceAll(p.Origin, dir, "DIR")
				if p.Body != p.Policy.Text || p.Policy.Name != n {
					t.Errorf("%s: body %q, parsed %q named %q", n, p.Body, p.Policy.Text, p.Policy.Name)
				}
			}
			want := map[string]string{}
			for n, o := range tc.want.origins {
				if strings.HasPrefix(o, "policies/") {
					o = "DIR/" + o
				}
				want[n] = o
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("origins = %v, want %v", got, want)
			}
			if r.desired.Fingerprint == "" || r.desired.Fingerprint != r.fingerprint {
				t.Errorf("fingerprint %q, load's %q", r.desired.Fingerprint, r.fingerprint)
			}
		})
	}
}

// TestDesiredFingerprint: the fingerprint changes with what the loaders would read, through the
// ways a directory is updated in a pod — a ConfigMap volume swaps its ..data symlink, git-sync
// swaps the symlink the flag names — and not otherwise.
func TestDesiredFingerprint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A ConfigMap volume: DIR/x.hcl → ..data/x.hcl, ..data → ..2026_12_01_v1.
	cm := filepath.Join(dir, "cm")
	writeFiles(t, filepath.Join(cm, "..v1"), map[string]string{"eso-order-service.hcl": desiredOrderService})
	writeFiles(t, filepath.Join(cm, "..v2"), map[string]string{"eso-order-service.hcl": strings.Replace(desiredOrderService, `"read"`, `"read", "list"`, 1)})
	must(t, os.Symlink("..v1", filepath.Join(cm, "..data")))
	must(t, os.Symlink("..data/eso-order-service.hcl", filepath.Join(cm, "eso-order-service.hcl")))
	// git-sync: DIR/repo → worktrees/<commit>.
	writeFiles(t, filepath.Join(dir, "worktrees", "a1"), map[string]string{"main.tf": tfPayment, ".terraform/providers/huge": "x"})
	writeFiles(t, filepath.Join(dir, "worktrees", "b2"), map[string]string{"main.tf": strings.Replace(tfPayment, "read", "list", 1)})
	must(t, os.Symlink("worktrees/a1", filepath.Join(dir, "repo")))
	src := DesiredSource{PoliciesDir: cm, TerraformDir: filepath.Join(dir, "repo")}

	first := src.fingerprint()
	if strings.HasPrefix(first, "unreadable") || src.fingerprint() != first {
		t.Fatalf("fingerprint %q, then %q", first, src.fingerprint())
	}
	steps := []struct {
		name    string
		do      func()
		changes bool
	}{
		{"nothing", func() {}, false},
		{"a file Terraform's providers cache", func() {
			writeFiles(t, filepath.Join(dir, "worktrees", "a1"), map[string]string{".terraform/providers/huge": "y"})
		}, false},
		{"the ConfigMap's ..data swapped", func() { swapSymlink(t, filepath.Join(cm, "..data"), "..v2") }, true},
		{"git-sync's symlink swapped", func() { swapSymlink(t, filepath.Join(dir, "repo"), "worktrees/b2") }, true},
		{"a file written in place", func() { writeFiles(t, filepath.Join(dir, "worktrees", "b2"), map[string]string{"main.tf": tfPayment}) }, true},
		{"a module added", func() {
			writeFiles(t, filepath.Join(dir, "worktrees", "b2"), map[string]string{"modules/vault/main.tf": tfPayment})
		}, true},
	}
	prev := first
	for _, s := range steps {
		s.do()
		now := src.fingerprint()
		if (now != prev) != s.changes {
			t.Errorf("%s: fingerprint changed %v, want %v", s.name, now != prev, s.changes)
		}
		prev = now
	}
	r := src.load()
	if r.err != nil || r.desired.Policies["eso-order-service"].Body != strings.Replace(desiredOrderService, `"read"`, `"read", "list"`, 1) {
		t.Errorf("load after the swaps: %v, %+v", r.err, r.desired)
	}
	if os.RemoveAll(filepath.Join(dir, "worktrees", "b2")); !strings.HasPrefix(src.fingerprint(), "unreadable") {
		t.Errorf("fingerprint of a dangling symlink = %q", src.fingerprint())
	}
	if r := src.load(); r.err == nil {
		t.Error("a dangling symlink loaded")
	}
}

// swapSymlink points link at target atomically, as git-sync and the kubelet do (a new symlink
// renamed over the old one).
func swapSymlink(t *testing.T, link, target string) {
	t.Helper()
	tmp := link + ".tmp"
	must(t, os.Symlink(target, tmp))
	must(t, os.Rename(tmp, link))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDesiredUnsettled: a directory that changes while it is read is not taken, whatever it
// parses to: the next poll reads it again.
func TestDesiredUnsettled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"eso-order-service.hcl": desiredOrderService})
	src := DesiredSource{PoliciesDir: dir}
	n := 0
	r := src.loadWith(func() { // between the load and the second fingerprint
		n++
		writeFiles(t, dir, map[string]string{"eso-payment-service.hcl": desiredOrderService})
	})
	if n != 1 || !r.unsettled || r.desired != nil || !errors.Is(r.err, errDesiredUnsettled) {
		t.Errorf("load = %+v (hook ran %d times)", r, n)
	}
	if r := src.load(); r.unsettled || r.err != nil || !slices.Equal(slices.Sorted(maps.Keys(r.desired.Policies)), []string{"eso-order-service", "eso-payment-service"}) {
		t.Errorf("settled load = %+v", r)
	}
}
