// Command gencorpus drives a real Vault dev server with a realistic mix of traffic (KV reads by ESO,
// token renewals, logins, policy and role reads and writes, policy deletes) through a file audit
// device, and saves the audit log for the ingest benchmark (auditguard/testdata/audit-corpus.jsonl.gz, gzipped).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	vault "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/testenv"
)

func main() {
	out := flag.String("out", "/tmp/audit-corpus.jsonl", "output file (gzip it into auditguard/testdata/audit-corpus.jsonl.gz)")
	rounds := flag.Int("rounds", 40, "traffic rounds")
	flag.Parse()
	if err := run(*out, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "gencorpus:", err)
		os.Exit(1)
	}
}

// run starts a real Vault dev server with a file audit device, drives it through the traffic the
// guard sees (setup, then rounds of policy and role writes amid secret reads, logins and token
// renewals, with a policy delete every tenth round) and copies the audit log to out.
func run(out string, rounds int) error {
	bin, err := testenv.VaultBin()
	if err != nil {
		return err
	}
	v, err := testenv.StartVaultProcess(bin)
	if err != nil {
		return err
	}
	defer v.Stop()
	cfg := vault.DefaultConfig()
	cfg.Address = v.Addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		return err
	}
	c.SetToken(v.RootToken)
	dir, err := os.MkdirTemp("", "gencorpus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logPath := filepath.Join(dir, "audit.log")
	if err := setup(c, logPath); err != nil {
		return err
	}
	if err := traffic(c, rounds); err != nil {
		return err
	}
	return copyLog(logPath, out)
}

// setup enables the audit device, a KV v2 mount and the auth methods the traffic uses.
func setup(c *vault.Client, logPath string) error {
	sys := c.Sys()
	steps := []func() error{
		func() error {
			return sys.EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}})
		},
		func() error {
			return sys.Mount("registry-creds", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
		},
		func() error {
			return sys.EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"})
		},
		func() error { return sys.EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}) },
		func() error {
			_, err := c.Logical().Write("auth/userpass/users/eso", map[string]any{"password": "pw", "policies": "eso-order-service"})
			return err
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// traffic drives rounds of the guard's kind of traffic.
func traffic(c *vault.Client, rounds int) error {
	sys := c.Sys()
	for i := range rounds {
		pol := fmt.Sprintf("eso-service-%d", i%20)
		if err := sys.PutPolicy(pol, `path "registry-creds/data/`+pol+`" { capabilities = ["read"] }`); err != nil {
			return err
		}
		if _, err := c.Logical().Write(fmt.Sprintf("auth/kubernetes/role/role-%d", i%20), map[string]any{
			"bound_service_account_names": "external-secrets", "bound_service_account_namespaces": "external-secrets",
			"token_policies": pol, "ttl": "1h"}); err != nil {
			return err
		}
		// The bulk of real traffic: secret reads, logins, token lookups and renewals.
		for j := range 25 {
			key := fmt.Sprintf("svc-%d", (i*25+j)%50)
			if _, err := c.KVv2("registry-creds").Put(context.Background(), key, map[string]any{"username": "robot", "password": fmt.Sprintf("pw-%d", j)}); err != nil && j == 0 {
				return err
			}
			_, _ = c.KVv2("registry-creds").Get(context.Background(), key)
		}
		lc, _ := c.Clone()
		if s, err := lc.Logical().Write("auth/userpass/login/eso", map[string]any{"password": "pw"}); err == nil {
			lc.SetToken(s.Auth.ClientToken)
			_, _ = lc.Auth().Token().LookupSelf()
			_, _ = lc.Auth().Token().RenewSelf(3600)
		}
		_, _ = sys.GetPolicy(pol)
		_, _ = c.Logical().Read(fmt.Sprintf("auth/kubernetes/role/role-%d", i%20))
		if i%10 == 9 {
			_ = sys.DeletePolicy(pol)
		}
	}
	return nil
}

// copyLog copies the audit log line by line to out and says how many entries it wrote.
func copyLog(logPath, out string) error {
	in, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	defer o.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	w := bufio.NewWriter(o)
	for sc.Scan() {
		w.Write(sc.Bytes())
		w.WriteByte('\n')
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Printf("wrote %d entries to %s\n", n, out)
	return w.Flush()
}
