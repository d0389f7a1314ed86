package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/testenv"
)

// OrderServicePolicy is the runbook's policy eso-order-service, byte for byte what step 1 writes.
const OrderServicePolicy = `path "registry-creds/creds/order-service" {
  capabilities = ["read"]
}
path "registry-creds/data/order-service" {
  capabilities = ["read"]
}
`

// esoPolicies are the policies the runbook's ESO role lists; the other services' exist too, so the
// guard sees the role as the runbook describes it.
var esoPolicies = []string{"eso-default", "eso-order-service", "eso-payment-service", "eso-inventory-service", "eso-user-service"}

// alice is the operator whose cleanup deletes the policy; the guard's events must name her.
const alice = "alice"

// vaultCLI runs the real vault CLI against the dev server as the holder of token, narrating it.
func (s *Stack) vaultCLI(ctx context.Context, token, stdin string, args ...string) (string, error) {
	out, err := s.quietVault(ctx, token, stdin, args...)
	shown := out
	if strings.HasPrefix(shown, "hvs.") {
		shown = "hvs.… (token hidden)\n"
	}
	s.Narrator.Command("vault "+strings.Join(masked(args), " "), shown)
	return out, err
}

// masked hides password=... arguments from the narration: the demo's credentials are throwaway,
// but a printed password teaches the wrong habit.
func masked(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if k, _, ok := strings.Cut(a, "="); ok && k == "password" {
			a = k + "=<redacted>"
		}
		out[i] = a
	}
	return out
}

// quietVault is vaultCLI without narration, for commands whose arguments hold a token.
func (s *Stack) quietVault(ctx context.Context, token, stdin string, args ...string) (string, error) {
	return run(ctx, s.vault.Bin, []string{"VAULT_ADDR=" + s.vault.Addr, "VAULT_TOKEN=" + token, "HOME=" + s.Dir}, stdin, args...)
}

// startVault starts the dev server and sets up what does not need Kubernetes: the KV v2 mount with
// the registry credential, the policies, alice, and the file audit device (Vault must always have
// one device that works: the guard's socket comes and goes in the scenarios).
func (s *Stack) startVault(ctx context.Context) error {
	bin, err := testenv.VaultBin()
	if err != nil {
		return fmt.Errorf("%w (run `make testbin`)", err)
	}
	s.Narrator.Step("Starting Vault v%s (dev server) and setting it up as the runbook's cluster has it", testenv.VaultVersion)
	if s.vault, err = testenv.StartVaultProcess(bin); err != nil {
		return err
	}
	cfg := vaultapi.DefaultConfig()
	cfg.Address = s.vault.Addr
	if s.root, err = vaultapi.NewClient(cfg); err != nil {
		return err
	}
	s.root.SetToken(s.vault.RootToken)
	root := s.vault.RootToken
	steps := []struct {
		stdin string
		args  []string
	}{
		{args: []string{"secrets", "enable", "-path=registry-creds", "kv-v2"}},
		{args: []string{"kv", "put", "-mount=registry-creds", "order-service", "username=" + s.regUser, "password=" + s.regPass}},
		{stdin: OrderServicePolicy, args: []string{"policy", "write", "eso-order-service", "-"}},
		{args: []string{"audit", "enable", "file", "file_path=" + s.path("vault-audit.log")}},
		{stdin: `path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }` + "\n" +
			`path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }` + "\n",
			args: []string{"policy", "write", "platform-admin", "-"}},
		{args: []string{"auth", "enable", "userpass"}},
		{args: []string{"write", "auth/userpass/users/" + alice, "password=" + s.regPass, "policies=platform-admin"}},
		{args: []string{"policy", "write", "credchain-auditguard", filepath.Join(s.Manifests, "vault", "auditguard-policy.hcl")}},
	}
	for _, p := range esoPolicies {
		if p == "eso-order-service" {
			continue
		}
		svc := strings.TrimPrefix(p, "eso-")
		steps = append(steps, struct {
			stdin string
			args  []string
		}{stdin: fmt.Sprintf("path %q {\n  capabilities = [\"read\"]\n}\n", "registry-creds/data/"+svc), args: []string{"policy", "write", p, "-"}})
	}
	for _, st := range steps {
		if _, err := s.vaultCLI(ctx, root, st.stdin, st.args...); err != nil {
			return err
		}
	}
	login, err := s.root.Logical().WriteWithContext(ctx, "auth/userpass/login/"+alice, map[string]any{"password": s.regPass})
	if err != nil {
		return fmt.Errorf("logging in as %s: %w", alice, err)
	}
	s.aliceToken = login.Auth.ClientToken
	return nil
}

// setupKubeAuth creates the Kubernetes side of Vault's Kubernetes auth (ESO's service account, a
// reviewer account for Vault allowed to call TokenReview) and configures the auth method and roles.
func (s *Stack) setupKubeAuth(ctx context.Context) error {
	s.Narrator.Step("Kubernetes auth: Vault reviews service account tokens against this kube-apiserver")
	if _, err := s.kubectl(ctx, kubeAuthYAML, "apply", "-f", "-"); err != nil {
		return err
	}
	reviewer, err := s.quietKubectl(ctx, "", "create", "token", "vault", "-n", "vault", "--duration=24h")
	if err != nil {
		return err
	}
	ca := s.path("kube-ca.crt")
	if err := os.WriteFile(ca, s.cfg.CAData, 0o600); err != nil {
		return err
	}
	root := s.vault.RootToken
	for _, args := range [][]string{
		{"auth", "enable", "kubernetes"},
		{"write", "auth/kubernetes/config", "kubernetes_host=" + s.cfg.Host, "kubernetes_ca_cert=@" + ca,
			"token_reviewer_jwt=" + strings.TrimSpace(reviewer), "disable_local_ca_jwt=true"},
		{"write", "auth/kubernetes/role/external-secrets-operator", "bound_service_account_names=external-secrets",
			"bound_service_account_namespaces=external-secrets", "policies=" + strings.Join(esoPolicies, ","), "ttl=1h"},
		{"write", "auth/kubernetes/role/credchain-auditguard", "bound_service_account_names=credchain-auditguard",
			"bound_service_account_namespaces=credchain-system", "policies=credchain-auditguard", "ttl=1h"},
	} {
		shown := args
		if args[1] == "auth/kubernetes/config" {
			shown = append(append([]string{}, args[:4]...), "token_reviewer_jwt=<vault's service account token>", args[5])
		}
		out, err := s.quietVault(ctx, root, "", args...)
		s.Narrator.Command("vault "+strings.Join(shown, " "), out)
		if err != nil {
			return err
		}
	}
	return nil
}

// PolicyBody reads a policy through the API: "" and no error when it does not exist.
func (s *Stack) PolicyBody(ctx context.Context, name string) (string, error) {
	return s.root.Sys().GetPolicyWithContext(ctx, name)
}

// kubeAuthYAML: ESO's service account (as the runbook's role binds it) and Vault's reviewer.
const kubeAuthYAML = `apiVersion: v1
kind: Namespace
metadata: {name: external-secrets}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: external-secrets, namespace: external-secrets}
---
apiVersion: v1
kind: Namespace
metadata: {name: vault}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: vault, namespace: vault}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: vault-tokenreview}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects:
  - {kind: ServiceAccount, name: vault, namespace: vault}
`
