package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartVaultHA starts a real two-node Vault cluster on loopback (integrated storage, one unseal
// key), the first node active, the second a standby joined to it, and stops both at cleanup. Both
// share the root token in their RootToken. For what a dev server cannot show: a standby node.
func StartVaultHA(t testing.TB) (active, standby *DevVault) {
	t.Helper()
	NeedsServer(t, "a two-node Vault cluster")
	bin, err := VaultBin()
	if err != nil {
		missing(t, err.Error())
	}
	dir := t.TempDir()
	var nodes [2]*DevVault
	for i := range nodes {
		api, cluster := FreeAddrT(t), FreeAddrT(t)
		data := filepath.Join(dir, fmt.Sprintf("n%d", i))
		if err := os.MkdirAll(data, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "n%d"
}
listener "tcp" {
  address         = %q
  cluster_address = %q
  tls_disable     = true
}
api_addr      = "http://%s"
cluster_addr  = "http://%s"
disable_mlock = true
`, data, i, api, cluster, api, cluster)
		path := filepath.Join(dir, fmt.Sprintf("n%d.hcl", i))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		v := &DevVault{Addr: "http://" + api, Bin: bin, logs: &bytes.Buffer{}}
		v.cmd = exec.Command(bin, "server", "-config", path)
		v.cmd.Stdout, v.cmd.Stderr = v.logs, v.logs
		v.cmd.Env = append(os.Environ(), "VAULT_LOG_LEVEL=warn", "HOME="+os.TempDir())
		if err := v.cmd.Start(); err != nil {
			t.Fatalf("starting vault: %v", err)
		}
		t.Cleanup(func() {
			v.Stop()
			if t.Failed() {
				t.Logf("vault node %d log:\n%s", i, v.logs.String())
			}
		})
		nodes[i] = v
	}
	active, standby = nodes[0], nodes[1]
	var init struct {
		Keys  []string `json:"unseal_keys_b64"`
		Token string   `json:"root_token"`
	}
	if err := json.Unmarshal([]byte(vaultCLI(t, active, "operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json")), &init); err != nil {
		t.Fatalf("vault operator init: %v", err)
	}
	vaultCLI(t, active, "operator", "unseal", init.Keys[0])
	vaultCLI(t, standby, "operator", "raft", "join", active.Addr)
	vaultCLI(t, standby, "operator", "unseal", init.Keys[0])
	active.RootToken, standby.RootToken = init.Token, init.Token
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(vaultCLI(t, active, "status", "-format=json"), `"is_self": true`) ||
		!strings.Contains(vaultCLI(t, standby, "status", "-format=json"), `"leader_address": "`+active.Addr+`"`) {
		if time.Now().After(deadline) {
			t.Fatal("the two-node Vault cluster did not settle within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return active, standby
}

// vaultCLI runs the vault CLI against v (retrying while the node starts) and returns its stdout.
func vaultCLI(t testing.TB, v *DevVault, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(v.Bin, args...)
		cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.RootToken, "HOME="+os.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		// `vault status` exits 2 while sealed, with its JSON on stdout.
		if err == nil || (args[0] == "status" && len(out) > 0) {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
