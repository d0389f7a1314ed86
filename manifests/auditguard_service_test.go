package manifests

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAuditguardServiceDropsNotReadyEndpoints: the guard's Service must not publish not-ready
// addresses. Vault's socket device dials the Service; a guard that is not ready, or whose node
// vanished, has to leave the endpoints, so the dial is refused at once (Vault logs to its other
// devices and goes on) instead of hanging until write_timeout, twice per audit entry (every
// audited request 8s at the default 2s; docs/benchmarks.md, BenchmarkVaultAuditStall).
func TestAuditguardServiceDropsNotReadyEndpoints(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, stream []byte) {
		t.Helper()
		objs, err := parseObjects(stream)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for k, obj := range objs {
			if k.Kind != "Service" || k.Name != "credchain-auditguard" {
				continue
			}
			found = true
			spec, _ := obj["spec"].(map[string]any)
			if v, ok := spec["publishNotReadyAddresses"]; ok && v != false {
				t.Errorf("%s: spec.publishNotReadyAddresses = %v: a guard that is gone blackholes Vault's socket device", k, v)
			}
		}
		if !found {
			t.Fatal("no Service credchain-auditguard")
		}
	}
	t.Run("manifests/default", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(filepath.Join("default", "auditguard.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, b)
	})
	t.Run("chart", func(t *testing.T) {
		t.Parallel()
		check(t, helmTemplate(t, "credchain-system"))
	})
}
