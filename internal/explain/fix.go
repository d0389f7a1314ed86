package explain

import (
	"fmt"
	"maps"
	"strings"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
	"github.com/credchain/credchain/internal/vaultacl"
)

// fixer writes the fix: for each broken Vault link the command that repairs it (a policy write
// with its last known body, a role write keeping the role's other fields), then the force-sync
// that makes ESO fetch again now rather than at its next refresh. Where no exact command can be
// written (no last known body, say), the step says what to do and has no Command.
type fixer struct {
	f     *Facts
	r     *Report
	steps []FixStep
	seen  map[string]bool
	// restored are the policies a step writes with a known body, for the verification.
	restored map[string]*vaultacl.Policy
}

func newFixer(f *Facts, r *Report) *fixer {
	return &fixer{f: f, r: r, seen: map[string]bool{}, restored: map[string]*vaultacl.Policy{}}
}

func (x *fixer) add(s FixStep) {
	key := s.Why + "\x00" + s.Command
	if !x.seen[key] {
		x.seen[key] = true
		x.steps = append(x.steps, s)
	}
}

// build returns the steps for every broken link, Vault first, then the force-syncs.
func (x *fixer) build() []FixStep {
	policyStep := map[int]bool{} // role link index → a policy step was written under it
	revalidate := map[int]bool{} // store link index → its login was broken: ESO marked it not Ready
	for i, l := range x.r.Links {
		if l.State != Broken {
			continue
		}
		switch l.Kind {
		case LinkPolicy:
			x.policy(l.Policy.Name)
			policyStep[ancestor(x.r.Links, i, LinkRole)] = true
		case LinkRole:
			x.role(i)
			revalidate[ancestor(x.r.Links, i, LinkStore)] = true
		case LinkRequest:
			if !policyStep[ancestor(x.r.Links, i, LinkRole)] {
				x.grant(i)
			}
		case LinkRegistry:
			x.add(FixStep{Why: fmt.Sprintf("%s refuses the credential of user %s that ESO synced: renew it at the registry, or put the valid one where the ExternalSecret reads it, then sync",
				l.Name, cmpOr(l.Registry.Username, "(none)"))})
		}
	}
	if x.f.Vault == nil && x.f.VaultNotChecked != "" && x.r.Links[x.r.Cause.Link].Kind == LinkExternalSecret {
		x.add(FixStep{Why: "Vault was not checked (" + x.f.VaultNotChecked + "): run explain again with VAULT_ADDR and VAULT_TOKEN to find which Vault link fails"})
	}
	x.verify()
	x.revalidate(revalidate)
	for _, es := range x.externalSecrets() {
		x.add(FixStep{Why: fmt.Sprintf("make ESO fetch ExternalSecret %s/%s now, not at its next refresh", es.Namespace, es.Name),
			Command: fmt.Sprintf("kubectl annotate externalsecret %s -n %s force-sync=$(date +%%s) --overwrite", es.Name, es.Namespace)})
	}
	return x.steps
}

// ancestor is the index of the nearest link before i of kind, shallower than it; -1 if none.
func ancestor(links []Link, i int, kind string) int {
	depth := links[i].Depth
	for k := i - 1; k >= 0; k-- {
		if links[k].Depth < depth {
			if links[k].Kind == kind {
				return k
			}
			depth = links[k].Depth
		}
	}
	return -1
}

// externalSecrets are those above a broken link (or broken themselves, or writing a broken
// Secret): each needs a sync once the rest is fixed.
func (x *fixer) externalSecrets() []Object {
	var out []Object
	seen := map[string]bool{}
	addES := func(o Object) {
		if !seen[o.Name] {
			seen[o.Name] = true
			out = append(out, o)
		}
	}
	for i, l := range x.r.Links {
		if l.State != Broken {
			continue
		}
		switch {
		case l.Kind == LinkExternalSecret && l.ExternalSecret.Ready != "":
			addES(l.ExternalSecret.Object)
		case l.Kind == LinkSecret && l.Secret.WrittenBy != nil:
			addES(*l.Secret.WrittenBy)
		case l.Kind == LinkRegistry:
			if s := ancestor(x.r.Links, i, LinkSecret); s >= 0 && x.r.Links[s].Secret.WrittenBy != nil {
				addES(*x.r.Links[s].Secret.WrittenBy)
			}
		default:
			if e := ancestor(x.r.Links, i, LinkExternalSecret); e >= 0 {
				addES(x.r.Links[e].ExternalSecret.Object)
			} else if x.f.Target.Kind == KindExternalSecret && l.Kind != LinkExternalSecret {
				addES(x.r.Target)
			}
		}
	}
	return out
}

