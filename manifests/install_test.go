package manifests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/internal/testenv"
)

// apiServer starts a real kube-apiserver (envtest) with crds installed and returns a system:masters
// kubeconfig for kubectl and its rest.Config.
func apiServer(t *testing.T, crds ...string) (kubeconfig string, cfg *rest.Config) {
	t.Helper()
	testenv.KubebuilderAssets(t)
	env := testenv.Patient(&envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: crds}, ErrorIfCRDPathMissing: true})
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "installer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig, cfg
}

// applyStream server-side applies a YAML stream with kubectl and returns its output.
func applyStream(t *testing.T, kubeconfig string, stream []byte) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), testenv.Kubectl(t), "--kubeconfig", kubeconfig, "apply", "--server-side", "-f", "-")
	cmd.Stdin = bytes.NewReader(stream)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestInstallsApply applies every install variant server-side to one real API server carrying ESO's,
// cert-manager's and prometheus-operator's CRDs, so each object (Issuers, Certificates,
// PrometheusRule, PodMonitors included) passes the real schema validation. Each stream carries its
// own namespace, so the order the cases run in does not matter. Then it checks the CRDs do validate.
func TestInstallsApply(t *testing.T) {
	crds := append(testenv.ESOCRDFiles(t), testenv.CertManagerCRDFiles(t)...)
	crds = append(crds, testenv.PromCRDFiles(t, "prometheusrules", "podmonitors")...)
	kubeconfig, _ := apiServer(t, crds...)
	everything := []string{"certs.mode=cert-manager", "monitoring.prometheusRule.enabled=true",
		"monitoring.podMonitor.enabled=true", "monitoring.dashboard.enabled=true"}
	for name, stream := range map[string]func(t *testing.T) []byte{
		"kustomize manifests/cert-manager": func(t *testing.T) []byte { return kustomize(t, "cert-manager") },
		"kustomize manifests/default + manifests/monitoring": func(t *testing.T) []byte {
			return append(append(kustomize(t, "default"), "\n---\n"...), kustomize(t, "monitoring")...)
		},
		"helm defaults in credchain-system":                  func(t *testing.T) []byte { return helmTemplate(t, "credchain-system") },
		"helm cert-manager and monitoring in credchain-helm": func(t *testing.T) []byte { return helmTemplate(t, "credchain-helm", everything...) },
		"helm values for every knob in credchain-knobs":      func(t *testing.T) []byte { return helmTemplate(t, "credchain-knobs", knobs...) },
	} {
		t.Run(name, func(t *testing.T) {
			s := stream(t)
			objs, err := parseObjects(s)
			if err != nil {
				t.Fatal(err)
			}
			out, err := applyStream(t, kubeconfig, s)
			if err != nil {
				t.Fatalf("kubectl apply --server-side: %v\n%s", err, out)
			}
			if n := strings.Count(out, " serverside-applied"); n != len(objs) {
				t.Errorf("%d of %d objects applied:\n%s", n, len(objs), out)
			}
		})
	}
	// The CRDs validate (a generated CRD without a schema would accept anything): one invalid object
	// per CRD family is rejected, naming the field.
	for name, tc := range map[string]struct{ object, field string }{
		"rejects a PrometheusRule whose for is not a duration": {`apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: bad, namespace: default}
spec:
  groups:
    - name: g
      rules:
        - {alert: A, expr: up == 0, for: 2 hours}
`, "spec.groups[0].rules[0].for"},
		"rejects a Certificate with an unknown key algorithm": {`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: bad, namespace: default}
spec:
  secretName: s
  dnsNames: [a.example]
  issuerRef: {name: i}
  privateKey: {algorithm: DSA}
`, "spec.privateKey.algorithm"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := applyStream(t, kubeconfig, []byte(tc.object))
			if err == nil || !strings.Contains(out, tc.field) {
				t.Errorf("want a rejection naming %s, got err %v:\n%s", tc.field, err, out)
			}
		})
	}
}

// TestHelmInstall is README's Helm path on its own API server (the cluster-scoped objects of the other
// installs would belong to no release, and helm refuses to adopt them): helm creates the namespace,
// the chart does not render it.
func TestHelmInstall(t *testing.T) {
	kubeconfig, _ := apiServer(t)
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), testenv.Helm(t), "install", "credchain", chart, "--kubeconfig", kubeconfig,
		"--namespace", "credchain-system", "--create-namespace", "--set", "namespace.create=false")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "STATUS: deployed") {
		t.Errorf("helm install: %v\n%s", err, out)
	}
}
