package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// The runbook's prevention, on the live stack: `credchain check` reads the cluster as the platform
// engineer and Vault with a token holding only manifests/vault/check-policy.hcl.

// checkPolicy is the name the stack gives manifests/vault/check-policy.hcl in Vault.
const checkPolicy = "credchain-check"

// checkToken writes the shipped read-only policy and returns a token holding only it.
func (s *Stack) checkToken(ctx context.Context) (string, error) {
	hcl, err := os.ReadFile(filepath.Join(s.Manifests, "vault", "check-policy.hcl"))
	if err != nil {
		return "", err
	}
	if err := s.root.Sys().PutPolicyWithContext(ctx, checkPolicy, string(hcl)); err != nil {
		return "", err
	}
	sec, err := s.root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
		Policies: []string{checkPolicy}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		return "", err
	}
	return sec.Auth.ClientToken, nil
}

// credchainCheck runs `credchain check` against the live cluster and Vault, narrating it, and
// returns its output and exit status.
func (s *Stack) credchainCheck(ctx context.Context) (string, int, error) {
	return s.runReadOnly(ctx, s.vault.Addr, "check", "check", "--kubeconfig", s.adminKubeconfig)
}

// runReadOnly runs a credchain command as the platform engineer with Vault at vaultAddr and a token of
// the read-only check policy, narrating it as shown, and returns its combined output and exit status.
func (s *Stack) runReadOnly(ctx context.Context, vaultAddr, shown string, args ...string) (string, int, error) {
	token, err := s.checkToken(ctx)
	if err != nil {
		return "", 0, err
	}
	cmd := exec.CommandContext(ctx, s.Credchain, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+vaultAddr, "VAULT_TOKEN="+token, "HOME="+s.Dir)
	out, err := cmd.CombinedOutput()
	s.Narrator.Command("VAULT_TOKEN=<a "+checkPolicy+" token> credchain "+shown, string(out))
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return string(out), exit.ExitCode(), nil
	case err != nil:
		return string(out), 0, fmt.Errorf("credchain %s: %w: %s", args[0], err, out)
	}
	return string(out), 0, nil
}

// checkOK runs check and wants exit 0 with the order-service chain reported ok.
func (s *Stack) checkOK(ctx context.Context) error {
	out, code, err := s.credchainCheck(ctx)
	if err != nil {
		return err
	}
	if code != 0 || !strings.Contains(out, Namespace+"/"+ExternalSecret) {
		return fmt.Errorf("credchain check exited %d on the healthy chain, want 0 naming %s/%s:\n%s", code, Namespace, ExternalSecret, out)
	}
	return nil
}

// checkBroken runs check after the delete and wants exit 1 naming the whole broken chain.
func (s *Stack) checkBroken(ctx context.Context) error {
	s.Narrator.Step("The runbook's prevention: credchain check names the break before ESO's next sync does")
	out, code, err := s.credchainCheck(ctx)
	if err != nil {
		return err
	}
	if code != 1 {
		return fmt.Errorf("credchain check exited %d after the delete, want 1:\n%s", code, out)
	}
	for _, want := range []string{Namespace + "/" + ExternalSecret, PullSecret, "Deployment " + Namespace + "/" + Workload,
		"external-secrets-operator", Policy} {
		if !strings.Contains(out, want) {
			return fmt.Errorf("credchain check's report lacks %q:\n%s", want, out)
		}
	}
	return nil
}
