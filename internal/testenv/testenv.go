// Package testenv finds the real servers built by hack/testbin.sh and ESO's CRDs for tests. A test
// that needs a server it cannot find fails under CI (CI=true) and skips loudly elsewhere, naming the
// command that builds it; `make test` always builds first, so it never skips there.
package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Versions of the real servers; hack/testbin.sh builds the same ones.
const (
	K8sVersion  = "1.37.2"
	EtcdVersion = "3.6.8"
	ESOModule   = "github.com/external-secrets/external-secrets"
	ESOVersion  = "v0.16.2"
)

// CacheRoot is where hack/testbin.sh puts its builds.
func CacheRoot() string {
	if d := os.Getenv("CREDCHAIN_TESTBIN"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "credchain", "testbin")
}

// missing fails under CI and skips (with the fix in the message) elsewhere.
func missing(t testing.TB, what string) {
	t.Helper()
	msg := what + "; build it with `make testbin` (or run `make test`, which does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Assets returns the directory holding kube-apiserver, etcd and kubectl (KUBEBUILDER_ASSETS, else
// the testbin cache) and sets KUBEBUILDER_ASSETS for envtest in this process.
func Assets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(CacheRoot(), "k8s-"+K8sVersion+"-etcd-"+EtcdVersion)
	}
	for _, bin := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("%s not found", filepath.Join(dir, bin))
		}
	}
	if os.Getenv("KUBEBUILDER_ASSETS") != dir {
		// envtest reads the variable itself. Set for the whole process (not t.Setenv, which
		// forbids parallel tests); every caller sets the same value.
		_ = os.Setenv("KUBEBUILDER_ASSETS", dir)
	}
	return dir, nil
}

// KubebuilderAssets is Assets for tests.
func KubebuilderAssets(t testing.TB) string {
	t.Helper()
	dir, err := Assets()
	if err != nil {
		missing(t, err.Error())
	}
	return dir
}

// Kubectl is the path of the kubectl built from k8s.io/kubernetes.
func Kubectl(t testing.TB) string {
	return filepath.Join(KubebuilderAssets(t), "kubectl")
}

var (
	esoOnce sync.Once
	esoDir  string
	esoErr  error
)

// CRDDir returns ESO's own CRD directory (config/crds/bases) from its Go module, so tests run
// against ESO's real schema rather than a copy that can drift.
func CRDDir() (string, error) {
	esoOnce.Do(func() {
		out, err := exec.Command("go", "mod", "download", "-json", ESOModule+"@"+ESOVersion).Output()
		if err != nil {
			esoErr = err
			return
		}
		var m struct{ Dir, Error string }
		if err := json.Unmarshal(out, &m); err != nil {
			esoErr = err
			return
		}
		esoDir = filepath.Join(m.Dir, "config", "crds", "bases")
	})
	if esoErr != nil {
		return "", fmt.Errorf("downloading %s@%s for its CRDs: %w", ESOModule, ESOVersion, esoErr)
	}
	return esoDir, nil
}

// CRDFiles are the ESO CRDs credchain installs: the stores and ExternalSecrets (the generators are
// irrelevant here and would only slow the API server's start down).
func CRDFiles() ([]string, error) {
	dir, err := CRDDir()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, f := range []string{"external-secrets.io_externalsecrets.yaml", "external-secrets.io_secretstores.yaml",
		"external-secrets.io_clustersecretstores.yaml", "external-secrets.io_clusterexternalsecrets.yaml"} {
		files = append(files, filepath.Join(dir, f))
	}
	return files, nil
}

// ESOCRDFiles is CRDFiles for tests.
func ESOCRDFiles(t testing.TB) []string {
	t.Helper()
	files, err := CRDFiles()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// VaultVersion is the Vault hack/testbin.sh builds.
const VaultVersion = "1.21.4"

// VaultBin returns the vault binary: $CREDCHAIN_VAULT, else the testbin cache.
func VaultBin() (string, error) {
	p := os.Getenv("CREDCHAIN_VAULT")
	if p == "" {
		p = filepath.Join(CacheRoot(), "vault-"+VaultVersion, "vault")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found", p)
	}
	return p, nil
}

// DevVault is a running `vault server -dev`.
type DevVault struct {
	Addr, RootToken, Bin string
	cmd                  *exec.Cmd
	logs                 *bytes.Buffer
}

// StartVault starts a real Vault dev server on a free loopback port and stops it at cleanup.
func StartVault(t testing.TB) *DevVault {
	t.Helper()
	bin, err := VaultBin()
	if err != nil {
		missing(t, err.Error())
	}
	v, err := StartVaultProcess(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.Stop()
		if t.Failed() {
			t.Logf("vault server log:\n%s", v.logs.String())
		}
	})
	return v
}

