package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spf13/cobra"

	"github.com/credchain/credchain/internal/explain"
	"github.com/credchain/credchain/internal/kube"
)

// ExplainConfig is `credchain explain KIND/NAME`: one workload's (or ExternalSecret's) chain,
// link by link, with the verdict and the fix.
type ExplainConfig struct {
	// Target is KIND/NAME: a workload of any kind the webhook checks (deployment/x, pod/x, ...)
	// or externalsecret/x. Required.
	Target string
	// Namespace is the target's. Without -n, the --kubeconfig context's namespace (kube.Namespace),
	// else "default", as kubectl resolves it; set after flags because it depends on --kubeconfig.
	Namespace string
	// Kubeconfig is the cluster: a path, kube.InCluster, or "" for the usual chain ($KUBECONFIG,
	// in-cluster, ~/.kube/config). Defaults to "".
	Kubeconfig string
	// VaultAddr is the Vault to read the role and its policies from, with the API client's token
	// (VAULT_TOKEN, else ~/.vault-token). Without it, or without a token, the Kubernetes half alone
	// is explained. Defaults to $VAULT_ADDR.
	VaultAddr string
	// Policies and Terraform are where the last known policy bodies are, for the fix: a directory
	// of NAME.hcl/NAME.json policy files, and a Terraform configuration (check.LoadTerraform).
	// Either, both or neither. Defaults to none.
	Policies, Terraform string
	// RegistryCheck tries each pull secret's credential at its registries' /v2/. It reads the
	// Secrets' data (the Secret is read anyway; this uses what it holds). Defaults to false.
	RegistryCheck bool
	// RegistryInsecure accepts a registry's certificate unverified and falls back to plain HTTP;
	// RegistryCA is a PEM file of CAs to trust besides the system's. Only with RegistryCheck.
	RegistryInsecure bool
	RegistryCA       string
	// Output is text or json. Defaults to text.
	Output string
	// ESOServiceAccount is ESO's own ServiceAccount, namespace/name, for stores without a
	// serviceAccountRef. Defaults to external-secrets/external-secrets.
	ESOServiceAccount string
}

// SetDefaults fills what was not set; getenv is os.Getenv outside tests.
func (c *ExplainConfig) SetDefaults(getenv func(string) string) {
	if c.VaultAddr == "" {
		c.VaultAddr = getenv(vaultapi.EnvVaultAddress)
	}
	if c.Output == "" {
		c.Output = explain.FormatText
	}
	if c.ESOServiceAccount == "" {
		c.ESOServiceAccount = "external-secrets/external-secrets"
	}
}

// Validate reports every invalid field at once.
func (c *ExplainConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Namespace) == "" {
		errs = append(errs, errors.New("--namespace: empty"))
	}
	if _, err := explain.ParseTarget(c.Target, c.Namespace); err != nil {
		errs = append(errs, err)
	}
	if !slices.Contains(explain.Formats, c.Output) {
		errs = append(errs, fmt.Errorf("-o %q: must be one of %s", c.Output, strings.Join(explain.Formats, ", ")))
	}
	if _, err := parseAccount(c.ESOServiceAccount); err != nil {
		errs = append(errs, err)
	}
	if !c.RegistryCheck && (c.RegistryInsecure || c.RegistryCA != "") {
		errs = append(errs, errors.New("--registry-insecure and --registry-ca: only with --registry-check"))
	}
	return errors.Join(errs...)
}

