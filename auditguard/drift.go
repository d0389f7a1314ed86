package auditguard

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/vaultacl"
)

// Drift: a desired policy whose body in Vault grants otherwise than its desired body. Compared as
// ACL rules, parsed by the evaluator `check` uses, so what Vault's parser reads the same —
// formatting, comments, the order of stanzas, HCL or JSON, a leading "/" — is no drift. Limits:
// the parsed form keeps the names of allowed_parameters and denied_parameters, not their values,
// so a change of allowed values alone is not seen; a stanza's comment is not compared.

// checkDrift compares body, the policy as Vault holds it, with its desired body and reports a
// difference (policy.drifted), writing the desired body back with --correct-drift. e is the write's
// audit entry, nil when reconcile found the body; a drift reconcile finds again is reported once
// (it is corrected each time with --correct-drift).
func (g *Guard) checkDrift(ctx context.Context, ns string, dp *DesiredPolicy, body string, e *Entry) {
	k := polKey{ns, dp.Name}
	if body == dp.Body {
		delete(g.drifted, k)
		return
	}
	got, err := vaultacl.Parse(dp.Name, "vault", body)
	if err != nil {
		// Vault accepted what the evaluator refuses: a disagreement to fix in vaultacl, never a
		// reason to overwrite the policy.
		g.log.Error(err, "internal error: parsing a policy Vault holds; not comparing it with its desired body", "policy", dp.Name)
		return
	}
	d := compareRules(dp.Policy, got)
	if d == nil {
		delete(g.drifted, k)
		return
	}
	sig := fmt.Sprintf("%x", sha256.Sum256([]byte(body)))
	if e == nil && !g.opts.correctDrift && g.drifted[k] == sig {
		return
	}
	g.drifted[k] = sig
	prov := g.desiredProvenance(dp)
	ev := events.Event{Type: events.PolicyDrifted, Namespace: ns, Policy: dp.Name, Roles: g.index.RolesFor(ns, dp.Name),
		Rule: events.RuleIaC, Drift: d, SnapshotFrom: &prov, Action: "none"}
	done := "credchain left it as it is (run the guard with --correct-drift to have it write the desired body back)"
	if g.opts.correctDrift {
		if err := g.writeDesired(ctx, ns, dp); err != nil {
			g.metrics.Drifts.WithLabelValues("failed").Inc()
			ev.Error = err.Error()
			done = fmt.Sprintf("credchain could NOT write the desired body back: %v", err)
		} else {
			g.metrics.Drifts.WithLabelValues("corrected").Inc()
			delete(g.drifted, k)
			ev.Action, done = "corrected", "credchain wrote the desired body back"
		}
	} else {
		g.metrics.Drifts.WithLabelValues("reported").Inc()
	}
	if e != nil {
		ev.Actor = g.actor(ctx, e)
	}
	ev.Message = fmt.Sprintf("policy %q was changed by %s so that it no longer matches its desired body (%s): %s; %s",
		dp.Name, whoDeleted(ev.Actor), dp.Origin, driftSummary(d), done)
	g.emit(ctx, ev)
}

// writeDesired writes a desired body to Vault as the guard's own write (its audit entry is not
// read back, ownWrite) and makes it the policy's snapshot.
func (g *Guard) writeDesired(ctx context.Context, ns string, dp *DesiredPolicy) error {
	if err := g.vault.WritePolicy(ctx, ns, dp.Name, dp.Body); err != nil {
		return err
	}
	g.markOwnWrite(polKey{ns, dp.Name})
	if err := g.store.PutSnapshot(Snapshot{Namespace: ns, Name: dp.Name, Body: dp.Body, Meta: g.desiredProvenance(dp)}); err != nil {
		g.log.Error(err, "storing policy snapshot", "policy", dp.Name)
	}
	return nil
}

// ruleKey is what makes two rules the same rule: Vault merges rules of one path string and kind.
type ruleKey struct {
	kind vaultacl.Kind
	path string
}

// grant is what one rule of a policy grants, its stanzas of that path merged.
type grant struct {
	written      string
	caps         vaultacl.Capabilities
	restrictions []string
}

// compareRules is how vault differs from desired, rule by rule; nil when they grant alike.
func compareRules(desired, vault *vaultacl.Policy) *events.Drift {
	want, got := policyGrants(desired), policyGrants(vault)
	var d events.Drift
	for _, k := range slices.SortedFunc(maps.Keys(want), compareKeys) {
		w, g := want[k], got[k]
		switch {
		case g == nil:
			d.Removed = append(d.Removed, events.RuleChange{Path: w.written, Desired: w.String()})
		case w.String() != g.String():
			d.Changed = append(d.Changed, events.RuleChange{Path: w.written, Desired: w.String(), Vault: g.String()})
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(got), compareKeys) {
		if want[k] == nil {
			d.Added = append(d.Added, events.RuleChange{Path: got[k].written, Vault: got[k].String()})
		}
	}
	if d.Added == nil && d.Removed == nil && d.Changed == nil {
		return nil
	}
	return &d
}

func compareKeys(a, b ruleKey) int {
	if c := strings.Compare(a.path, b.path); c != 0 {
		return c
	}
	return int(a.kind) - int(b.kind)
}

// policyGrants merges the stanzas of one policy that share a path as Vault's ACL does: their
// capabilities add up and a deny absorbs the rest, restrictions and all.
func policyGrants(p *vaultacl.Policy) map[ruleKey]*grant {
	out := map[ruleKey]*grant{}
	for _, r := range p.Rules {
		k := ruleKey{r.Kind, r.Path}
		var restr []string
		for _, x := range r.Restrictions {
			restr = append(restr, strings.TrimSpace(x.Key+" "+x.Detail))
		}
		g := out[k]
		switch {
		case g == nil:
			out[k] = &grant{written: r.Written, caps: r.Capabilities, restrictions: restr}
		case g.caps&vaultacl.Deny != 0:
		case r.Capabilities&vaultacl.Deny != 0:
			g.caps, g.restrictions = vaultacl.Deny, nil
		default:
			g.caps |= r.Capabilities
			g.restrictions = append(g.restrictions, restr...)
		}
	}
	for _, g := range out {
		slices.Sort(g.restrictions)
		g.restrictions = slices.Compact(g.restrictions)
	}
	return out
}

// String is what the rule grants: "list, read", "deny", "none" for capabilities = [], then its
// restrictions after "; ".
func (g *grant) String() string {
	s := "none"
	if g.caps != 0 {
		s = g.caps.String()
	}
	for _, r := range g.restrictions {
		s += "; " + r
	}
	return s
}

// driftSummary is a drift in words, its first few rules: "removed rule registry-creds/data/x
// (read); changed rule y (read → none)".
func driftSummary(d *events.Drift) string {
	const show = 4
	var parts []string
	for _, c := range d.Removed {
		parts = append(parts, fmt.Sprintf("removed rule %s (%s)", c.Path, c.Desired))
	}
	for _, c := range d.Changed {
		parts = append(parts, fmt.Sprintf("changed rule %s (%s → %s)", c.Path, c.Desired, c.Vault))
	}
	for _, c := range d.Added {
		parts = append(parts, fmt.Sprintf("added rule %s (%s)", c.Path, c.Vault))
	}
	if len(parts) > show {
		parts = append(parts[:show], fmt.Sprintf("and %d more", len(parts)-show))
	}
	return strings.Join(parts, "; ")
}
