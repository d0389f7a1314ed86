package app

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/explain"
	"github.com/credchain/credchain/internal/explain/explaintest"
	"github.com/credchain/credchain/internal/testenv"
)

const etd = "testdata/explain/"

// explainLive is the incident's chain on a real kube-apiserver (ESO's CRDs; the statuses ESO would
// write, written by the test) and a real Vault dev server, and `credchain explain` run against
// them as the on-call engineer runs it: the cluster's kubeconfig, VAULT_ADDR and a token holding
// only manifests/vault/check-policy.hcl.
type explainLive struct {
	cluster *explaintest.Cluster
	vault   *testenv.DevVault
	root    *vaultapi.Client
	token   string
	reg     explaintest.Registry
	// bin is a PATH holding the real vault CLI and kubectl, for running a fix as printed.
	bin string
}

func startExplainLive(t *testing.T, reg explaintest.Registry) *explainLive {
	t.Helper()
	testenv.NeedsServer(t, "kube-apiserver and vault")
	dv := testenv.StartVault(t)
	x := &explainLive{cluster: explaintest.StartCluster(t), vault: dv, root: explaintest.VaultClient(t, dv.Addr, dv.RootToken), reg: reg}
	x.cluster.SetUpChain(t, dv.Addr, reg)
	explaintest.SetUpVault(t, x.root, reg)
	x.token = explaintest.ReadOnlyToken(t, x.root, "../../..")
	vaultBin, err := testenv.VaultBin()
	testenv.Require(t, err)
	x.bin = filepath.Dir(vaultBin) + ":" + filepath.Dir(testenv.Kubectl(t))
	// The Vault API client reads VAULT_TOKEN from the process: no t.Parallel in these tests.
	t.Setenv(vaultapi.EnvVaultToken, x.token)
	t.Setenv("HOME", t.TempDir()) // no ~/.vault-token of the machine's
	return x
}

// run is `credchain explain args --kubeconfig ...` with VAULT_ADDR set (unless noVault).
func (x *explainLive) run(t *testing.T, noVault bool, args ...string) (string, string, int) {
	t.Helper()
	env := func(k string) string {
		if k == vaultapi.EnvVaultAddress && !noVault {
			return x.vault.Addr
		}
		return ""
	}
	out, errOut, code := runExplainCommand(t, append(args, "--kubeconfig", x.cluster.Kubeconfig), env)
	t.Logf("$ credchain explain %s  (exit %d)\n%s%s", strings.Join(args, " "), code, out, errOut)
	return out, errOut, code
}

