package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credchain/credchain/internal/testenv"
)

// The runbook as one command, on the live stack: `credchain explain deployment/order-service -n
// prod` run as the on-call engineer runs it — the platform engineer's kubeconfig, and Vault with
// the same read-only token `check` uses (manifests/vault/check-policy.hcl is all explain reads:
// sys/auth, the role, the policies it names). The desired policies are a directory as the GitOps
// repository holds them (--policies), which is where the fix's policy body comes from.

// explainTarget is what every run explains.
var explainTarget = []string{"explain", "deployment/" + Workload, "-n", Namespace}

// desiredPolicies writes the repository's copy of the policies explain may restore and returns
// its directory.
func (s *Stack) desiredPolicies() (string, error) {
	dir := s.path("desired-policies")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, Policy+".hcl"), []byte(OrderServicePolicy), 0o600)
}

// explainWorkload runs `credchain explain deployment/order-service -n prod` against the live
// cluster and Vault with extra flags, narrating it, and returns its output and exit status.
func (s *Stack) explainWorkload(ctx context.Context, extra ...string) (string, int, error) {
	return s.explainAt(ctx, s.vault.Addr, extra...)
}

// explainAt is explainWorkload with Vault at vaultAddr.
func (s *Stack) explainAt(ctx context.Context, vaultAddr string, extra ...string) (string, int, error) {
	policies, err := s.desiredPolicies()
	if err != nil {
		return "", 0, err
	}
	args := append(append(append([]string{}, explainTarget...), "--policies", policies), extra...)
	shown := strings.Replace(strings.Join(args, " "), policies, "policies/", 1)
	return s.runReadOnly(ctx, vaultAddr, shown, append(args, "--kubeconfig", s.adminKubeconfig)...)
}

// explainOK runs explain and wants exit 0 with every link ok.
func (s *Stack) explainOK(ctx context.Context) error {
	s.Narrator.Step("credchain explain: every link of order-service's chain, from the Deployment to the policy")
	out, code, err := s.explainWorkload(ctx)
	if err != nil {
		return err
	}
	if code != 0 || !strings.Contains(out, "verdict: ok, every link holds") || strings.Contains(out, "\nbroken ") {
		return fmt.Errorf("credchain explain exited %d on the healthy chain, want 0 with every link ok:\n%s", code, out)
	}
	return nil
}

