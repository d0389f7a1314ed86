package manifests

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/client-go/rest"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/testenv"
)

// TestGuardClusterRoleCoversBlastRadius installs manifests/default on a real API server and starts
// the guard's blast radius as the guard's own ServiceAccount: its caches sync only if the install's
// ClusterRole lets it list and watch every kind the chain model walks (the chart renders the same
// ClusterRole, TestChartRendersKustomize).
func TestGuardClusterRoleCoversBlastRadius(t *testing.T) {
	kubeconfig, cfg := apiServer(t, testenv.ESOCRDFiles(t)...)
	if out, err := applyStream(t, kubeconfig, kustomize(t, "default")); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	guard := rest.CopyConfig(cfg)
	guard.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:credchain-system:credchain-auditguard"}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := auditguard.NewBlast(ctx, guard, testr.New(t)); err != nil {
		t.Fatalf("the blast radius did not sync as credchain-auditguard (the ClusterRole misses a kind; see the log above): %v", err)
	}
}
