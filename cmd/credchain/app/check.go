package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spf13/cobra"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
)

// CheckConfig is `credchain check`: every ExternalSecret's Vault chain, evaluated as ESO v0.16.2
// and Vault 1.21 would, from a live cluster or manifests and a live Vault or files, optionally
// with a proposed Terraform change applied.
type CheckConfig struct {
	// Kubeconfig is the cluster to read when no Manifests are given: a path, kube.InCluster, or
	// "" for the usual chain ($KUBECONFIG, in-cluster, ~/.kube/config). Defaults to "".
	Kubeconfig string
	// Manifests are files or directories of YAML/JSON manifests (walked for *.yaml, *.yml,
	// *.json), "-" for stdin. When set, the cluster is not read. Defaults to none.
	Manifests []string
	// Namespace is given to manifests that have none, as kubectl apply does. Defaults to "default".
	Namespace string

	// VaultAddr is the live Vault to read when no offline Vault input is given; its token and
	// namespace are the API client's defaults (VAULT_TOKEN, VAULT_NAMESPACE, ...). Defaults to
	// $VAULT_ADDR.
	VaultAddr string
	// VaultPolicies and VaultRoles are the offline Vault input: a directory of policies
	// (NAME.hcl, NAME.json) and a roles file (check.LoadVaultFiles). Either may be alone.
	VaultPolicies, VaultRoles string
	// Terraform is the other offline Vault input: a Terraform configuration directory
	// (check.LoadTerraform).
	Terraform string
	// Authoritative declares the offline Vault input the whole of Vault's policies and roles: what
	// it does not define is missing (broken), not unknown. Defaults to false.
	Authoritative bool
	// TerraformPlan is `terraform show -json` output of a proposed change ("-" for stdin), applied
	// on top of the Vault input: the report is then what the change breaks. Defaults to none.
	TerraformPlan string

	// Output is table, json or junit. Defaults to table.
	Output string
	// ESOServiceAccount is ESO's own ServiceAccount, "namespace/name": the account a store
	// without a serviceAccountRef logs in as. Defaults to external-secrets/external-secrets.
	ESOServiceAccount string
	// FailOnUnknown makes unknown verdicts fail the check (exit 1); otherwise they only warn.
	// Defaults to false.
	FailOnUnknown bool
}

// SetDefaults fills what was not set; getenv is os.Getenv outside tests.
func (c *CheckConfig) SetDefaults(getenv func(string) string) {
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.VaultAddr == "" {
		c.VaultAddr = getenv(vaultapi.EnvVaultAddress)
	}
	if c.Output == "" {
		c.Output = check.FormatTable
	}
	if c.ESOServiceAccount == "" {
		c.ESOServiceAccount = "external-secrets/external-secrets"
	}
}

// offlineVault says whether the Vault input is files or Terraform rather than live.
func (c *CheckConfig) offlineVault() bool {
	return c.VaultPolicies != "" || c.VaultRoles != "" || c.Terraform != ""
}

// Validate reports every invalid field at once.
func (c *CheckConfig) Validate() error {
	var errs []error
	if c.Kubeconfig != "" && len(c.Manifests) > 0 {
		errs = append(errs, errors.New("--kubeconfig and --manifests: give one (a live cluster or manifests)"))
	}
	if slices.Contains(c.Manifests, "") {
		errs = append(errs, errors.New("--manifests: an empty path"))
	}
	if strings.TrimSpace(c.Namespace) == "" {
		errs = append(errs, errors.New("--namespace: empty"))
	}
	switch {
	case c.Terraform != "" && (c.VaultPolicies != "" || c.VaultRoles != ""):
		errs = append(errs, errors.New("--terraform and --vault-policies/--vault-roles: give one Vault input"))
	case !c.offlineVault() && c.VaultAddr == "":
		errs = append(errs, errors.New("no Vault input: set VAULT_ADDR (and VAULT_TOKEN) for a live Vault, or give --vault-policies and --vault-roles, or --terraform"))
	case !c.offlineVault() && c.Authoritative:
		errs = append(errs, errors.New("--authoritative: only for an offline Vault input (a live read is the whole of Vault)"))
	}
	if c.TerraformPlan == "-" && slices.Contains(c.Manifests, "-") {
		errs = append(errs, errors.New("--terraform-plan - and --manifests -: only one can read stdin"))
	}
	if !slices.Contains(check.Formats, c.Output) {
		errs = append(errs, fmt.Errorf("-o %q: must be one of %s", c.Output, strings.Join(check.Formats, ", ")))
	}
	if _, err := parseAccount(c.ESOServiceAccount); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseAccount(s string) (chain.ServiceAccountName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return chain.ServiceAccountName{}, fmt.Errorf("--eso-service-account %q: must be namespace/name", s)
	}
	return chain.ServiceAccountName{Namespace: ns, Name: name}, nil
}