func newExplainCommand(ctx context.Context, run func(context.Context, ExplainConfig, checkIO) error, getenv func(string) string) *cobra.Command {
	var cfg ExplainConfig
	cfg.SetDefaults(getenv) // flag defaults are the Config defaults
	cmd := &cobra.Command{
		Use:   "explain KIND/NAME [-n NAMESPACE] [--policies DIR] [--terraform DIR] [--registry-check] [-o text|json]",
		Short: "Walk one workload's chain link by link — pull secret, Secret, ExternalSecret, store, Vault role, policies — and print the fix",
		Long: "KIND/NAME is a workload (deployment/x, statefulset/x, daemonset/x, replicaset/x, job/x, cronjob/x, replicationcontroller/x, pod/x)\n" +
			"or externalsecret/x. Each link is printed with its state (ok, broken, unknown) and the evidence; then the verdict and the fix as commands.\n" +
			"Vault is read when VAULT_ADDR and a token are set (the read-only manifests/vault/check-policy.hcl is enough); else the Kubernetes half alone.\n" +
			"--policies DIR and --terraform DIR hold the last known policy bodies the fix writes back. See docs/explain.md.\n" +
			"Exit status: 0 no link is broken; 1 a link is broken; 2 bad input (a flag, an unknown kind, a target that does not exist).",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &badInputError{fmt.Errorf("want one KIND/NAME, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Target = args[0]
			if !cmd.Flags().Changed("namespace") {
				// The one default that depends on another flag: the --kubeconfig context's, as kubectl.
				cfg.Namespace = kube.Namespace(cfg.Kubeconfig)
			}
			if err := cfg.Validate(); err != nil {
				return &badInputError{fmt.Errorf("invalid configuration: %w", err)}
			}
			return run(ctx, cfg, checkIO{in: cmd.InOrStdin(), out: cmd.OutOrStdout(), err: cmd.ErrOrStderr()})
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &badInputError{err} })
	f := cmd.Flags()
	f.StringVarP(&cfg.Namespace, "namespace", "n", "", "the target's namespace (default: the --kubeconfig context's, else default)")
	f.StringVar(&cfg.Kubeconfig, "kubeconfig", cfg.Kubeconfig, "kubeconfig of the cluster, or \"in-cluster\" (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	f.StringVar(&cfg.Policies, "policies", "", "directory of the desired policies (NAME.hcl, NAME.json): the bodies the fix writes back")
	f.StringVar(&cfg.Terraform, "terraform", "", "Terraform configuration with the vault_policy (and role) resources: the bodies the fix writes back")
	f.BoolVar(&cfg.RegistryCheck, "registry-check", false, "try each pull secret's credential at its registries' /v2/ (reads the Secrets' data)")
	f.BoolVar(&cfg.RegistryInsecure, "registry-insecure", false, "with --registry-check: accept unverified certificates and fall back to plain HTTP")
	f.StringVar(&cfg.RegistryCA, "registry-ca", "", "with --registry-check: PEM file of CAs to trust for the registries")
	f.StringVarP(&cfg.Output, "output", "o", cfg.Output, "text or json")
	f.StringVar(&cfg.ESOServiceAccount, "eso-service-account", cfg.ESOServiceAccount, "ESO's own ServiceAccount (namespace/name), for stores without a serviceAccountRef")
	return cmd
}

// explainBrokenError is an explain that ran and found a broken link: exit 1.
type explainBrokenError struct{ msg string }

func (e *explainBrokenError) Error() string { return e.msg }

// ExitCode is 1: a link of the chain is broken (not the command).
func (e *explainBrokenError) ExitCode() int { return 1 }

// runExplain reads the chain, judges it, prints it, and turns the verdict into the exit status.
func runExplain(ctx context.Context, cfg ExplainConfig, cio checkIO) error {
	t, _ := explain.ParseTarget(cfg.Target, cfg.Namespace) // validated
	o, err := explainOptions(cfg)
	if err != nil {
		return err
	}
	kc, host, err := clusterClient(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	facts, err := explain.Gather(ctx, kc, t, o)
	switch {
	case errors.Is(err, explain.ErrTargetNotFound):
		return &badInputError{fmt.Errorf("%w in the cluster at %s", err, host)}
	case err != nil:
		return &badInputError{fmt.Errorf("reading the cluster at %s: %w", host, err)}
	}
	r := explain.Judge(facts)
	if err := explain.Write(cio.out, r, cfg.Output); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if r.Cause != nil {
		return &explainBrokenError{"the chain is broken at " + r.Links[r.Cause.Link].Name}
	}
	return nil
}

// explainOptions builds Gather's options: ESO's account, the body sources, the registry checker
// and the Vault client (or why there is none).
func explainOptions(cfg ExplainConfig) (explain.Options, error) {
	sa, _ := parseAccount(cfg.ESOServiceAccount) // validated
	o := explain.Options{ESOAccount: sa}
	if cfg.Policies != "" || cfg.Terraform != "" {
		b, err := explain.LoadBodies(cfg.Policies, cfg.Terraform)
		if err != nil {
			return o, &badInputError{err}
		}
		o.Bodies = b
	}
	if cfg.RegistryCheck {
		var ca []byte
		if cfg.RegistryCA != "" {
			var err error
			if ca, err = os.ReadFile(cfg.RegistryCA); err != nil {
				return o, &badInputError{fmt.Errorf("--registry-ca: %w", err)}
			}
		}
		rc, err := explain.NewRegistryChecker(ca, cfg.RegistryInsecure)
		if err != nil {
			return o, &badInputError{err}
		}
		o.Registry = rc
	}
	o.Vault, o.VaultNotChecked = explainVault(cfg.VaultAddr)
	return o, nil
}

// vaultTimeout bounds each Vault call: a Vault that does not answer leaves the Vault half out
// rather than hanging the on-call engineer's terminal.
const vaultTimeout = 15 * time.Second

// explainVault is the Vault client, or why Vault is not checked: no address, no token.
func explainVault(addr string) (*vaultapi.Client, string) {
	if addr == "" {
		return nil, "VAULT_ADDR is not set (export VAULT_ADDR and VAULT_TOKEN to check the role and its policies)"
	}
	vc := vaultapi.DefaultConfig() // VAULT_CACERT, VAULT_SKIP_VERIFY, ... as the vault CLI reads them
	if vc.Error != nil {
		return nil, "configuring the Vault client: " + vc.Error.Error()
	}
	vc.Address, vc.Timeout, vc.MaxRetries = addr, vaultTimeout, 0
	c, err := vaultapi.NewClient(vc) // VAULT_TOKEN, VAULT_NAMESPACE
	if err != nil {
		return nil, "configuring the Vault client: " + err.Error()
	}
	if c.Token() == "" {
		// The vault CLI's default token helper keeps `vault login`'s token here.
		if home, err := os.UserHomeDir(); err == nil {
			if b, err := os.ReadFile(filepath.Join(home, ".vault-token")); err == nil {
				c.SetToken(strings.TrimSpace(string(b)))
			}
		}
	}
	if c.Token() == "" {
		return nil, "no Vault token (VAULT_TOKEN is not set and there is no ~/.vault-token)"
	}
	return c, ""
}
