package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Patient gives an envtest environment the time a loaded two-core CI machine running -race tests
// needs. envtest's defaults (20s per control-plane component, 10s for CRDs to be served) suit a
// developer's laptop; a cold apiserver installing ESO's, cert-manager's and prometheus-operator's
// CRDs next to other test binaries can take longer, and a timeout there fails a run that would pass.
func Patient(env *envtest.Environment) *envtest.Environment {
	env.ControlPlaneStartTimeout = 2 * time.Minute
	env.ControlPlaneStopTimeout = time.Minute
	env.CRDInstallOptions.MaxTime = 2 * time.Minute
	env.WebhookInstallOptions.MaxTime = time.Minute
	return env
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
	NeedsServer(t, "kube-apiserver and etcd")
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
