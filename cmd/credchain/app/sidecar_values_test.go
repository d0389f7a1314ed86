package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/credchain/credchain/auditguard"
)

// TestSidecarValues: manifests/vault/sidecar-values.yaml, the Vault Helm chart values that run the
// guard beside each Vault node, starts a guard the auditguard command accepts, tailing the file
// device on the audit volume Vault writes, with nothing in Vault's audit path on the network, and
// with no readiness probe (a pod is ready only when every container is: a guard still loading its
// index would take Vault out of its Service).
func TestSidecarValues(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "manifests", "vault", "sidecar-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Server struct {
			AuditStorage struct {
				Enabled   bool   `json:"enabled"`
				MountPath string `json:"mountPath"`
			} `json:"auditStorage"`
			ExtraContainers []json.RawMessage `json:"extraContainers"`
		} `json:"server"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	s := values.Server
	var containers []corev1.Container
	for _, raw := range s.ExtraContainers {
		// Strict: a misspelt field (volumeMount, readinessprobe) would be dropped by the API server.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var c corev1.Container
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("extraContainers: %v", err)
		}
		containers = append(containers, c)
	}
	if !s.AuditStorage.Enabled || s.AuditStorage.MountPath != "/vault/audit" {
		t.Fatalf("auditStorage = %+v, want enabled at /vault/audit (the chart's volumeClaimTemplate \"audit\")", s.AuditStorage)
	}
	i := slices.IndexFunc(containers, func(c corev1.Container) bool { return c.Name == "credchain-auditguard" })
	if i < 0 {
		t.Fatal("no extraContainers entry credchain-auditguard")
	}
	c := containers[i]
	if len(c.Args) == 0 || c.Args[0] != "auditguard" {
		t.Fatalf("args = %q, want the auditguard subcommand first", c.Args)
	}
	cfg, err := execute(t, "auditguard", c.Args[1:], func(run func(context.Context, auditguard.Config, logr.Logger) error) Runners {
		return Runners{Auditguard: run}
	})
	if err != nil {
		t.Fatalf("credchain %s: %v", strings.Join(c.Args, " "), err)
	}
	if len(cfg.Listen) != 0 {
		t.Errorf("--listen %q: the sidecar reads the file device; a socket device puts the guard in Vault's audit path", cfg.Listen)
	}
	mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "audit" && m.MountPath == s.AuditStorage.MountPath && !m.ReadOnly
	})
	if !mounted {
		t.Errorf("volumeMounts = %+v, want the audit claim at %s, writable (the state directory is on it)", c.VolumeMounts, s.AuditStorage.MountPath)
	}
	for _, p := range append(slices.Clone(cfg.AuditFiles), cfg.StateDir) {
		if !strings.HasPrefix(p, s.AuditStorage.MountPath+"/") {
			t.Errorf("%s is not on the audit volume (%s)", p, s.AuditStorage.MountPath)
		}
	}
	if len(cfg.AuditFiles) != 1 {
		t.Errorf("--audit-file %q, want the node's file device", cfg.AuditFiles)
	}
	if c.ReadinessProbe != nil {
		t.Error("the sidecar has a readiness probe: a guard that is not ready would make Vault's pod not ready")
	}
	for _, p := range c.Ports {
		if p.ContainerPort == 8200 || p.ContainerPort == 8201 {
			t.Errorf("port %d is Vault's", p.ContainerPort)
		}
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "VAULT_ADDR" }); i < 0 || !strings.Contains(c.Env[i].Value, "127.0.0.1:8200") {
		t.Errorf("env = %+v, want VAULT_ADDR on this pod's Vault", c.Env)
	}
	limit := c.Resources.Limits.Memory()
	if bound := cfg.MemoryBound().Total; limit.Value() < bound {
		t.Errorf("memory limit %s is below the guard's worst case with these args (%d MiB)", limit, bound>>20)
	}
}