// StartVaultProcess starts `vault server -dev` and waits until it is unsealed and serving.
func StartVaultProcess(bin string) (*DevVault, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	v := &DevVault{Addr: "http://" + addr, RootToken: "root", Bin: bin, logs: &bytes.Buffer{}}
	v.cmd = exec.Command(bin, "server", "-dev", "-dev-root-token-id=root", "-dev-listen-address="+addr, "-dev-no-store-token")
	v.cmd.Stdout, v.cmd.Stderr = v.logs, v.logs
	v.cmd.Env = append(os.Environ(), "VAULT_LOG_LEVEL=warn", "HOME="+os.TempDir())
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting vault: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(v.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return v, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	v.Stop()
	return nil, fmt.Errorf("vault dev server not healthy after 30s:\n%s", v.logs.String())
}

// Stop kills the server.
func (v *DevVault) Stop() {
	if v.cmd != nil && v.cmd.Process != nil {
		_ = v.cmd.Process.Kill()
		_ = v.cmd.Wait()
	}
}

// OrderServiceDeployment is the incident's Deployment as a person applies it: 3 replicas pulling
// from registry.internal:5000 with the pull secret regcred-order-service.
const OrderServiceDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: order-service
  namespace: prod
spec:
  replicas: 3
  selector:
    matchLabels: {app: order-service}
  template:
    metadata:
      labels: {app: order-service}
    spec:
      imagePullSecrets:
        - name: regcred-order-service
      containers:
        - name: app
          image: registry.internal:5000/order-service:1.4.2
`

// WriteExample appends v as one JSON line to $CREDCHAIN_EVENTS_OUT when set: the tests that
// produce each event type feed docs/events.md's real examples this way.
func WriteExample(t testing.TB, v any) {
	t.Helper()
	out := os.Getenv("CREDCHAIN_EVENTS_OUT")
	if out == "" {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

// Versions of the install tools hack/testbin.sh builds, and cert-manager, whose CRDs come from its
// Go module (deploy/crds) like ESO's.
const (
	HelmVersion               = "3.22.0"
	PrometheusOperatorVersion = "0.95.2"
	PrometheusVersion         = "0.316.0"
	// PromCheckRevision keys promcheck's cache together with PrometheusVersion; hack/testbin.sh's
	// PROMCHECK_REVISION is the same number. Bump both when hack/testbin/promql changes.
	PromCheckRevision  = 2
	CertManagerModule  = "github.com/cert-manager/cert-manager"
	CertManagerVersion = "v1.21.2"
)

// tool returns $env, else rel under the testbin cache; missing when neither exists.
func tool(t testing.TB, env, rel string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(CacheRoot(), rel)
	}
	if _, err := os.Stat(p); err != nil {
		missing(t, p+" not found")
	}
	return p
}

// Helm is the helm v3 CLI built from helm.sh/helm/v3 ($CREDCHAIN_HELM, else the testbin cache).
func Helm(t testing.TB) string {
	return tool(t, "CREDCHAIN_HELM", filepath.Join("helm-"+HelmVersion, "helm"))
}

// PromCheck is hack/testbin/promql: Prometheus' own PromQL parser and rule loader as a CLI.
func PromCheck(t testing.TB) string {
	return tool(t, "CREDCHAIN_PROMCHECK", filepath.Join(fmt.Sprintf("promcheck-%s-r%d", PrometheusVersion, PromCheckRevision), "promcheck"))
}

// PromCRDFiles are prometheus-operator's CRDs for the given plurals (prometheusrules, podmonitors,
// ...), generated by controller-gen from its API types module (hack/testbin.sh promcrds).
func PromCRDFiles(t testing.TB, plurals ...string) []string {
	t.Helper()
	dir := tool(t, "CREDCHAIN_PROM_CRDS", "prometheus-operator-crds-"+PrometheusOperatorVersion)
	files := make([]string, 0, len(plurals))
	for _, p := range plurals {
		f := filepath.Join(dir, "monitoring.coreos.com_"+p+".yaml")
		if _, err := os.Stat(f); err != nil {
			missing(t, f+" not found")
		}
		files = append(files, f)
	}
	return files
}

// CertManagerCRDFiles are cert-manager's Issuer, ClusterIssuer, Certificate and CertificateRequest
// CRDs from its Go module's deploy/crds, so the cert-manager overlay is validated against the real
// schema.
func CertManagerCRDFiles(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", CertManagerModule+"@"+CertManagerVersion).Output()
	if err != nil {
		t.Fatalf("downloading %s@%s for its CRDs: %v", CertManagerModule, CertManagerVersion, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range []string{"issuers", "clusterissuers", "certificates", "certificaterequests"} {
		files = append(files, filepath.Join(m.Dir, "deploy", "crds", "cert-manager.io_"+p+".yaml"))
	}
	return files
}
