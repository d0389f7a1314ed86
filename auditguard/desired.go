package auditguard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/credchain/credchain/internal/check"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/vaultacl"
)

// The desired state: the policies the IaC defines (--desired-policies, --terraform), read with
// the parsers `credchain check` uses, and kept current while the guard runs. A desired policy is
// restored from its desired body when deleted, and a write that changes its rules is drift
// (drift.go). It applies to the guard's own Vault namespace (VAULT_NAMESPACE, root by default):
// the IaC input names no namespace.

// DesiredSource is where the desired state is read from; either directory may be empty.
type DesiredSource struct {
	// PoliciesDir holds one policy per DIR/*.hcl or DIR/*.json, named by the file name
	// (vaultacl.LoadDir, as `credchain capabilities --policy-dir`).
	PoliciesDir string
	// TerraformDir is a Terraform root module whose vault_policy resources are read
	// (check.LoadTerraform, as `credchain check --terraform`).
	TerraformDir string
}

func (s DesiredSource) enabled() bool { return s.PoliciesDir != "" || s.TerraformDir != "" }

// String names the source as the flags do.
func (s DesiredSource) String() string {
	var parts []string
	if s.PoliciesDir != "" {
		parts = append(parts, "--desired-policies "+s.PoliciesDir)
	}
	if s.TerraformDir != "" {
		parts = append(parts, "--terraform "+s.TerraformDir)
	}
	return strings.Join(parts, ", ")
}

// Desired is one loaded desired state. It is never modified once loaded.
type Desired struct {
	// Policies are the desired policies by (sanitised) name.
	Policies map[string]*DesiredPolicy
	// Fingerprint is the content it was loaded from (DesiredSource.fingerprint).
	Fingerprint string
	// LoadedAt is when the guard took it (its clock).
	LoadedAt time.Time
}

// DesiredPolicy is one policy of the desired state.
type DesiredPolicy struct {
	Name string
	// Body is the text the guard writes when it restores or corrects the policy: the file's, or
	// the vault_policy's evaluated policy argument.
	Body string
	// Policy is Body parsed, what drift is measured against.
	Policy *vaultacl.Policy
	// Origin is where it is defined: the policy file, or the Terraform address and file:line.
	Origin string
}

// desiredLoad is one reading of the desired state, from the poller (or a drift's refresh) to the
// processing goroutine.
type desiredLoad struct {
	desired *Desired // nil unless the load succeeded
	err     error
	// fingerprint is the content read (also when it did not load, so a broken state is
	// reported once).
	fingerprint string
	// unsettled: the content changed while it was read; nothing was taken.
	unsettled bool
}

// errDesiredUnsettled is a load that saw the directories change under it: a git-sync or
// ConfigMap swap replaces a whole tree at once, but a copy written in place may be half done.
var errDesiredUnsettled = errors.New("the desired state changed while it was read")

func (s DesiredSource) load() desiredLoad { return s.loadWith(nil) }

// loadWith reads the desired state between two fingerprints and takes it only when they agree:
// a directory written while it was read is never acted on, whatever it parsed to. between, for
// tests, runs after the read.
func (s DesiredSource) loadWith(between func()) desiredLoad {
	before := s.fingerprint()
	d, err := s.read()
	if between != nil {
		between()
	}
	if after := s.fingerprint(); after != before {
		return desiredLoad{fingerprint: after, unsettled: true, err: errDesiredUnsettled}
	}
	if err != nil {
		return desiredLoad{fingerprint: before, err: err}
	}
	d.Fingerprint = before
	return desiredLoad{desired: d, fingerprint: before}
}