// checkIO is where the command reads and writes: the process's, or a test's.
type checkIO struct {
	in       io.Reader
	out, err io.Writer
}

func newCheckCommand(ctx context.Context, run func(context.Context, CheckConfig, checkIO) error, getenv func(string) string) *cobra.Command {
	var cfg CheckConfig
	cfg.SetDefaults(getenv) // flag defaults are the Config defaults
	cmd := &cobra.Command{
		Use:   "check [--kubeconfig PATH | --manifests PATH...] [--vault-policies DIR --vault-roles FILE | --terraform DIR] [--terraform-plan FILE|-] [-o table|json|junit]",
		Short: "Test a Vault or Kubernetes change against every ExternalSecret before it lands",
		Long: "For every ExternalSecret with a Vault store, the requests ESO v0.16.2 makes (login, the store's token lookup, each data path)\n" +
			"are evaluated against the role and its policies as Vault 1.21 would: ok, broken (and why, with the Secret and workloads it takes down) or unknown.\n" +
			"Kubernetes: the current context, or --manifests. Vault: live when VAULT_ADDR is set, else --vault-policies/--vault-roles or --terraform.\n" +
			"With --terraform-plan the plan is applied on top and the report is what the change breaks. See docs/check.md.\n" +
			"Exit status: 0 all ok; 1 something is broken (with a plan: the change breaks something); 2 bad input (file and line) or an input that cannot be read.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return &badInputError{fmt.Errorf("invalid configuration: %w", err)}
			}
			return run(ctx, cfg, checkIO{in: cmd.InOrStdin(), out: cmd.OutOrStdout(), err: cmd.ErrOrStderr()})
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &badInputError{err} })
	f := cmd.Flags()
	f.StringVar(&cfg.Kubeconfig, "kubeconfig", cfg.Kubeconfig, "kubeconfig of the cluster to read, or \"in-cluster\" (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	f.StringArrayVar(&cfg.Manifests, "manifests", cfg.Manifests, "manifest file or directory to read instead of a cluster, - for stdin (repeatable)")
	f.StringVarP(&cfg.Namespace, "namespace", "n", cfg.Namespace, "namespace of manifests that name none")
	f.StringVar(&cfg.VaultPolicies, "vault-policies", "", "directory of Vault policies, NAME.hcl or NAME.json (offline Vault input)")
	f.StringVar(&cfg.VaultRoles, "vault-roles", "", "YAML or JSON file of Kubernetes auth roles (offline Vault input; shape in docs/check.md)")
	f.StringVar(&cfg.Terraform, "terraform", "", "Terraform configuration directory with vault_policy and vault_kubernetes_auth_backend_role resources (offline Vault input)")
	f.BoolVar(&cfg.Authoritative, "authoritative", false, "the offline Vault input is all of Vault's policies and roles: what it lacks is missing, not unknown")
	f.StringVar(&cfg.TerraformPlan, "terraform-plan", "", "`terraform show -json` output of a proposed change, - for stdin: report what it breaks")
	f.StringVarP(&cfg.Output, "output", "o", cfg.Output, "table, json or junit")
	f.StringVar(&cfg.ESOServiceAccount, "eso-service-account", cfg.ESOServiceAccount, "ESO's own ServiceAccount (namespace/name), for stores without a serviceAccountRef")
	f.BoolVar(&cfg.FailOnUnknown, "fail-on-unknown", false, "exit 1 when a verdict is unknown (default: a warning)")
	return cmd
}

// checkFailedError is a check that ran and found something broken: exit 1.
type checkFailedError struct{ msg string }

func (e *checkFailedError) Error() string { return e.msg }

// ExitCode is 1: the check failed (not the command).
func (e *checkFailedError) ExitCode() int { return 1 }