// policy restores a missing policy with its last known body.
func (x *fixer) policy(name string) {
	b, ok := x.f.Bodies.Policy(name)
	if !ok {
		x.add(FixStep{Why: fmt.Sprintf("policy %s does not exist and no last known body is at hand (give --policies DIR or --terraform DIR): write it from your policy source, with the rules the requests above need", name),
			Command: "vault policy write " + shellQuote(name) + " " + shellQuote(name+".hcl")})
		return
	}
	x.restored[name] = b.Policy
	x.add(FixStep{Why: fmt.Sprintf("restore policy %s with its last known body, from %s", name, b.Source), Command: policyWrite(name, b.Text)})
}

// policyWrite is `vault policy write NAME -` with body as a here-document whose delimiter the
// body does not hold.
func policyWrite(name, body string) string {
	delim := "EOF"
	for strings.Contains("\n"+body+"\n", "\n"+delim+"\n") {
		delim += "_"
	}
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return "vault policy write " + shellQuote(name) + " - <<'" + delim + "'\n" + body + delim
}

// grant is a request no rule grants under a role whose policies all exist: the fix is a policy
// whose last known body grants it (Vault's has drifted), else a rule to add by hand.
func (x *fixer) grant(i int) {
	l := x.r.Links[i]
	roleAt := ancestor(x.r.Links, i, LinkRole)
	if roleAt < 0 || l.Request.Path == "" {
		return
	}
	rd := x.r.Links[roleAt].Role
	for _, name := range rd.TokenPolicies {
		b, ok := x.f.Bodies.Policy(name)
		if !ok || !grants(b.Policy, l.Request) {
			continue
		}
		x.restored[name] = b.Policy
		x.add(FixStep{Why: fmt.Sprintf("policy %s in Vault no longer grants %s; its last known body, from %s, does", name, l.Name, b.Source),
			Command: policyWrite(name, b.Text)})
		return
	}
	x.add(FixStep{Why: fmt.Sprintf("no last known body of role %s's policies (%s) grants %s: add a rule granting %s on %q to one of them",
		rd.RoleRef.String(), strings.Join(rd.TokenPolicies, ", "), l.Name, l.Request.Capability, l.Request.Path)})
}

func grants(p *vaultacl.Policy, r *check.Request) bool {
	need := vaultacl.Read
	if r.Capability == chain.CapabilityList {
		need = vaultacl.List
	}
	return vaultacl.Set{p.Name: p}.ACL(p.Name).Capabilities(r.Path).Has(need)
}

// verify evaluates the chain again as if the restored policies were written, and says in the
// last policy step whether that is enough.
func (x *fixer) verify() {
	if len(x.restored) == 0 || x.f.Vault == nil {
		return
	}
	v := *x.f.Vault
	v.Policies = maps.Clone(v.Policies)
	maps.Copy(v.Policies, x.restored)
	var still []string
	for _, res := range evaluate(x.f, &v) {
		for _, reason := range res.Reasons {
			if reason.Verdict == check.Broken {
				still = append(still, reason.Message)
			}
		}
	}
	last := -1
	for i, s := range x.steps {
		if strings.HasPrefix(s.Command, "vault policy write") && strings.Contains(s.Command, "<<") {
			last = i
		}
	}
	if last < 0 {
		return
	}
	if len(still) == 0 {
		x.steps[last].Why += "; with it every request ESO makes is granted (evaluated as Vault does)"
	} else {
		x.steps[last].Why += "; even with it, still broken: " + oneLine(strings.Join(still, "; "))
	}
}

// revalidate asks ESO to validate again the stores whose login was broken: a store whose
// validation failed is not Ready, and ESO v0.16.2 fails every ExternalSecret on it ("store is not
// ready") until its store controller validates it again — at its next requeue, minutes away,
// unless the store object changes. An annotation is such a change.
func (x *fixer) revalidate(stores map[int]bool) {
	for i := range x.r.Links {
		if !stores[i] || x.r.Links[i].Store == nil {
			continue
		}
		ref := x.r.Links[i].Store.StoreRef
		target := strings.ToLower(ref.Kind) + " " + ref.Name
		if ref.Namespace != "" {
			target += " -n " + ref.Namespace
		}
		x.add(FixStep{Why: fmt.Sprintf("make ESO validate %s again now: after a failed login it is not Ready until ESO next validates it", ref),
			Command: "kubectl annotate " + target + " credchain.io/revalidate=$(date +%s) --overwrite"})
		// An ExternalSecret synced before its store is Ready again fails once more, and ESO backs it
		// off (doubling, up to minutes): wait for the store first.
		kind := strings.ToLower(ref.Kind) + "/" + ref.Name
		if ref.Namespace != "" {
			kind += " -n " + ref.Namespace
		}
		x.add(FixStep{Why: fmt.Sprintf("wait until ESO reports %s Ready, so the sync below does not find it still invalid", ref),
			Command: "kubectl wait --for=condition=Ready " + kind + " --timeout=2m"})
	}
}
