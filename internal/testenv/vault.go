package testenv

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

type DevVault struct {
	Addr, RootToken, Bin string
	cmd                  *exec.Cmd
	logs                 *bytes.Buffer
}

// StartVault starts a real Vault dev server on a free loopback port and stops it at cleanup.
func StartVault(t testing.TB) *DevVault {
	t.Helper()
	NeedsServer(t, "a Vault dev server")
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