// runCheck reads both halves of the chain (and the plan), checks, prints, and turns the report
// into the exit status.
func runCheck(ctx context.Context, cfg CheckConfig, cio checkIO) error {
	m, err := loadModel(ctx, cfg, cio.in)
	if err != nil {
		return err
	}
	v, err := loadVault(ctx, cfg)
	if err != nil {
		return err
	}
	sa, _ := parseAccount(cfg.ESOServiceAccount) // validated
	opt := check.WithESOServiceAccount(sa.Namespace, sa.Name)
	var r *check.Report
	if cfg.TerraformPlan != "" {
		plan, err := loadPlan(cfg.TerraformPlan, cio.in)
		if err != nil {
			return err
		}
		r = check.CheckChange(m, v, plan.Apply(v), opt)
		for _, c := range plan.Changes() {
			line := fmt.Sprintf("%s %s: %s", c.Action, c.Address, c.Summary)
			if c.Unknown != "" {
				line += " (" + c.Unknown + ")"
			}
			r.PlanChanges = append(r.PlanChanges, line)
		}
	} else {
		r = check.Check(m, v, opt)
	}
	if err := check.Write(cio.out, r, cfg.Output); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return verdict(r, cfg.FailOnUnknown, cio.err)
}

// verdict is the exit status of a report: 1 when something fails (in a change report, what the
// change breaks), or when something is unknown and failOnUnknown; unknowns alone only warn.
func verdict(r *check.Report, failOnUnknown bool, errOut io.Writer) error {
	if n := len(r.Failing()); n > 0 {
		if r.IsChange() {
			return &checkFailedError{fmt.Sprintf("the change breaks %s", plural(n, "ExternalSecret"))}
		}
		return &checkFailedError{fmt.Sprintf("%s broken", plural(n, "ExternalSecret"))}
	}
	if r.IsChange() && r.Summary.StillBroken > 0 {
		fmt.Fprintf(errOut, "warning: %s already broken before the change (not the change's doing)\n", plural(r.Summary.StillBroken, "ExternalSecret"))
	}
	if n := r.Summary.Unknown; n > 0 {
		if failOnUnknown {
			return &checkFailedError{fmt.Sprintf("%s unknown (--fail-on-unknown)", plural(n, "ExternalSecret"))}
		}
		fmt.Fprintf(errOut, "warning: %s could not be decided (unknown); see the reasons, or --fail-on-unknown to fail on them\n", plural(n, "ExternalSecret"))
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// loadModel reads the Kubernetes half: manifests, or the cluster.
func loadModel(ctx context.Context, cfg CheckConfig, stdin io.Reader) (*chain.Model, error) {
	if len(cfg.Manifests) > 0 {
		o, err := chain.LoadManifests(cfg.Manifests, stdin, cfg.Namespace)
		if err != nil {
			return nil, &badInputError{err}
		}
		return chain.NewModel(o), nil
	}
	c, host, err := clusterClient(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	o, err := chain.List(ctx, c)
	if err != nil {
		return nil, &badInputError{fmt.Errorf("reading the cluster at %s: %w", host, err)}
	}
	return chain.NewModel(o), nil
}

// loadVault reads the Vault half: files, Terraform, or the live Vault. A loader's InputError
// already exits 2; a live Vault that cannot be read is bad input too (the job is misconfigured).
func loadVault(ctx context.Context, cfg CheckConfig) (*check.Vault, error) {
	var opts []check.LoadOption
	if cfg.Authoritative {
		opts = append(opts, check.Authoritative())
	}
	switch {
	case cfg.Terraform != "":
		return check.LoadTerraform(cfg.Terraform, opts...)
	case cfg.offlineVault():
		return check.LoadVaultFiles(cfg.VaultPolicies, cfg.VaultRoles, opts...)
	}
	vc := vaultapi.DefaultConfig() // VAULT_CACERT, VAULT_SKIP_VERIFY, ... as the vault CLI reads them
	if vc.Error != nil {
		return nil, &badInputError{fmt.Errorf("configuring the Vault client: %w", vc.Error)}
	}
	vc.Address = cfg.VaultAddr
	c, err := vaultapi.NewClient(vc) // VAULT_TOKEN, VAULT_NAMESPACE
	if err != nil {
		return nil, &badInputError{fmt.Errorf("configuring the Vault client: %w", err)}
	}
	v, err := check.ReadVault(ctx, c)
	if err != nil {
		return nil, &badInputError{fmt.Errorf("reading Vault at %s: %w", cfg.VaultAddr, err)}
	}
	return v, nil
}

func loadPlan(name string, stdin io.Reader) (*check.Plan, error) {
	if name == "-" {
		return check.LoadPlan(stdin, "-")
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, &badInputError{fmt.Errorf("--terraform-plan: %w", err)}
	}
	defer f.Close()
	return check.LoadPlan(f, name)
}
