package auditguard_test

import (
	"path/filepath"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/testenv"
)

// In the sidecar topology every Vault node has its guard, and only the active node logs writes: a
// standby's guard never sees a delete, a hold or a superseding write, so its reconcile must not
// restore what the active node's guard deliberately left deleted. With --vault-local-node a guard
// reconciles only while its node is the active one. Against a real two-node Vault cluster.
func TestVaultStandbyGuardLeavesRestoresToTheActive(t *testing.T) {
	active, standby := testenv.StartVaultHA(t)
	root := client(t, active.Addr, active.RootToken)
	must(t, root.Sys().EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}))
	must(t, root.Sys().PutPolicy("eso-order-service", orderServicePolicy))
	_, err := root.Logical().Write("auth/kubernetes/role/external-secrets-operator", map[string]any{
		"bound_service_account_names": "external-secrets", "bound_service_account_namespaces": "external-secrets",
		"token_policies": "eso-order-service"})
	must(t, err)

	// run starts a --vault-local-node guard against node with its state in dir, and waits until it is
	// ready; stop ends it.
	run := func(node *testenv.DevVault, dir string) (metrics string, stop func()) {
		health, metrics := testenv.FreeAddrT(t), testenv.FreeAddrT(t)
		cfg := auditguard.Config{AuditFiles: []string{filepath.Join(dir, "audit.log")}, StateDir: filepath.Join(dir, "state"),
			HealthAddr: health, MetricsAddr: metrics, ReconcileInterval: 100 * time.Millisecond, VaultLocalNode: true}
		cfg.SetDefaults()
		must(t, cfg.Validate())
		return metrics, runGuard(t, cfg, client(t, node.Addr, node.RootToken))
	}
	// The active node's guard snapshots the policy, then is away while it is deleted.
	activeDir := t.TempDir()
	_, stopActive := run(active, activeDir)
	stopActive()
	m, _ := run(standby, t.TempDir())
	e := &env{metrics: m}
	e.waitMetricAtLeast(t, "credchain_auditguard_vault_standby", 1)
	must(t, root.Sys().DeletePolicy("eso-order-service"))
	passes, err := testenv.Metric(t.Context(), "http://"+e.metrics+"/metrics", "credchain_auditguard_reconciles_total")
	must(t, err)
	e.waitMetricAtLeast(t, "credchain_auditguard_reconciles_total", passes+3)
	if body, _ := root.Sys().GetPolicy("eso-order-service"); body != "" {
		t.Fatal("the standby node's guard restored a policy deleted behind the active node's guard")
	}

	// The active node's guard, back, does restore it.
	run(active, activeDir)
	deadline := time.Now().Add(30 * time.Second)
	for body, _ := root.Sys().GetPolicy("eso-order-service"); body != orderServicePolicy; body, _ = root.Sys().GetPolicy("eso-order-service") {
		if time.Now().After(deadline) {
			t.Fatal("the active node's guard did not restore the policy")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
