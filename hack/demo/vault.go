package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/credchain/credchain/internal/testenv"
)

// vaultCLI runs the real vault CLI against the dev server, showing the command as typed.
func vaultCLI(v *testenv.DevVault, token, stdin string, args ...string) (string, error) {
	fmt.Printf("$ vault %s\n", strings.Join(args, " "))
	cmd := exec.Command(v.Bin, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+token)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	shown := out.String()
	if strings.HasPrefix(shown, "hvs.") {
		shown = "hvs.… (token hidden)\n"
	}
	fmt.Print(indent(shown))
	if err != nil {
		return out.String(), fmt.Errorf("vault %s: %w", args[0], err)
	}
	return out.String(), nil
}

const orderServicePolicy = `path "registry-creds/creds/order-service" {
  capabilities = ["read"]
}
path "registry-creds/data/order-service" {
  capabilities = ["read"]
}
`

// runGuard is the second half of the demo: the root cause (the policy delete) undone by the guard.
func runGuard(ctx context.Context, credchain, manifests, dir, kubeconfig string) error {
	bin, err := testenv.VaultBin()
	if err != nil {
		return fmt.Errorf("%w (run `make testbin`)", err)
	}
	say("Part 2 — the root cause. Starting a real Vault %s dev server", testenv.VaultVersion)
	v, err := testenv.StartVaultProcess(bin)
	if err != nil {
		return err
	}
	defer v.Stop()
	root := v.RootToken
	steps := [][]string{
		{"auth", "enable", "kubernetes"},
		{"write", "auth/kubernetes/role/external-secrets-operator", "bound_service_account_names=external-secrets",
			"bound_service_account_namespaces=external-secrets", "policies=eso-order-service", "ttl=1h"},
		{"audit", "enable", "file", "file_path=" + filepath.Join(dir, "vault-audit.log")},
		{"policy", "write", "credchain-auditguard", filepath.Join(manifests, "..", "vault", "auditguard-policy.hcl")},
	}
	if _, err := vaultCLI(v, root, orderServicePolicy, "policy", "write", "eso-order-service", "-"); err != nil {
		return err
	}
	for _, s := range steps {
		if _, err := vaultCLI(v, root, "", s...); err != nil {
			return err
		}
	}
	tok, err := vaultCLI(v, root, "", "token", "create", "-policy=credchain-auditguard", "-display-name=credchain-auditguard", "-field=token")
	if err != nil {
		return err
	}

	say("Starting credchain auditguard with that least-privilege token")
	listen, health := freeAddr(), freeAddr()
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := exec.CommandContext(gctx, credchain, "auditguard", "--listen", "tcp://"+listen, "--state-dir", filepath.Join(dir, "guard-state"),
		"--health-addr", health, "--metrics-addr", "0", "--kube", kubeconfig, "--cluster", "demo")
	g.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+strings.TrimSpace(tok))
	logPath := filepath.Join(dir, "auditguard.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	g.Stdout, g.Stderr = logf, logf
	g.Cancel = func() error { return g.Process.Signal(syscall.SIGTERM) }
	if err := g.Start(); err != nil {
		return err
	}
	defer func() { cancel(); _ = g.Wait() }()
	if err := waitReady(ctx, "http://"+health+"/readyz"); err != nil {
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("auditguard not ready: %w\n%s", err, b)
	}
	fmt.Println("    /readyz: ok (role index and policy snapshots loaded)")
	if _, err := vaultCLI(v, root, "", "audit", "enable", "-path=credchain", "socket", "address="+listen, "socket_type=tcp"); err != nil {
		return err
	}

	say("The incident's cleanup: someone deletes the policy the ESO role still uses")
	if _, err := vaultCLI(v, root, "", "policy", "delete", "eso-order-service"); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	say("A moment later the policy is back, with the same body")
	out, err := vaultCLI(v, root, "", "policy", "read", "eso-order-service")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != strings.TrimSpace(orderServicePolicy) {
		return fmt.Errorf("restored body differs:\n%s", out)
	}
	say("And credchain says who did it and what would have broken (the event, as NATS/Slack will carry it)")
	ev, err := findEvent(logPath, "policy.restored")
	if err != nil {
		return err
	}
	fmt.Print(indent(ev))
	return nil
}

// findEvent returns the message of the first event of a type in the guard's JSON log.
func findEvent(path, typ string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Type  string `json:"type"`
			Event struct {
				Message     string `json:"message"`
				BlastRadius *struct {
					Stores, ExternalSecrets, Secrets, Workloads []struct{ Kind, Namespace, Name string }
				} `json:"blastRadius"`
			} `json:"event"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Type == typ {
			out := l.Event.Message + "\n"
			if br := l.Event.BlastRadius; br != nil {
				out += "blast radius (what this delete would have broken):\n"
				for _, g := range []struct {
					what string
					refs []struct{ Kind, Namespace, Name string }
				}{{"store", br.Stores}, {"ExternalSecret", br.ExternalSecrets}, {"Secret", br.Secrets}, {"workload", br.Workloads}} {
					for _, r := range g.refs {
						out += fmt.Sprintf("  %-15s %s %s\n", g.what+":", r.Kind, strings.TrimPrefix(r.Namespace+"/"+r.Name, "/"))
					}
				}
			}
			return out, nil
		}
	}
	return "", fmt.Errorf("no %s event in %s", typ, path)
}