// explainBroken runs explain after alice's delete and wants exit 1, the broken link the missing
// policy named with the role that names it, and the fix; it returns the fix as printed.
func (s *Stack) explainBroken(ctx context.Context) (string, error) {
	s.Narrator.Step("credchain explain: which link broke, and the fix")
	out, code, err := s.explainWorkload(ctx)
	if err != nil {
		return "", err
	}
	if code != 1 {
		return "", fmt.Errorf("credchain explain exited %d after the delete, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"verdict: broken at policy " + Policy + ": does not exist; role kubernetes/external-secrets-operator names it",
		"vault policy write " + Policy + " - <<'EOF'\n" + OrderServicePolicy + "EOF\n",
		"kubectl annotate externalsecret " + ExternalSecret + " -n " + Namespace + " force-sync=$(date +%s) --overwrite",
	} {
		if !strings.Contains(out, want) {
			return "", fmt.Errorf("credchain explain's output lacks %q:\n%s", want, out)
		}
	}
	return printedFix(out)
}

func printedFix(out string) (string, error) {
	_, fix, ok := strings.Cut(out, "fix (run as printed):\n")
	if !ok {
		return "", fmt.Errorf("credchain explain printed no fix:\n%s", out)
	}
	// The output is combined: main's one-line error on stderr ("credchain: the chain is broken
	// at ...") follows the fix and is not part of it.
	if i := strings.LastIndex(fix, "\ncredchain: "); i >= 0 {
		fix = fix[:i+1]
	}
	return fix, nil
}

// explainRunFix runs a fix exactly as explain printed it (a shell script: the vault CLI as root,
// kubectl as the platform engineer), waits for ESO's sync the force-sync asks for, and wants
// explain to find every link ok again.
func (s *Stack) explainRunFix(ctx context.Context, fix string) error {
	s.Narrator.Step("Running the fix explain printed, as printed")
	before, err := s.syncState(ctx)
	if err != nil {
		return err
	}
	path := filepath.Dir(s.vault.Bin) + string(os.PathListSeparator) + filepath.Dir(s.kubectlBin) + string(os.PathListSeparator) + os.Getenv("PATH")
	out, err := run(ctx, "sh", []string{"PATH=" + path, "VAULT_ADDR=" + s.vault.Addr, "VAULT_TOKEN=" + s.vault.RootToken,
		"KUBECONFIG=" + s.adminKubeconfig, "HOME=" + s.Dir}, "", "-e", "-c", fix)
	s.Narrator.Command("sh -e <<'FIX'\n"+fix+"FIX", out)
	if err != nil {
		return err
	}
	st, err := s.waitSync(ctx, "True", "SecretSynced", before)
	if err != nil {
		return err
	}
	s.Narrator.Say("external-secrets", fmt.Sprintf("Ready=%s %s: %s", st.Status, st.Reason, st.Message))
	return s.explainOK(ctx)
}

// explainBindingChanged rebinds the role to another ServiceAccount: explain must name the
// binding as the broken link, and its fix, run as printed, must repair the chain.
func (s *Stack) explainBindingChanged(ctx context.Context) error {
	s.Narrator.Step("The role's binding changed instead: bound_service_account_names no longer names ESO's account")
	if _, err := s.vaultCLI(ctx, s.vault.RootToken, "", "write", "auth/kubernetes/role/external-secrets-operator",
		"bound_service_account_names=someone-else"); err != nil {
		return err
	}
	out, code, err := s.explainWorkload(ctx)
	if err != nil {
		return err
	}
	if want := "verdict: broken at Vault role kubernetes/external-secrets-operator: ServiceAccount external-secrets/external-secrets is not bound"; code != 1 || !strings.Contains(out, want) {
		return fmt.Errorf("credchain explain exited %d with the binding changed, want 1 and %q:\n%s", code, want, out)
	}
	fix, err := printedFix(out)
	if err != nil {
		return err
	}
	if !strings.Contains(fix, "vault write auth/kubernetes/role/external-secrets-operator bound_service_account_names=someone-else,external-secrets") {
		return fmt.Errorf("the binding's fix does not bind ESO's account:\n%s", fix)
	}
	return s.explainRunFix(ctx, fix)
}

// explainVaultUnreachable points explain at a Vault that does not answer: it must explain the
// Kubernetes half alone, say "Vault not checked" and why, and exit as the Kubernetes half says
// (wantExit).
func (s *Stack) explainVaultUnreachable(ctx context.Context, wantExit int) error {
	s.Narrator.Step("credchain explain with Vault unreachable: the Kubernetes half alone")
	addr, err := testenv.FreeAddr()
	if err != nil {
		return err
	}
	out, code, err := s.explainAt(ctx, "http://"+addr)
	if err != nil {
		return err
	}
	if code != wantExit || !strings.Contains(out, "Vault not checked: reading Vault:") {
		return fmt.Errorf("credchain explain with Vault unreachable exited %d (want %d), or did not say Vault was not checked:\n%s", code, wantExit, out)
	}
	return nil
}

// explainRegistryOK runs explain --registry-check against the registry (plain HTTP, so
// --registry-insecure): the synced credential authenticates, and is not printed.
func (s *Stack) explainRegistryOK(ctx context.Context) error {
	s.Narrator.Step("credchain explain --registry-check: the runbook's step 3, the credential tried at the registry's /v2/")
	out, code, err := s.explainWorkload(ctx, "--registry-check", "--registry-insecure")
	if err != nil {
		return err
	}
	want := "registry " + s.registry + ": GET http://" + s.registry + "/v2/ with the credential of user " + s.regUser + " (basic auth): 200"
	if code != 0 || !strings.Contains(out, want) {
		return fmt.Errorf("credchain explain --registry-check exited %d, want 0 and %q:\n%s", code, want, out)
	}
	if strings.Contains(out, s.regPass) {
		return fmt.Errorf("credchain explain --registry-check printed the registry password")
	}
	return nil
}

// explainRegistryWrongCredential puts a wrong password in Vault and lets ESO sync it: explain
// --registry-check must find the registry link broken (401), without printing either password;
// then the right one is put back and synced.
func (s *Stack) explainRegistryWrongCredential(ctx context.Context) error {
	s.Narrator.Step("A wrong credential in Vault, synced by ESO: the registry refuses it")
	wrong := "wrong-" + randomHex(8)
	if err := s.syncCredential(ctx, wrong); err != nil {
		return err
	}
	out, code, err := s.explainWorkload(ctx, "--registry-check", "--registry-insecure")
	if err != nil {
		return err
	}
	want := "broken at registry " + s.registry + ": GET http://" + s.registry + "/v2/ with the credential of user " + s.regUser + " (basic auth): 401"
	if code != 1 || !strings.Contains(out, want) {
		return fmt.Errorf("credchain explain --registry-check with a wrong credential exited %d, want 1 and %q:\n%s", code, want, out)
	}
	if strings.Contains(out, wrong) || strings.Contains(out, s.regPass) {
		return fmt.Errorf("credchain explain --registry-check printed a password")
	}
	s.Narrator.Step("The right credential back in Vault, synced")
	return s.syncCredential(ctx, s.regPass)
}

// syncCredential writes the registry password into Vault and waits for ESO to sync it.
func (s *Stack) syncCredential(ctx context.Context, pass string) error {
	if _, err := s.quietVault(ctx, s.vault.RootToken, "", "kv", "put", "-mount=registry-creds", "order-service",
		"username="+s.regUser, "password="+pass); err != nil {
		return err
	}
	s.Narrator.Command("vault kv put -mount=registry-creds order-service username="+s.regUser+" password=<redacted>", "")
	before, err := s.forceSync(ctx)
	if err != nil {
		return err
	}
	if _, err := s.waitSync(ctx, "True", "SecretSynced", before); err != nil {
		return err
	}
	return eventually(ctx, 30*time.Second, func() error {
		_, got, err := s.PullCredential(ctx)
		if err == nil && got != pass {
			err = errors.New("the Secret does not hold the new password yet")
		}
		return err
	})
}