// runFix runs the fix exactly as printed, as a shell script, with the real vault CLI (as root)
// and kubectl on PATH.
func (x *explainLive) runFix(t *testing.T, out string) {
	t.Helper()
	_, script, ok := strings.Cut(out, "fix (run as printed):\n")
	if !ok {
		t.Fatalf("no fix printed:\n%s", out)
	}
	cmd := exec.CommandContext(t.Context(), "sh", "-e", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+x.bin+":"+os.Getenv("PATH"),
		"VAULT_ADDR="+x.vault.Addr, "VAULT_TOKEN="+x.vault.RootToken, "KUBECONFIG="+x.cluster.Kubeconfig)
	b, err := cmd.CombinedOutput()
	t.Logf("$ sh -e -c <the fix>\n%s", b)
	if err != nil {
		t.Fatalf("the fix, run as printed: %v\n%s\nscript:\n%s", err, b, script)
	}
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(squeeze(out), squeeze(w)) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestExplainLive walks the incident on the real servers: the healthy chain, the policy deleted
// (and the fix printed, run as printed, repairing it), the role's binding changed (and its fix),
// Vault stopped.
func TestExplainLive(t *testing.T) {
	x := startExplainLive(t, explaintest.Registry{Host: "registry.example:5000", User: "order-service-puller", Password: "s3cret-pull-password"})
	target := []string{"deployment/order-service", "-n", "prod"}

	out, _, code := x.run(t, false, target...)
	if code != 0 {
		t.Fatalf("healthy chain: exit %d, want 0", code)
	}
	wantLines(t, out,
		"ok      Deployment prod/order-service: its pods pull with regcred-order-service (spec.template.spec.imagePullSecrets)",
		"ok        Secret prod/regcred-order-service: exists, type kubernetes.io/dockerconfigjson",
		"written by ExternalSecret order-service-regcred (its controller owner)",
		"ok          ExternalSecret prod/order-service-regcred: Ready=True SecretSynced",
		"ok            ClusterSecretStore vault: Ready=True Valid; Vault "+x.vault.Addr+"; namespace (root); Kubernetes auth at mount kubernetes as role external-secrets-operator, ServiceAccount external-secrets/external-secrets",
		"ok              Vault role kubernetes/external-secrets-operator: exists; binds ServiceAccount external-secrets/external-secrets",
		"ok                policy eso-order-service: exists; its rules decide read registry-creds/data/order-service",
		`ok                read registry-creds/data/order-service: spec.data[0].remoteRef.key "order-service": granted by rule "registry-creds/data/order-service" (policy eso-order-service)`,
		"verdict: ok, every link holds")
	if strings.Contains(out, "broken") || strings.Contains(out, "unknown") || strings.Contains(out, "fix") {
		t.Errorf("the healthy chain has a link not ok, or a fix:\n%s", out)
	}
	writeExample(t, "healthy.txt", out)
	if out, errOut, code := x.run(t, false, "deployment/nope", "-n", "prod"); code != 2 || out != "" || !strings.Contains(errOut, "Deployment prod/nope: not found in the cluster at") {
		t.Errorf("a target that does not exist: exit %d (want 2), stderr %q", code, errOut)
	}

	t.Run("policy deleted", func(t *testing.T) { x.policyDeleted(t, target) })
	t.Run("binding changed", func(t *testing.T) { x.bindingChanged(t, target) })
	t.Run("externalsecret target, json", func(t *testing.T) { x.externalSecretJSON(t) })
	t.Run("Vault stopped", func(t *testing.T) { x.vaultStopped(t, target) })
}

// policyDeleted is the incident: alice deletes the policy, ESO's next sync fails with Vault's 403.
func (x *explainLive) policyDeleted(t *testing.T, target []string) {
	if err := x.root.Sys().DeletePolicy(explaintest.Policy); err != nil {
		t.Fatal(err)
	}
	x.cluster.SyncFailed(t, explaintest.VaultDenied(x.vault.Addr))
	out, errOut, code := x.run(t, false, append(target, "--policies", etd+"policies")...)
	if code != 1 {
		t.Fatalf("policy deleted: exit %d, want 1", code)
	}
	wantLines(t, out,
		"broken      ExternalSecret prod/order-service-regcred: Ready=False SecretSyncedError since",
		"ESO's latest warning (UpdateFailed,",
		"Code: 403. Errors: * 1 error occurred: * permission denied",
		"broken            policy eso-order-service: does not exist; role kubernetes/external-secrets-operator names it",
		"broken            read registry-creds/data/order-service:",
		"verdict: broken at policy eso-order-service: does not exist; role kubernetes/external-secrets-operator names it, and no rule of its other policies grants read registry-creds/data/order-service",
		"# restore policy eso-order-service with its last known body, from --policies "+etd+"policies/eso-order-service.hcl; with it every request ESO makes is granted",
		"vault policy write eso-order-service - <<'EOF'\n"+explaintest.OrderServicePolicy+"EOF\n",
		"kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite")
	if !strings.Contains(errOut, "the chain is broken at policy eso-order-service") {
		t.Errorf("stderr: %s", errOut)
	}
	writeExample(t, "policy-deleted.txt", out)

	x.runFix(t, out)
	if body, err := x.root.Sys().GetPolicy(explaintest.Policy); err != nil || body != explaintest.OrderServicePolicy {
		t.Fatalf("after the fix the policy is %q (%v)", body, err)
	}
	var es chain.ExternalSecret
	if err := x.cluster.C.Get(t.Context(), types.NamespacedName{Namespace: "prod", Name: explaintest.ExternalSecret}, &es); err != nil || es.Annotations["force-sync"] == "" {
		t.Fatalf("the fix's kubectl annotate did not land: %v %v", es.Annotations, err)
	}
	// Until ESO syncs, the ExternalSecret is still Ready=False, but every Vault link holds.
	out, _, code = x.run(t, false, target...)
	wantLines(t, out, "ok                policy eso-order-service: exists", "ok                read registry-creds/data/order-service:",
		"verdict: broken at ExternalSecret prod/order-service-regcred: Ready=False")
	if code != 1 || strings.Contains(out, "broken            ") {
		t.Errorf("after the fix, before ESO's sync: exit %d (want 1), and only the ExternalSecret broken", code)
	}
	x.cluster.Synced(t) // what ESO does with the force-sync
	if out, _, code = x.run(t, false, target...); code != 0 {
		t.Errorf("after the fix and ESO's sync: exit %d, want 0", code)
	}
}

// bindingChanged rebinds the role to another ServiceAccount: the broken link is the binding, and
// its fix (run as printed) binds ESO's account again, keeping the role's TTL and policies.
func (x *explainLive) bindingChanged(t *testing.T, target []string) {
	role := "auth/kubernetes/role/" + explaintest.Role
	if _, err := x.root.Logical().Write(role, map[string]any{"bound_service_account_names": "someone-else"}); err != nil {
		t.Fatal(err)
	}
	out, _, code := x.run(t, false, target...)
	if code != 1 {
		t.Fatalf("binding changed: exit %d, want 1", code)
	}
	wantLines(t, out,
		`broken          Vault role kubernetes/external-secrets-operator: ServiceAccount external-secrets/external-secrets is not bound by role "external-secrets-operator" on auth mount "kubernetes"`,
		`bound_service_account_names ["someone-else"] (Vault answers "service account name not authorized")`,
		"unknown           read registry-creds/data/order-service: spec.data[0].remoteRef.key \"order-service\": never made, the login fails first",
		"verdict: broken at Vault role kubernetes/external-secrets-operator",
		"# bind ServiceAccount external-secrets/external-secrets to role kubernetes/external-secrets-operator again, keeping its other fields",
		"vault write auth/kubernetes/role/external-secrets-operator bound_service_account_names=someone-else,external-secrets bound_service_account_namespaces=external-secrets token_policies=eso-default,eso-order-service,eso-payment-service",
		"token_ttl=3600")
	writeExample(t, "binding-changed.txt", out)
	x.runFix(t, out)
	s, err := x.root.Logical().Read(role)
	if err != nil {
		t.Fatal(err)
	}
	if ttl, _ := s.Data["token_ttl"].(json.Number); ttl.String() != "3600" {
		t.Errorf("the fix lost the role's TTL: %v", s.Data)
	}
	if out, _, code = x.run(t, false, target...); code != 0 {
		t.Errorf("after the binding's fix: exit %d, want 0", code)
	}
}

// externalSecretJSON starts at the ExternalSecret and prints the documented JSON.
func (x *explainLive) externalSecretJSON(t *testing.T) {
	out, _, code := x.run(t, false, "externalsecret/order-service-regcred", "-n", "prod", "-o", "json")
	var r explain.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if code != 0 || r.Schema != explain.Schema || r.State != explain.OK || !r.Vault.Checked || r.Links[0].Kind != explain.LinkExternalSecret ||
		r.Links[0].ExternalSecret.Ready != "True" || r.Links[1].Kind != explain.LinkSecret {
		t.Errorf("exit %d, report:\n%s", code, out)
	}
	writeExample(t, "externalsecret.json", out)
}

// vaultStopped: the Kubernetes half alone, exit as it says.
func (x *explainLive) vaultStopped(t *testing.T, target []string) {
	out, _, code := x.run(t, true, target...)
	wantLines(t, out, "unknown             Vault: Vault not checked: VAULT_ADDR is not set", "verdict: no link is broken, but not every link could be checked")
	if code != 0 {
		t.Errorf("no VAULT_ADDR, healthy Kubernetes half: exit %d, want 0", code)
	}
	x.vault.Stop()
	out, _, code = x.run(t, false, target...)
	wantLines(t, out, "Vault not checked: reading Vault: read sys/auth:", "connection refused")
	if code != 0 {
		t.Errorf("Vault stopped, healthy Kubernetes half: exit %d, want 0", code)
	}
	x.cluster.SyncFailed(t, explaintest.VaultDenied(x.vault.Addr))
	out, _, code = x.run(t, false, target...)
	wantLines(t, out, "Vault not checked:", "verdict: broken at ExternalSecret prod/order-service-regcred: Ready=False")
	if code != 1 {
		t.Errorf("Vault stopped, ExternalSecret failing: exit %d, want 1", code)
	}
	writeExample(t, "vault-stopped.txt", out)
}

// writeExample keeps a run's output under $CREDCHAIN_EXPLAIN_OUT, for docs/explain.md's examples.
func writeExample(t *testing.T, name, out string) {
	t.Helper()
	dir := os.Getenv("CREDCHAIN_EXPLAIN_OUT")
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestExplainRegistryCheck tries the pull secret's credential at real HTTP registries (TLS with
// its CA given, plain HTTP with --registry-insecure; basic auth and the Bearer token flow): ok
// with the synced credential, broken with a wrong one, and the credential never printed.
func TestExplainRegistryCheck(t *testing.T) {
	tlsReg := explaintest.NewRegistry(t, explaintest.ModeBasic, true)
	plainReg := explaintest.NewRegistry(t, explaintest.ModeBearer, false)
	x := startExplainLive(t, explaintest.Registry{Host: tlsReg.Host(), User: tlsReg.User, Password: tlsReg.Password})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, tlsReg.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	target := []string{"deployment/order-service", "-n", "prod", "--registry-check"}
	secrets := []string{tlsReg.Password, plainReg.Password, plainReg.Token, "wrong-" + tlsReg.Password}
	steps := []struct {
		name   string
		auths  map[string]string // registry host → password (the user is the registry's)
		flags  []string
		code   int
		want   []string
		reg    *explaintest.FakeRegistry
		assert func(t *testing.T, out string)
	}{
		{name: "the synced credential, the registry's CA given", flags: []string{"--registry-ca", ca}, code: 0,
			want: []string{"ok          registry " + tlsReg.Host() + ": GET https://" + tlsReg.Host() + "/v2/ with the credential of user puller (basic auth): 200, the registry accepts it"}},
		{name: "without the CA: unknown, not broken", code: 0,
			want: []string{"unknown     registry " + tlsReg.Host() + ": cannot be tried: GET https://" + tlsReg.Host() + "/v2/: tls: failed to verify certificate"}},
		{name: "a wrong credential", auths: map[string]string{tlsReg.Host(): "wrong-" + tlsReg.Password}, flags: []string{"--registry-ca", ca, "-o", "json"}, code: 1,
			assert: func(t *testing.T, out string) {
				var r explain.Report
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Fatal(err)
				}
				if c := r.Links[r.Cause.Link]; c.Kind != explain.LinkRegistry || c.Registry.Status != 401 || c.Registry.Username != "puller" ||
					r.Fix[len(r.Fix)-1].Command != "kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite" {
					t.Errorf("cause %+v, fix %+v", c, r.Fix)
				}
			}},
		{name: "plain HTTP and the Bearer token flow, --registry-insecure", auths: map[string]string{plainReg.Host(): plainReg.Password},
			flags: []string{"--registry-insecure"}, code: 0,
			want: []string{"ok          registry " + plainReg.Host() + ": GET http://" + plainReg.Host() + "/v2/ with the credential of user puller (bearer auth): 200"}},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.auths != nil {
				x.setAuths(t, st.auths)
			}
			out, errOut, code := x.run(t, false, append(target, st.flags...)...)
			if code != st.code {
				t.Errorf("exit %d, want %d", code, st.code)
			}
			wantLines(t, out, st.want...)
			if st.assert != nil {
				st.assert(t, out)
			}
			writeExample(t, fmt.Sprintf("registry-%d.txt", i), out)
			for _, s := range secrets {
				if strings.Contains(out+errOut, s) {
					t.Errorf("the output holds the credential %q", s)
				}
			}
		})
	}
}

// setAuths rewrites the pull secret's docker config: each registry host with user puller.
func (x *explainLive) setAuths(t *testing.T, auths map[string]string) {
	t.Helper()
	entries := map[string]any{}
	for host, pass := range auths {
		entries[host] = map[string]string{"username": "puller", "password": pass}
	}
	b, err := json.Marshal(map[string]any{"auths": entries})
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := x.cluster.C.Get(t.Context(), types.NamespacedName{Namespace: "prod", Name: explaintest.PullSecret}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data[corev1.DockerConfigJsonKey] = b
	if err := x.cluster.C.Update(t.Context(), &s); err != nil {
		t.Fatal(err)
	}
}