// read parses both directories into one desired state, or every reason it cannot be one: a file
// that does not parse or that Vault would refuse (file:line), Terraform it cannot evaluate, a
// policy defined twice, or no policy at all (an empty or not yet populated mount must not become
// "the IaC defines nothing").
func (s DesiredSource) read() (*Desired, error) {
	d := &Desired{Policies: map[string]*DesiredPolicy{}}
	var errs []error
	if s.PoliciesDir != "" {
		set, err := vaultacl.LoadDir(s.PoliciesDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("--desired-policies %s: %w", s.PoliciesDir, err))
		}
		for name, p := range set {
			d.Policies[name] = &DesiredPolicy{Name: name, Body: p.Text, Policy: p, Origin: p.File}
		}
	}
	if s.TerraformDir != "" {
		errs = append(errs, s.readTerraform(d)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(d.Policies) == 0 {
		return nil, fmt.Errorf("%s defines no policy: an empty or unpopulated directory is not taken for the desired state", s)
	}
	return d, nil
}

// readTerraform adds the vault_policy resources of s.TerraformDir to d.
func (s DesiredSource) readTerraform(d *Desired) []error {
	v, err := check.LoadTerraform(s.TerraformDir)
	if err != nil {
		return []error{fmt.Errorf("--terraform %s: %w", s.TerraformDir, err)}
	}
	var errs []error
	for _, addr := range slices.Sorted(maps.Keys(v.PolicyAddresses)) {
		name := v.PolicyAddresses[addr]
		p := v.Policies[name]
		origin := addr + " (" + v.PolicySources[name] + ")"
		if prev := d.Policies[name]; prev != nil {
			errs = append(errs, fmt.Errorf("policy %q is defined by both %s and %s", name, prev.Origin, origin))
			continue
		}
		d.Policies[name] = &DesiredPolicy{Name: name, Body: p.Text, Policy: p, Origin: origin}
	}
	return errs
}

// maxFingerprintDepth bounds how deep the fingerprint walks (Terraform modules nest a few levels).
const maxFingerprintDepth = 8

// fingerprint is a hash of what the loaders read: every file under each directory, symlinks
// followed (a ConfigMap volume's files are symlinks into ..data; git-sync's directory is a
// symlink to a worktree), by name and content. A file larger than a policy can be (vaultacl's
// MaxPolicyBytes) counts by size and modification time. Left out: .git, Terraform's .terraform
// (provider binaries) and the ConfigMap volume's own ..data and ..<timestamp> entries, whose
// files are reached through the symlinks beside them. A directory it cannot read makes an
// "unreadable: ..." fingerprint, which changes with the error.
//
// Polled, not watched (inotify, filewatch.go): git-sync swaps the symlink the flag names, so a
// watch on the directory it resolved to never fires again, and Terraform modules would need a
// watch per directory. A hash of a few hundred small files every --desired-poll costs
// milliseconds. Modules outside --terraform's tree (source = "../modules/x") are re-read with the
// next change inside it.
func (s DesiredSource) fingerprint() string {
	h := sha256.New()
	for _, dir := range []string{s.PoliciesDir, s.TerraformDir} {
		if dir == "" {
			continue
		}
		fmt.Fprintf(h, "dir %q\n", dir)
		if err := hashTree(h, dir, 0); err != nil {
			return "unreadable: " + err.Error()
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashTree(h hash.Hash, dir string, depth int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range entries {
		name := de.Name()
		if name == ".git" || name == ".terraform" || strings.HasPrefix(name, "..") {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir() && depth < maxFingerprintDepth:
			fmt.Fprintf(h, "dir %q\n", name)
			if err := hashTree(h, p, depth+1); err != nil {
				return err
			}
		case !fi.Mode().IsRegular():
		case fi.Size() > vaultacl.MaxPolicyBytes:
			fmt.Fprintf(h, "large %q %d %d\n", name, fi.Size(), fi.ModTime().UnixNano())
		default:
			if err := hashFile(h, name, p); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(h, "end\n")
	return nil
}

func hashFile(h hash.Hash, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(h, "file %q\n", name)
	_, err = io.Copy(h, io.LimitReader(f, vaultacl.MaxPolicyBytes+1))
	return err
}

// startDesired loads the desired state, before the first reconcile restores and corrects by it,
// and starts its poller; the returned wait waits for the poller to end with ctx. Without a
// desired state it does nothing.
func (g *Guard) startDesired(ctx context.Context) (wait func()) {
	if !g.opts.desired.enabled() {
		return func() {}
	}
	r := g.opts.desired.load()
	g.applyDesired(ctx, r, false)
	seen := r.fingerprint
	if r.unsettled {
		seen = "" // taken at the first poll
	}
	var wg sync.WaitGroup
	wg.Go(func() { g.pollDesired(ctx, seen) })
	return wg.Wait
}

// pollDesired runs on its own goroutine: every --desired-poll it fingerprints the directories and,
// when they changed since the state it last handed over, loads them and queues the result for the
// processing goroutine (blocking: a desired state is never dropped). Parsing here keeps a large
// Terraform configuration from holding up the deletes queued behind it. seen is the fingerprint of
// the load Run made at start.
func (g *Guard) pollDesired(ctx context.Context, seen string) {
	t := time.NewTicker(g.opts.desiredPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if g.opts.desired.fingerprint() == seen {
			continue
		}
		r := g.opts.desired.load()
		if r.unsettled {
			continue // read again at the next poll
		}
		seen = r.fingerprint
		select {
		case g.queue <- work{kind: workDesired, desired: &r}:
		case <-ctx.Done():
			return
		}
	}
}

// refreshDesired loads the desired state now when its directories changed since the one in force,
// without the reconcile a poll's change brings (the caller is acting on one policy). A drift is
// checked against the newest desired body: a commit synced but not yet polled must not be
// reverted to the one before it.
func (g *Guard) refreshDesired(ctx context.Context) {
	if g.desired != nil && g.opts.desired.fingerprint() == g.desired.Fingerprint {
		return
	}
	g.applyDesired(ctx, g.opts.desired.load(), false)
}

// applyDesired puts a loaded desired state in force, or reports why it did not load and keeps the
// one in force. A changed state is reconciled at once when reconcile is set and the guard is ready
// (the start-up load is reconciled by Run).
func (g *Guard) applyDesired(ctx context.Context, r desiredLoad, reconcile bool) {
	switch {
	case r.unsettled:
		return
	case g.desired != nil && r.fingerprint == g.desired.Fingerprint:
		// Back to the state in force (a broken edit reverted), or a drift's refresh that raced
		// the poller.
		g.desiredBad = ""
		g.metrics.DesiredValid.Set(1)
		return
	case r.err != nil:
		g.desiredInvalid(ctx, r)
		return
	}
	prev := g.desired
	r.desired.LoadedAt = g.opts.now().UTC()
	g.desired, g.desiredBad = r.desired, ""
	clear(g.drifted) // reported against bodies no longer desired
	g.metrics.DesiredValid.Set(1)
	g.metrics.DesiredPolicies.Set(float64(len(r.desired.Policies)))
	var added, removed []string
	for n := range r.desired.Policies {
		if prev == nil || prev.Policies[n] == nil {
			added = append(added, n)
		}
	}
	if prev != nil {
		for n := range prev.Policies {
			if r.desired.Policies[n] == nil {
				removed = append(removed, n)
			}
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	g.log.Info("desired state loaded", "source", g.opts.desired.String(), "policies", len(r.desired.Policies), "added", added, "removed", removed)
	if reconcile && g.ready.Load() {
		g.reconcile(ctx)
	}
}

// desiredInvalid reports a desired state that does not load, once per content.
func (g *Guard) desiredInvalid(ctx context.Context, r desiredLoad) {
	g.metrics.DesiredValid.Set(0)
	if r.fingerprint == g.desiredBad {
		return
	}
	g.desiredBad = r.fingerprint
	g.metrics.DesiredErrors.Inc()
	g.log.Error(r.err, "desired state does not load; keeping the one in force", "source", g.opts.desired.String())
	keeps := "no desired state has loaded yet, so deleted policies are restored from snapshots, as without one"
	if d := g.desired; d != nil {
		n := fmt.Sprintf("%d policies", len(d.Policies))
		if len(d.Policies) == 1 {
			n = "1 policy"
		}
		keeps = fmt.Sprintf("credchain keeps acting on the last one that loaded (%s, at %s)", n, d.LoadedAt.Format(time.RFC3339))
	}
	g.emit(ctx, events.Event{Type: events.DesiredStateInvalid, Object: g.opts.desired.String(), Action: "none", Error: r.err.Error(),
		Message: fmt.Sprintf("the desired state does not load: %s; %s", firstLine(r.err.Error()), keeps)})
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// desiredPolicy is the desired state's policy name in namespace ns, nil when there is none.
func (g *Guard) desiredPolicy(ns, name string) *DesiredPolicy {
	if ns != "" || g.desired == nil {
		return nil
	}
	return g.desired.Policies[name]
}

// authoritative reports whether a policy of ns that the desired state does not define is meant
// not to exist: --desired-authoritative with a desired state in force. Until one has loaded the
// snapshot rules apply.
func (g *Guard) authoritative(ns string) bool {
	return ns == "" && g.opts.desiredAuthoritative && g.desired != nil
}

// desiredProvenance is where a desired body comes from, for events and snapshots.
func (g *Guard) desiredProvenance(dp *DesiredPolicy) events.Provenance {
	return events.Provenance{ReadAt: g.desired.LoadedAt, Source: events.RuleIaC, Origin: dp.Origin}
}
