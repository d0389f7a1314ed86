package app

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/internal/testenv"
)

// TestCheckLive runs `credchain check` against a real kube-apiserver (ESO's CRDs, the incident's
// manifests applied) and a real Vault dev server (the incident's policies and role), both read
// live: ok while the chain is healthy; after alice's delete of eso-order-service, exit 1 naming
// the ExternalSecret, its Secret, the Deployment, the role and the missing policy.
func TestCheckLive(t *testing.T) {
	testenv.NeedsServer(t, "vault and kube-apiserver")
	dv := testenv.StartVault(t)
	kubeconfig := startIncidentCluster(t)
	vc := liveVaultClient(t, dv.Addr, dv.RootToken)
	setUpIncidentVault(t, vc)
	// The Vault API client reads VAULT_TOKEN from the process: no t.Parallel here.
	t.Setenv(vaultapi.EnvVaultToken, dv.RootToken)
	env := func(k string) string {
		if k == vaultapi.EnvVaultAddress {
			return dv.Addr
		}
		return ""
	}
	args := []string{"--kubeconfig", kubeconfig}

	stdout, stderr, code := runCheckCommand(t, args, "", env)
	if code != 0 || !strings.Contains(squeeze(stdout), "ok prod/order-service-regcred SecretStore prod/vault-backend kubernetes/external-secrets-operator") {
		t.Fatalf("healthy chain: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if _, err := vc.Logical().Delete("sys/policies/acl/eso-order-service"); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runCheckCommand(t, args, "", env)
	if code != 1 {
		t.Fatalf("after the delete: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range append([]string{"broken  prod/order-service-regcred", "Vault: vault " + dv.Addr}, incidentChain...) {
		if !strings.Contains(squeeze(stdout), squeeze(want)) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func liveVaultClient(t *testing.T, addr, token string) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = addr
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// setUpIncidentVault writes testdata/check/vault into the dev server: the policies, a
// Kubernetes auth mount, and the role.
func setUpIncidentVault(t *testing.T, c *vaultapi.Client) {
	t.Helper()
	for _, name := range []string{"eso-order-service", "eso-shared"} {
		text, err := os.ReadFile(td + "vault/policies/" + name + ".hcl")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Sys().PutPolicy(name, string(text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Sys().EnableAuthWithOptions("kubernetes", &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/kubernetes/role/external-secrets-operator", map[string]any{
		"token_policies":                   []string{"eso-order-service", "eso-shared"},
		"bound_service_account_names":      []string{"external-secrets"},
		"bound_service_account_namespaces": []string{"external-secrets"},
	}); err != nil {
		t.Fatal(err)
	}
}

// startIncidentCluster starts a kube-apiserver with ESO's CRDs, applies testdata/check/k8s and
// returns a kubeconfig for it.
func startIncidentCluster(t *testing.T) string {
	t.Helper()
	testenv.KubebuilderAssets(t)
	env := testenv.Patient(&envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: testenv.ESOCRDFiles(t)}, ErrorIfCRDPathMissing: true})
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"incident.yaml", "shared.yaml"} {
		applyManifests(t, c, td+"k8s/"+f)
	}
	user, err := env.AddUser(envtest.User{Name: "ci", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func applyManifests(t *testing.T, c client.Client, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := c.Create(t.Context(), &u); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}
