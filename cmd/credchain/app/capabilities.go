package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/credchain/credchain/internal/vaultacl"
)

// CapabilitiesConfig is `credchain capabilities`: offline `vault token capabilities` for a token
// holding exactly Policies, read from PolicyDir.
type CapabilitiesConfig struct {
	// PolicyDir holds one policy per DIR/NAME.hcl or DIR/NAME.json, named NAME lower-cased
	// (vaultacl.LoadDir). Every file in it is parsed, named or not: a policy Vault would refuse
	// is an error. Required.
	PolicyDir string
	// Policies are the token's policies. "default" is held only when named (and then needs
	// DIR/default.hcl, e.g. from `vault policy read default`); "root" needs no file. At least one.
	Policies []string
	// Output is "text" or "json". Defaults to text.
	Output string
	// Paths are the paths to evaluate, trimmed of white space as Vault trims them. At least one.
	Paths []string
}

// SetDefaults fills what was not set.
func (c *CapabilitiesConfig) SetDefaults() {
	if c.Output == "" {
		c.Output = "text"
	}
}

// Validate reports every invalid field at once.
func (c *CapabilitiesConfig) Validate() error {
	var errs []error
	if c.PolicyDir == "" {
		errs = append(errs, errors.New("--policy-dir: required"))
	}
	if len(c.Policies) == 0 {
		errs = append(errs, errors.New("--policy: at least one policy is required (the token's policies; default is not added)"))
	}
	for _, p := range c.Policies {
		if vaultacl.SanitizeName(p) == "" {
			errs = append(errs, errors.New("--policy: an empty policy name"))
			break
		}
	}
	if c.Output != "text" && c.Output != "json" {
		errs = append(errs, fmt.Errorf("-o %q: must be text or json", c.Output))
	}
	if len(c.Paths) == 0 {
		errs = append(errs, errors.New("at least one PATH is required"))
	}
	for _, p := range c.Paths {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, errors.New("PATH: an empty path (Vault answers \"missing path\")"))
			break
		}
	}
	return errors.Join(errs...)
}

// badInputError is an error the user can fix in their input (flags, a policy file); main exits
// with ExitCode, 2, instead of 1. It says nothing about the input beyond what it wraps.
type badInputError struct{ err error }

var _ interface {
	error
	ExitCode() int
} = (*badInputError)(nil)

func (e *badInputError) Error() string { return e.err.Error() }
func (e *badInputError) Unwrap() error { return e.err }

// ExitCode is the process exit status for this error: 2, bad input.
func (e *badInputError) ExitCode() int { return 2 }

func newCapabilitiesCommand(ctx context.Context, run func(context.Context, CapabilitiesConfig, io.Writer, io.Writer) error) *cobra.Command {
	var cfg CapabilitiesConfig
	// Defaults before flags: flag defaults are the Config defaults.
	cfg.SetDefaults()
	cmd := &cobra.Command{
		Use:   "capabilities --policy-dir DIR --policy NAME [--policy NAME ...] [-o json] [--] PATH...",
		Short: "Offline `vault token capabilities`: a token holding exactly the named policies, evaluated as Vault 1.21 does",
		Long: "Prints each PATH's capabilities as Vault's sys/capabilities returns them (sorted; deny when nothing grants; root for the root policy).\n" +
			"One PATH prints the line `vault token capabilities` prints; several print PATH: CAPS lines; -o json one object {\"PATH\": [\"cap\", ...]}.\n" +
			"Restrictions sys/capabilities cannot show (parameters, wrapping TTLs) and templated rules go to stderr.\n" +
			"Exit status 2: a bad flag, a policy Vault would refuse (file and line), or a named policy not in DIR.",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Paths = args
			if err := cfg.Validate(); err != nil {
				return &badInputError{fmt.Errorf("invalid configuration: %w", err)}
			}
			return run(ctx, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &badInputError{err} })
	f := cmd.Flags()
	f.StringVar(&cfg.PolicyDir, "policy-dir", cfg.PolicyDir, "directory of policies, DIR/NAME.hcl or DIR/NAME.json (every file must be one Vault accepts)")
	f.StringSliceVar(&cfg.Policies, "policy", cfg.Policies, "a policy the token holds (repeatable or comma-separated; default is not added)")
	f.StringVarP(&cfg.Output, "output", "o", cfg.Output, "text or json")
	return cmd
}

// runCapabilities loads the policies, builds the token's ACL once and answers every path.
func runCapabilities(_ context.Context, cfg CapabilitiesConfig, out, errOut io.Writer) error {
	set, err := vaultacl.LoadDir(cfg.PolicyDir)
	if err != nil {
		return &badInputError{err}
	}
	acl := set.ACL(cfg.Policies...)
	if missing := acl.Dangling(); len(missing) > 0 {
		var errs []error
		for _, m := range missing {
			errs = append(errs, fmt.Errorf("policy %q: not in %s (no %s.hcl or %s.json there)", m, cfg.PolicyDir, m, m))
		}
		return &badInputError{errors.Join(errs...)}
	}
	var paths []string
	for _, p := range cfg.Paths {
		if p = strings.TrimSpace(p); !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	answers := make(map[string][]string, len(paths))
	for _, p := range paths {
		res := acl.Explain(p)
		answers[p] = res.Capabilities.Strings()
		for _, r := range res.Restrictions {
			fmt.Fprintf(errOut, "%s: %s\n", p, r)
		}
		for _, u := range res.Unknown {
			fmt.Fprintf(errOut, "%s: unknown for a token with an identity: %s\n", p, u)
		}
	}
	if cfg.Output == "json" {
		b, err := json.Marshal(answers)
		if err != nil {
			return fmt.Errorf("internal error: encoding the answer: %w", err)
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	for _, p := range paths {
		line := strings.Join(answers[p], ", ")
		if len(paths) > 1 {
			line = p + ": " + line
		}
		if _, err := fmt.Fprintln(out, line); err != nil {
			return err
		}
	}
	return nil
}
