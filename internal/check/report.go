package check

import (
	"cmp"
	"slices"
)

// Schema names the JSON shape of Report. It changes only when a field changes meaning or goes
// away; fields are added without changing it. docs/check.md documents every field.
const Schema = "credchain.io/check/v1"

// Verdict is what `check` predicts ESO does with an ExternalSecret (or one request of it).
type Verdict string

// Verdicts, from best to worst: worst wins when an ExternalSecret has several reasons.
const (
	// OK: every request ESO makes is allowed, as far as the inputs show.
	OK Verdict = "ok"
	// NotChecked: a store of another provider; nothing about it is claimed.
	NotChecked Verdict = "not-checked"
	// Unknown: the inputs cannot tell (a templated policy path, a role or policy the input does
	// not hold, an auth method not modelled). Never counted as ok.
	Unknown Verdict = "unknown"
	// Broken: ESO fails it: a store or role missing, the account not bound, a request denied.
	Broken Verdict = "broken"
	// Skipped is a request's verdict when an earlier step (the login) already fails: ESO never
	// makes it. It never decides an ExternalSecret's verdict.
	Skipped Verdict = "skipped"
)

var verdictRank = map[Verdict]int{OK: 0, Skipped: 0, NotChecked: 1, Unknown: 2, Broken: 3}

// worse returns the worse of two verdicts.
func worse(a, b Verdict) Verdict {
	if verdictRank[b] > verdictRank[a] {
		return b
	}
	return a
}

// Change is how a proposed change moves one ExternalSecret (CheckChange only).
type Change string

// Changes of Result.Change; "" when the change moves it between ok, unknown and not-checked.
const (
	// Breaks: not broken before the change, broken after. What the change must not do.
	Breaks Change = "breaks"
	// StillBroken: broken before and after: not the change's doing.
	StillBroken Change = "still-broken"
	// Fixes: broken before, not after.
	Fixes Change = "fixes"
)

// Report is `credchain check`'s answer, for people (WriteTable), CI systems (WriteJUnit) and
// programs (json.Marshal; the shape is Schema's, documented in docs/check.md).
type Report struct {
	Schema string `json:"schema"`
	// Vault is where the Vault input came from; after the change, in a change report.
	Vault string `json:"vault"`
	// Before is the Vault input before the change; empty unless this is a change report.
	Before string `json:"before,omitempty"`
	// PlanChanges are what the proposed change does on the Vault side, one line each (filled by
	// the command from the plan).
	PlanChanges []string `json:"planChanges,omitempty"`
	// ExternalSecrets holds one result per ExternalSecret: sorted by namespace and name; in a
	// change report, what the change breaks first, then what was already broken, then the rest.
	ExternalSecrets []Result `json:"externalSecrets"`
	// UndefinedPolicies are the policies roles name that the Vault input does not define (the
	// runbook's grep), whether or not an ExternalSecret needs them.
	UndefinedPolicies []UndefinedPolicy `json:"undefinedPolicies"`
	Summary           Summary           `json:"summary"`
}

// Result is the verdict on one ExternalSecret.
type Result struct {
	ExternalSecret Object `json:"externalSecret"`
	// Store is the store spec.secretStoreRef names; Provider its provider ("vault", "aws", ...),
	// empty when the store does not exist.
	Store    StoreRef `json:"store"`
	Provider string   `json:"provider,omitempty"`
	// Role is the Vault role the store logs in with (Kubernetes auth only).
	Role *RoleRef `json:"role,omitempty"`
	// ServiceAccount is the account whose token ESO sends to the login, when it can be told.
	ServiceAccount *Object `json:"serviceAccount,omitempty"`
	Verdict        Verdict `json:"verdict"`
	// Before and Change are set in change reports only: the verdict before the change, and how
	// the change moves it.
	Before Verdict `json:"before,omitempty"`
	Change Change  `json:"change,omitempty"`
	// Reasons are why the verdict is not ok, in the order ESO meets them (the first is what ESO
	// reports). Empty for ok.
	Reasons []Reason `json:"reasons,omitempty"`
	// Requests are the Vault requests ESO makes for it, each evaluated.
	Requests []Request `json:"requests,omitempty"`
	// DanglingPolicies are policies its role names that do not exist: Vault ignores them.
	DanglingPolicies []string `json:"danglingPolicies,omitempty"`
	// Notes are what is not modelled (a generator item, the reads a find makes).
	Notes []string `json:"notes,omitempty"`
	// Secret is the Secret ESO writes (none for creationPolicy None or a manifest target), and
	// Workloads those whose pods pull images with it: the blast radius when it is broken.
	Secret    *Object  `json:"secret,omitempty"`
	Workloads []Object `json:"workloads,omitempty"`
}

// Reason is one cause of a verdict other than ok.
type Reason struct {
	Verdict Verdict `json:"verdict"`
	// Code is stable, for programs: see the Reason codes below and docs/check.md.
	Code string `json:"code"`
	// Message is for people: what fails, where, and what decided it.
	Message string `json:"message"`
}

// Reason codes.
const (
	CodeStoreNotFound  = "store-not-found"
	CodeOtherProvider  = "other-provider"
	CodeAuthMethod     = "auth-method"
	CodeVaultNamespace = "vault-namespace"
	CodeMountMissing   = "mount-missing"
	CodeRoleMissing    = "role-missing"
	CodeRoleUnknown    = "role-unknown"
	CodeAccountUnknown = "account-unknown"
	CodeNotBound       = "account-not-bound"
	CodePolicyUnknown  = "policy-unknown"
	CodeNoRuleGrants   = "no-rule-grants"
	CodeDenied         = "denied"
	CodeRestricted     = "restricted"
	CodeTemplated      = "templated"
	CodeESORefuses     = "eso-refuses"
)

