// Package manifests holds credchain's install; its test applies it to a real API server.
package manifests

import (
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/internal/testenv"
)

// TestKustomizeBaseApplies applies manifests/default with the kubectl built from module
// (server-side apply: every object validated by the real kube-apiserver, ESO's CRDs installed).
func TestKustomizeBaseApplies(t *testing.T) {
	kubectl := testenv.Kubectl(t)
	kubeconfig, cfg := apiServer(t, testenv.ESOCRDFiles(t)...)
	out, err := exec.CommandContext(t.Context(), kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "-k", "default").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply -k: %v\n%s", err, out)
	}
	for _, want := range []string{
		"namespace/credchain-system serverside-applied",
		"deployment.apps/credchain-webhook serverside-applied",
		"deployment.apps/credchain-auditguard serverside-applied",
		"poddisruptionbudget.policy/credchain-webhook serverside-applied",
		"validatingwebhookconfiguration.admissionregistration.k8s.io/credchain serverside-applied",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl output lacks %q:\n%s", want, out)
		}
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: "credchain-system", Name: "credchain-webhook"}, &d); err != nil {
		t.Fatal(err)
	}
	sc := d.Spec.Template.Spec.Containers[0].SecurityContext
	if *d.Spec.Replicas != 2 || sc == nil || *sc.ReadOnlyRootFilesystem != true || *sc.AllowPrivilegeEscalation != false ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("webhook Deployment: replicas %d, securityContext %+v", *d.Spec.Replicas, sc)
	}
}
