package check

import (
	"fmt"
	"slices"
	"strings"

	glob "github.com/ryanuber/go-glob"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// Option configures Check and CheckChange.
type Option func(*options)

type options struct {
	eso chain.ServiceAccountName
	// gonePolicies and goneRoles are known not to exist though the input is not Complete:
	// CheckChange's, what the change deletes.
	gonePolicies map[string]bool
	goneRoles    map[chain.RoleRef]bool
}

// WithESOServiceAccount names ESO's own ServiceAccount, whose token ESO sends for a store with
// Kubernetes auth and no serviceAccountRef (its pod's token). Defaults to
// external-secrets/external-secrets, the Helm chart's default.
func WithESOServiceAccount(namespace, name string) Option {
	return func(o *options) { o.eso = chain.ServiceAccountName{Namespace: namespace, Name: name} }
}

func newOptions(opts []Option) options {
	o := options{eso: chain.ServiceAccountName{Namespace: "external-secrets", Name: "external-secrets"}}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Check predicts, for every ExternalSecret of m, whether ESO v0.16.2 can fetch it from the Vault
// v: the requests ESO makes (chain.VaultRequests), each against the login's role and the ACL of
// its token's policies. Each role's ACL is built once and every path's answer kept, so the cost
// is O(ExternalSecrets × items), not O(ExternalSecrets × policies).
func Check(m *chain.Model, v *Vault, opts ...Option) *Report {
	return newEngine(m, v, newOptions(opts)).report()
}

// CheckChange is the report of a change of the Vault side from before to after: every
// ExternalSecret's verdict after, with its verdict before, what the change breaks (not broken
// before, broken after) first, then what was already broken. A policy or role that before holds
// and after does not is gone — broken, not unknown — even when after is not Complete.
func CheckChange(m *chain.Model, before, after *Vault, opts ...Option) *Report {
	rb := Check(m, before, opts...)
	o := newOptions(opts)
	o.gonePolicies, o.goneRoles = gone(before, after)
	r := newEngine(m, after, o).report()
	r.Before = cmpOr(before.Source, "the Vault input before the change")
	was := make(map[Object]Verdict, len(rb.ExternalSecrets))
	for _, res := range rb.ExternalSecrets {
		was[res.ExternalSecret] = res.Verdict
	}
	for i := range r.ExternalSecrets {
		res := &r.ExternalSecrets[i]
		res.Before = was[res.ExternalSecret]
		switch {
		case res.Verdict == Broken && res.Before == Broken:
			res.Change = StillBroken
		case res.Verdict == Broken:
			res.Change = Breaks
		case res.Before == Broken:
			res.Change = Fixes
		}
	}
	changeOrder(r.ExternalSecrets)
	r.summarize()
	return r
}

// gone lists what before defines and after does not.
func gone(before, after *Vault) (map[string]bool, map[chain.RoleRef]bool) {
	policies, roles := map[string]bool{}, map[chain.RoleRef]bool{}
	for n := range before.Policies {
		if _, unknown := after.UnknownPolicies[n]; after.Policies[n] == nil && !unknown {
			policies[n] = true
		}
	}
	for ref := range before.Roles {
		if _, unknown := after.UnknownRoles[ref]; after.Roles[ref] == nil && !unknown {
			roles[ref] = true
		}
	}
	return policies, roles
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// engine is one Check: the inputs and the per-role ACLs built so far. Not safe for concurrent use.
type engine struct {
	m *chain.Model
	v *Vault
	// set is v.Policies with Vault's built-in default policy when v has none (withDefault).
	set   vaultacl.Set
	o     options
	roles map[chain.RoleRef]*roleACL
}

func newEngine(m *chain.Model, v *Vault, o options) *engine {
	return &engine{m: m, v: v, set: withDefault(v.Policies), o: o, roles: map[chain.RoleRef]*roleACL{}}
}

func (e *engine) report() *Report {
	r := &Report{Schema: Schema, Vault: e.v.Source, ExternalSecrets: make([]Result, 0, len(e.m.ExternalSecrets))}
	for _, es := range e.m.ExternalSecrets {
		r.ExternalSecrets = append(r.ExternalSecrets, e.result(es))
	}
	slices.SortFunc(r.ExternalSecrets, compareResults)
	r.UndefinedPolicies = e.undefinedPolicies()
	r.summarize()
	return r
}

// roleACL is one role's token as `check` evaluates it, built once per Check.
type roleACL struct {
	role *Role
	// names are the token's policies (Role.TokenPolicyNames).
	names []string
	acl   *vaultacl.ACL
	// dangling are names that do not exist: Vault ignores them.
	dangling []string
	// unsure say why the token's ACL may differ from acl: a policy whose existence or content
	// the input cannot tell.
	unsure []string
	// answers caches acl.Explain by path, in the report's terms: most paths (lookup-self, a
	// shared secret) are asked for many ExternalSecrets. Results share an answer's slices.
	answers map[string]*answer
}

// answer is one path's evaluation, converted once for every Request that asks it.
type answer struct {
	res          vaultacl.Result
	caps         []string
	rule         *Rule
	restrictions []string
}

func (e *engine) roleACL(r *Role) *roleACL {
	if ra := e.roles[r.Ref()]; ra != nil {
		return ra
	}
	ra := &roleACL{role: r, names: r.TokenPolicyNames(), answers: map[string]*answer{}}
	ra.acl = e.set.ACL(ra.names...)
	for _, n := range ra.acl.Dangling() {
		why, unknown := e.v.UnknownPolicies[n]
		switch {
		case unknown:
			ra.unsure = append(ra.unsure, fmt.Sprintf("policy %q: %s", n, why))
		case e.v.Complete || e.o.gonePolicies[n]:
			ra.dangling = append(ra.dangling, n)
		default:
			ra.unsure = append(ra.unsure, fmt.Sprintf("policy %q is not in the Vault input (%s)", n, e.v.Source))
		}
	}
	e.roles[r.Ref()] = ra
	return ra
}

func (ra *roleACL) explain(path string) *answer {
	if a := ra.answers[path]; a != nil {
		return a
	}
	res := ra.acl.Explain(path)
	a := &answer{res: res, caps: res.Capabilities.Strings(), rule: ruleOf(res.Rule)}
	for _, r := range res.Restrictions {
		a.restrictions = append(a.restrictions, r.String())
	}
	ra.answers[path] = a
	return a
}

// result is the verdict on one ExternalSecret: every store its items read from, then its blast
// radius.
func (e *engine) result(es *chain.ExternalSecret) Result {
	res := Result{ExternalSecret: Object{Namespace: es.Namespace, Name: es.Name}, Verdict: OK}
	own, key := e.m.StoreOf(es)
	res.Store = storeRefOf(key)
	if own != nil {
		res.Provider = strings.Join(own.Spec.Provider.Names, ",")
		if ref, ok := own.KubernetesRole(); ok && chain.LoginMethod(own) == "kubernetes" {
			res.Role = &RoleRef{Mount: ref.Mount, Name: ref.Name}
			if r := e.v.Roles[ref]; r != nil {
				res.Role.Source = r.Source
			}
			if sa, known := chain.LoginAccount(own, es.Namespace, e.o.eso); known {
				res.ServiceAccount = &Object{Kind: "ServiceAccount", Namespace: sa.Namespace, Name: sa.Name}
			}
		}
	}
	stores := chain.ItemStores(es)
	if len(stores) == 0 {
		res.Notes = append(res.Notes, "no spec.data or spec.dataFrom item reads a store: ESO asks Vault nothing")
	}
	for _, k := range stores {
		e.viaStore(&res, es, k, k != key)
	}
	for _, r := range res.Reasons {
		res.Verdict = worse(res.Verdict, r.Verdict)
	}
	if es.Writes() {
		res.Secret = &Object{Kind: "Secret", Namespace: es.Namespace, Name: es.TargetName()}
		for _, w := range e.m.WorkloadsUsing(es.Namespace, es.TargetName()) {
			res.Workloads = append(res.Workloads, Object{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name})
		}
		slices.SortFunc(res.Workloads, func(a, b Object) int {
			return strings.Compare(a.Kind+" "+a.String(), b.Kind+" "+b.String())
		})
	}
	return res
}

func (res *Result) add(v Verdict, code, msg string) {
	res.Reasons = append(res.Reasons, Reason{Verdict: v, Code: code, Message: msg})
}

// viaStore evaluates the requests of es's items that read from store k, in ESO's order: the
// login first (when it fails ESO makes no other request), then the token lookup and the items.
func (e *engine) viaStore(res *Result, es *chain.ExternalSecret, k chain.StoreKey, other bool) {
	s := e.m.Store(k)
	ref := storeRefOf(k)
	switch {
	case s == nil:
		res.add(Broken, CodeStoreNotFound, fmt.Sprintf("%s not found: ESO cannot fetch %s", ref, strings.Join(chain.ItemsOn(es, k), ", ")))
		return
	case s.Vault() == nil:
		res.add(NotChecked, CodeOtherProvider, fmt.Sprintf("%s: provider %s, not checked", ref, strings.Join(s.Spec.Provider.Names, ",")))
		return
	}
	reqs, notes := chain.VaultRequests(s, es)
	res.Notes = append(res.Notes, notes...)
	res.Requests = slices.Grow(res.Requests, len(reqs))
	evaluable := e.evaluable(res, s, ref)
	var ra *roleACL
	stop := false // the login fails: ESO goes no further
	for _, req := range reqs {
		out := Request{Kind: req.Kind, Path: req.Path, Capability: req.Capability, Params: req.Params, Why: req.Why}
		if other {
			out.Store = &ref
		}
		switch {
		case stop:
			out.Verdict = Skipped
		case req.Fails != "":
			out.Verdict = Broken
			res.add(Broken, CodeESORefuses, req.Why+": "+req.Fails)
		case !evaluable:
			out.Verdict = Unknown
		case req.Kind == chain.RequestLogin:
			var r *Reason
			ra, r, stop = e.login(s, es.Namespace)
			out.Verdict = OK
			if r != nil {
				out.Verdict = r.Verdict
				res.Reasons = append(res.Reasons, *r)
			}
			if ra != nil {
				res.DanglingPolicies = mergeSorted(res.DanglingPolicies, ra.dangling)
			}
		default:
			var r *Reason
			out, r = evaluate(ra, req, out)
			if r != nil {
				res.Reasons = append(res.Reasons, *r)
			}
		}
		res.Requests = append(res.Requests, out)
	}
}

// evaluable says whether the store's requests can be evaluated at all, adding the reason when
// not: only Kubernetes auth in Vault's root namespace is modelled.
func (e *engine) evaluable(res *Result, s *chain.Store, ref StoreRef) bool {
	v := s.Vault()
	if m := chain.LoginMethod(s); m != "kubernetes" {
		what := "no auth method"
		if m != "" {
			what = "auth method " + m
		}
		res.add(Unknown, CodeAuthMethod, fmt.Sprintf("%s logs in with %s: only Kubernetes auth is checked", ref, what))
		return false
	}
	for _, ns := range []*string{v.Namespace, v.Auth.Namespace} {
		if ns != nil && strings.Trim(*ns, "/") != "" {
			res.add(Unknown, CodeVaultNamespace, fmt.Sprintf("%s uses Vault namespace %q: Vault Enterprise namespaces are not checked", ref, *ns))
			return false
		}
	}
	return true
}

// login is the Kubernetes auth login: the mount and the role must exist and the role must bind
// the ServiceAccount. It returns the role's token (nil when there is none to evaluate), the
// reason it fails or is unknown, and whether ESO stops there.
func (e *engine) login(s *chain.Store, esNamespace string) (*roleACL, *Reason, bool) {
	ref, _ := s.KubernetesRole()
	role := e.v.Roles[ref]
	name := fmt.Sprintf("role %q on auth mount %q", ref.Name, ref.Mount)
	if role == nil {
		why, unknown := e.v.UnknownRoles[ref]
		switch {
		case e.v.Complete && e.v.Mounts != nil && !e.v.Mounts[ref.Mount]:
			return nil, &Reason{Broken, CodeMountMissing, fmt.Sprintf("no Kubernetes auth mount %q in %s: the login at auth/%s/login fails", ref.Mount, e.v.Source, ref.Mount)}, true
		case unknown:
			return nil, &Reason{Unknown, CodeRoleUnknown, fmt.Sprintf("%s: %s", name, why)}, true
		case e.v.Complete || e.o.goneRoles[ref]:
			return nil, &Reason{Broken, CodeRoleMissing, fmt.Sprintf("%s does not exist in %s: the login fails", name, e.v.Source)}, true
		}
		return nil, &Reason{Unknown, CodeRoleUnknown, fmt.Sprintf("%s is not in the Vault input (%s)", name, e.v.Source)}, true
	}
	sa, known := chain.LoginAccount(s, esNamespace, e.o.eso)
	if !known {
		return e.roleACL(role), &Reason{Unknown, CodeAccountUnknown, fmt.Sprintf(
			"%s logs in with the token in spec.provider.vault.auth.kubernetes.secretRef: whether %s binds its ServiceAccount cannot be told", storeRefOf(s.Key()), name)}, false
	}
	if why := notBound(role, sa); why != "" {
		return nil, &Reason{Broken, CodeNotBound, fmt.Sprintf("ServiceAccount %s is not bound by %s (%s): %s", sa, name, cmpOr(role.Source, e.v.Source), why)}, true
	}
	return e.roleACL(role), nil, false
}

// notBound is the Kubernetes auth plugin's check of the token's account against the role
// (vault-plugin-auth-kubernetes path_login.go, Vault 1.21): the name must match one of
// bound_service_account_names unless that is exactly ["*"], and the namespace one of
// bound_service_account_namespaces, by go-glob's "*" matching, as the plugin does. It returns
// Vault's refusal, "" when bound. A namespace selector is not modelled.
func notBound(r *Role, sa chain.ServiceAccountName) string {
	names, nss := r.BoundServiceAccountNames, r.BoundServiceAccountNamespaces
	if !(len(names) == 1 && names[0] == "*") && !globAny(names, sa.Name) {
		return fmt.Sprintf("bound_service_account_names %q (Vault answers \"service account name not authorized\")", names)
	}
	if len(nss) == 0 || (nss[0] != "*" && !globAny(nss, sa.Namespace)) {
		return fmt.Sprintf("bound_service_account_namespaces %q (Vault answers \"namespace not authorized\")", nss)
	}
	return ""
}

func globAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob.Glob(p, s) {
			return true
		}
	}
	return false
}

// evaluate asks the role's ACL about one request. A templated rule that may match, or a policy
// the input cannot tell, makes the answer unknown — never ok — except an exact deny, which no
// other policy can lift.
func evaluate(ra *roleACL, req chain.VaultRequest, out Request) (Request, *Reason) {
	a := ra.explain(req.Path)
	res := a.res
	out.Capabilities, out.Rule, out.Restrictions, out.Unknown = a.caps, a.rule, a.restrictions, res.Unknown
	need := vaultacl.Read
	if req.Capability == chain.CapabilityList {
		need = vaultacl.List
	}
	if len(res.Unknown)+len(ra.unsure)+len(res.Restrictions) == 0 && res.Capabilities.Has(need) {
		out.Verdict = OK // the common case, without building a message
		return out, nil
	}
	what := fmt.Sprintf("%s on %q (%s)", req.Capability, req.Path, req.Why)
	exactDeny := res.Rule != nil && res.Rule.Kind == vaultacl.Exact && res.Capabilities&vaultacl.Deny != 0
	var r *Reason
	switch {
	case exactDeny || (res.Capabilities&vaultacl.Deny != 0 && len(res.Unknown)+len(ra.unsure) == 0):
		r = &Reason{Broken, CodeDenied, what + ": denied by " + describe(res.Rule)}
	case len(res.Unknown) > 0:
		r = &Reason{Unknown, CodeTemplated, what + ": " + strings.Join(res.Unknown, "; ")}
	case len(ra.unsure) > 0:
		r = &Reason{Unknown, CodePolicyUnknown, what + ": " + strings.Join(ra.unsure, "; ")}
	case !res.Capabilities.Has(need):
		r = &Reason{Broken, CodeNoRuleGrants, what + ": " + notGranted(ra, res)}
	default:
		r = restricted(req, res, what)
	}
	out.Verdict = OK
	if r != nil {
		out.Verdict = r.Verdict
	}
	return out, r
}

// restricted judges the deciding rule's restrictions against what ESO sends: no
// response-wrapping ever (so a wrapping TTL refuses it), at most ?version=N. Parameter rules
// Vault may apply to a read are unknown: sys/capabilities cannot show them.
func restricted(req chain.VaultRequest, res vaultacl.Result, what string) *Reason {
	var unknown []string
	for _, x := range res.Restrictions {
		switch x.Key {
		case "min_wrapping_ttl", "max_wrapping_ttl":
			return &Reason{Broken, CodeRestricted, what + ": ESO does not response-wrap its requests, and " + x.String()}
		case "allowed_parameters", "denied_parameters":
			if len(req.Params) == 0 {
				continue // ESO sends no parameter these could refuse
			}
		}
		unknown = append(unknown, x.String())
	}
	if len(unknown) == 0 {
		return nil
	}
	sends := "no parameters"
	if len(req.Params) > 0 {
		sends = "parameter " + strings.Join(req.Params, ", ")
	}
	return &Reason{Unknown, CodeRestricted, fmt.Sprintf("%s: ESO sends %s; %s", what, sends, strings.Join(unknown, "; "))}
}

// notGranted says why the capability is missing, naming the role's policies and those that do
// not exist: the incident's "the role still logs in, but its policy is gone".
func notGranted(ra *roleACL, res vaultacl.Result) string {
	var s string
	if res.Rule == nil {
		s = fmt.Sprintf("no rule of role %q's policies (%s) grants it", ra.role.Name, strings.Join(ra.names, ", "))
	} else {
		s = fmt.Sprintf("%s grants only %s", describe(res.Rule), strings.Join(res.Capabilities.Strings(), ", "))
	}
	for _, d := range ra.dangling {
		s += fmt.Sprintf("; role %q names policy %q, which does not exist", ra.role.Name, d)
	}
	return s
}

// describe is `rule "secret/data/*" (policy eso, policies/eso.hcl:3)`.
func describe(m *vaultacl.Match) string {
	if m == nil {
		return "no rule"
	}
	var where []string
	for _, s := range m.Sources {
		w := "policy " + s.Policy
		if s.File != "" {
			w += ", " + s.File
			if s.Line > 0 {
				w += fmt.Sprintf(":%d", s.Line)
			}
		}
		where = append(where, w)
	}
	out := fmt.Sprintf("rule %q (%s)", m.Written, strings.Join(where, "; "))
	if m.Trimmed {
		out += ", matched without the trailing /"
	}
	return out
}

func ruleOf(m *vaultacl.Match) *Rule {
	if m == nil {
		return nil
	}
	r := &Rule{Path: m.Written, Kind: m.Kind.String()}
	for _, s := range m.Sources {
		r.Sources = append(r.Sources, RuleSource{Policy: s.Policy, File: s.File, Line: s.Line, Capabilities: s.Capabilities.Strings()})
	}
	return r
}

// undefinedPolicies are the policies some role names that the input does not define, as the
// runbook's grep finds them; Vault's built-in default and root are always defined.
func (e *engine) undefinedPolicies() []UndefinedPolicy {
	by := map[string]*UndefinedPolicy{}
	for ref, role := range e.v.Roles {
		for _, n := range role.TokenPolicyNames() {
			if _, unknown := e.v.UnknownPolicies[n]; n == "root" || e.set[n] != nil || unknown {
				continue
			}
			u := by[n]
			if u == nil {
				u = &UndefinedPolicy{Policy: n, Unknown: !e.v.Complete && !e.o.gonePolicies[n]}
				by[n] = u
			}
			u.Roles = append(u.Roles, RoleRef{Mount: ref.Mount, Name: ref.Name, Source: role.Source})
		}
	}
	out := make([]UndefinedPolicy, 0, len(by))
	for _, u := range by {
		slices.SortFunc(u.Roles, func(a, b RoleRef) int { return strings.Compare(a.String(), b.String()) })
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b UndefinedPolicy) int { return strings.Compare(a.Policy, b.Policy) })
	return out
}

func storeRefOf(k chain.StoreKey) StoreRef {
	return StoreRef{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name}
}

func mergeSorted(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