// Request is one Vault request ESO makes, evaluated.
type Request struct {
	// Kind is login, token-lookup or secret (chain.RequestLogin, ...).
	Kind string `json:"kind"`
	// Store is the store the request goes through, when it is not Result.Store (an item's
	// sourceRef.storeRef).
	Store      *StoreRef `json:"store,omitempty"`
	Path       string    `json:"path,omitempty"`
	Capability string    `json:"capability,omitempty"`
	Params     []string  `json:"params,omitempty"`
	Why        string    `json:"why"`
	Verdict    Verdict   `json:"verdict"`
	// Capabilities are what the role's policies grant on Path, as sys/capabilities would say.
	Capabilities []string `json:"capabilities,omitempty"`
	// Rule is the rule that decided, nil when none matched.
	Rule *Rule `json:"rule,omitempty"`
	// Restrictions and Unknown are the deciding rule's limits that sys/capabilities does not
	// show, and the templated rules that may match Path.
	Restrictions []string `json:"restrictions,omitempty"`
	Unknown      []string `json:"unknown,omitempty"`
}

// Rule is the policy rule that decided a request: every policy's stanza with that path, merged.
type Rule struct {
	Path    string       `json:"path"`
	Kind    string       `json:"kind"`
	Sources []RuleSource `json:"sources"`
}

// RuleSource is one policy's stanza merged into a Rule.
type RuleSource struct {
	Policy       string   `json:"policy"`
	File         string   `json:"file,omitempty"`
	Line         int      `json:"line,omitempty"`
	Capabilities []string `json:"capabilities"`
}

// UndefinedPolicy is a policy roles name that the Vault input does not define.
type UndefinedPolicy struct {
	Policy string `json:"policy"`
	// Roles name it; each with where it is defined.
	Roles []RoleRef `json:"roles"`
	// Unknown is true when it may still exist: the input is not the whole of Vault.
	Unknown bool `json:"unknown,omitempty"`
}

// Object names a namespaced Kubernetes object; Kind is omitted where the field says it.
type Object struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// StoreRef names a store; Namespace is empty for a ClusterSecretStore.
type StoreRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RoleRef names a Kubernetes auth role, and where it is defined when that is known.
type RoleRef struct {
	Mount  string `json:"mount"`
	Name   string `json:"name"`
	Source string `json:"source,omitempty"`
}

// Summary counts the results.
type Summary struct {
	ExternalSecrets int `json:"externalSecrets"`
	OK              int `json:"ok"`
	Broken          int `json:"broken"`
	Unknown         int `json:"unknown"`
	NotChecked      int `json:"notChecked"`
	// Breaks, StillBroken and Fixes count a change report's Changes.
	Breaks            int `json:"breaks,omitempty"`
	StillBroken       int `json:"stillBroken,omitempty"`
	Fixes             int `json:"fixes,omitempty"`
	UndefinedPolicies int `json:"undefinedPolicies"`
}

// IsChange reports whether this is a change report (CheckChange).
func (r *Report) IsChange() bool { return r.Before != "" }

// Failing returns the results that make `credchain check` exit 1: in a change report what the
// change breaks, else every broken one.
func (r *Report) Failing() []Result {
	var out []Result
	for _, res := range r.ExternalSecrets {
		if (r.IsChange() && res.Change == Breaks) || (!r.IsChange() && res.Verdict == Broken) {
			out = append(out, res)
		}
	}
	return out
}

func (r *Report) summarize() {
	s := Summary{ExternalSecrets: len(r.ExternalSecrets), UndefinedPolicies: len(r.UndefinedPolicies)}
	for _, res := range r.ExternalSecrets {
		switch res.Verdict {
		case OK:
			s.OK++
		case Broken:
			s.Broken++
		case Unknown:
			s.Unknown++
		case NotChecked:
			s.NotChecked++
		}
		switch res.Change {
		case Breaks:
			s.Breaks++
		case StillBroken:
			s.StillBroken++
		case Fixes:
			s.Fixes++
		}
	}
	r.Summary = s
}

// String is "namespace/name".
func (o Object) String() string { return o.Namespace + "/" + o.Name }

// String is "Kind namespace/name" or "ClusterSecretStore name".
func (s StoreRef) String() string {
	if s.Namespace == "" {
		return s.Kind + " " + s.Name
	}
	return s.Kind + " " + s.Namespace + "/" + s.Name
}

// String is "mount/name", how `vault read auth/<mount>/role/<name>` names it.
func (r RoleRef) String() string { return r.Mount + "/" + r.Name }

func compareResults(a, b Result) int {
	return cmp.Or(cmp.Compare(a.ExternalSecret.Namespace, b.ExternalSecret.Namespace),
		cmp.Compare(a.ExternalSecret.Name, b.ExternalSecret.Name))
}

// changeOrder puts what a change breaks first, then what was already broken, then the rest.
func changeOrder(r []Result) {
	rank := map[Change]int{Breaks: 0, StillBroken: 1}
	slices.SortStableFunc(r, func(a, b Result) int {
		ra, oka := rank[a.Change]
		rb, okb := rank[b.Change]
		if !oka {
			ra = 2
		}
		if !okb {
			rb = 2
		}
		return cmp.Or(cmp.Compare(ra, rb), compareResults(a, b))
	})
}
