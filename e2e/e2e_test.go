package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/credchain/credchain/internal/testenv"
)

// TestIncident replays the order-service incident on the real stack: the four scenarios of the
// acceptance issue in order, each asserting on Vault, Kubernetes, registry and NATS state.
func TestIncident(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts every real server")
	}
	_, err := testenv.Assets()
	testenv.Require(t, err)
	for _, f := range []func() (string, error){testenv.VaultBin, testenv.ESOBin, testenv.RegistryBin} {
		_, err := f()
		testenv.Require(t, err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "credchain")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/credchain").CombinedOutput(); err != nil {
		t.Fatalf("building credchain: %v\n%s", err, out)
	}
	start := time.Now()
	s, err := Start(t.Context(), Options{Credchain: bin, Manifests: "../manifests", Dir: dir, Narrator: Logf(t.Logf)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs:\n%s", s.Logs())
		}
		s.Stop()
	})
	t.Logf("stack up in %s", time.Since(start).Round(time.Millisecond))

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"1-healthy", func(t *testing.T) {
			if err := s.Healthy(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
		{"2-guard-on", func(t *testing.T) {
			window, err := s.GuardOn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("restore window (delete returned → policy readable): %s", window)
		}},
		{"3-guard-off", func(t *testing.T) {
			if err := s.GuardOff(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
		{"4-guard-restarted", func(t *testing.T) {
			took, err := s.GuardRestarted(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if took > time.Minute {
				t.Errorf("restored %s after the guard started; the reconcile interval is 1m", took)
			}
			t.Logf("guard start → policy restored by reconcile: %s", took)
		}},
		{"5-explain-fixes", func(t *testing.T) {
			if err := s.ExplainFixes(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
		{"6-iac-corrects-drift", func(t *testing.T) {
			if err := s.IaCCorrectsDrift(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			t.FailNow() // each scenario starts from the state the previous one left
		}
	}
	if os.Getenv("CREDCHAIN_E2E_KEEP") != "" {
		t.Logf("work dir: %s", dir)
	}
}
