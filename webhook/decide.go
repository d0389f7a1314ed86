package webhook

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
)

// Enforcement is a namespace's enforcement mode, from the label credchain.io/enforcement.
type Enforcement string

const (
	// EnforcementEnforce denies workloads whose pull secrets are not backed by a synced ExternalSecret.
	EnforcementEnforce Enforcement = "enforce"
	// EnforcementWarn admits them with an admission warning per problem (kubectl prints those).
	EnforcementWarn Enforcement = "warn"
	// EnforcementOff skips the check.
	EnforcementOff Enforcement = "off"
)

// EnforcementLabel is the namespace label that overrides --default-enforcement.
const EnforcementLabel = "credchain.io/enforcement"

// UnmanagedPolicy says what to do with a pull secret no ExternalSecret writes.
type UnmanagedPolicy string

const (
	UnmanagedDeny  UnmanagedPolicy = "deny"
	UnmanagedWarn  UnmanagedPolicy = "warn"
	UnmanagedAllow UnmanagedPolicy = "allow"
)

// Reason is the machine-readable outcome of one check, used as a metric label. The first problem
// found in a review gives the review its reason.
type Reason string

const (
	ReasonSynced        Reason = "synced"
	ReasonStale         Reason = "stale"
	ReasonNotSynced     Reason = "not_synced"
	ReasonPending       Reason = "pending"
	ReasonPendingGrace  Reason = "pending_in_grace"
	ReasonUnmanaged     Reason = "unmanaged"
	ReasonAmbiguous     Reason = "ambiguous"
	ReasonNoPullSecrets Reason = "no_pull_secrets"
	ReasonUnchanged     Reason = "template_unchanged"
	ReasonExempt        Reason = "exempt"
	ReasonOff           Reason = "enforcement_off"
	ReasonNotChecked    Reason = "not_checked"
	ReasonBadRequest    Reason = "bad_request"
	ReasonNotReady      Reason = "caches_not_synced"
	ReasonControlled    Reason = "created_by_controller"
	ReasonNotBackedYet  Reason = "not_backed_yet"
	ReasonFailingGrace  Reason = "failing_in_grace"
	ReasonNotPullable   Reason = "not_docker_secret"
	ReasonNeverWritten  Reason = "never_written"
	ReasonSuspended     Reason = "suspended"
	ReasonInvalidName   Reason = "invalid_name"
)

// maxSecretName is the longest name a Secret can have (a DNS subdomain).
const maxSecretName = 253

// Reasons of ESO's Ready condition (v0.16.2 apis/externalsecrets/v1) that come with Status=True
// although no Secret exists.
const (
	ReasonESOSecretDeleted = "SecretDeleted"
	ReasonESOSecretMissing = "SecretMissing"
)

// Lookup is the decision's read-only view of the cluster. The production implementation reads
// informer indexers (zero API calls); tests may use a fake.
type Lookup interface {
	// ExternalSecretsFor returns the ExternalSecrets in namespace that write secret. The result must
	// not be modified.
	ExternalSecretsFor(namespace, secret string) []*ExternalSecret
	// ServiceAccountPullSecrets returns the imagePullSecrets of a ServiceAccount; found is false
	// when it does not exist (yet), which is not an error.
	ServiceAccountPullSecrets(namespace, name string) (secrets []string, found bool)
	// LatestWarning returns ESO's newest Warning event on an ExternalSecret, e.g. reason
	// "UpdateFailed" with Vault's "Code: 403 ... permission denied", which ESO's status omits.
	LatestWarning(namespace, externalSecret string) (reason, message string, found bool)
}

// Policy is the decision's configuration, a subset of Config.
type Policy struct {
	Unmanaged UnmanagedPolicy
	// GracePeriod is how long an ExternalSecret without a Ready condition is given before it denies.
	GracePeriod time.Duration
	// StaleFactor: a Ready ExternalSecret whose refreshTime is older than StaleFactor×refreshInterval
	// is admitted with a warning; zero or negative disables the warning.
	StaleFactor int
	// FailingGrace: a Ready=False ExternalSecret whose last good sync (refreshTime) is younger than
	// this is admitted with a warning, because ESO keeps the last Secret it wrote. Zero denies at once.
	FailingGrace time.Duration
	// NonDockerSecrets is what to do with a pull secret whose ExternalSecret writes a Secret of a type
	// the kubelet ignores for pulls (Opaque, say): UnmanagedWarn (the default) or UnmanagedDeny.
	NonDockerSecrets UnmanagedPolicy
}

// Decision is the outcome of a review: Denials non-empty means denied (in enforce mode).
type Decision struct {
	Reason   Reason
	Denials  field.ErrorList
	Warnings []string
}

// Decider decides whether a pod's pull secrets are backed by synced ExternalSecrets.
type Decider struct {
	Lookup Lookup
	Policy Policy
}

// Decide checks every pull secret the pods will carry as a change that keeps them all: each one
// must already be backed. DecideChange is the decision for an admission review.
func (d *Decider) Decide(namespace string, refs PodRefs, now time.Time) Decision {
	return d.DecideChange(namespace, refs, &refs, now)
}

// DecideChange checks every pull secret the pods will carry: the pod spec's own imagePullSecrets
// and, for a pod template, those inherited from its ServiceAccount (which Kubernetes copies into a
// pod that names none). All problems are reported at once so one `kubectl apply` shows everything
// to fix.
//
// old is the object before an UPDATE, nil for a CREATE. A pull secret that no ExternalSecret writes
// and that old did not use yet is admitted with a warning (see unmanaged): Helm, kustomize and
// `kubectl apply -f dir/` all write the Deployment before its ExternalSecret, and a denial there
// never converges. The next change of the pod template enforces it as usual.
func (d *Decider) DecideChange(namespace string, refs PodRefs, old *PodRefs, now time.Time) Decision {
	dec := Decision{Reason: ReasonNoPullSecrets}
	c := change{d: d, ns: namespace, create: old == nil}
	if old != nil {
		c.old = *old // a copy: a pointer kept in c would move the caller's refs to the heap
	}
	names, inherited := d.pullSecrets(namespace, refs)
	for i, name := range names {
		r := ref{spec: refs.SpecPath, index: i}
		if inherited {
			r.serviceAccount = refs.ServiceAccountName
		}
		switch {
		case name == "":
			// the kubelet ignores an empty reference; nothing can be pulled with it
		case len(name) > maxSecretName:
			// The API server does not validate references: a multi-MB name would make a multi-MB
			// denial. No Secret can have it, so nothing can be pulled with it.
			dec.deny(ReasonInvalidName, field.Invalid(r.path(), oneLine(name, 63),
				fmt.Sprintf("not a valid Secret name (%d bytes, at most %d)", len(name), maxSecretName)))
		default:
			d.check(&dec, namespace, name, r, &c, now)
		}
	}
	return dec
}

// change answers whether a pull secret is new in this review. It is consulted only for a secret no
// ExternalSecret writes, so the healthy path never computes the old object's pull secrets.
type change struct {
	d      *Decider
	ns     string
	create bool     // a CREATE: every pull secret is new
	old    PodRefs  // the object before an UPDATE
	prev   []string // old's pull secrets, computed on first use
	done   bool
}

func (c *change) isNew(secret string) bool {
	if c.create {
		return true
	}
	if !c.done {
		c.prev, _ = c.d.pullSecrets(c.ns, c.old)
		c.done = true
	}
	return !slices.Contains(c.prev, secret)
}

// pullSecrets is the list of pull secrets pods made from refs carry, and whether they are inherited:
// their own, else, for a template, their ServiceAccount's as the cache holds it now. The
// ServiceAccount admission plugin copies the account's pull secrets only into pods that name none,
// and it has already run for a Pod under review: only a template inherits them.
func (d *Decider) pullSecrets(ns string, refs PodRefs) (names []string, inherited bool) {
	return chain.PullSecrets(refs.ImagePullSecrets, refs.InheritsServiceAccount(), func() []string {
		s, _ := d.Lookup.ServiceAccountPullSecrets(ns, refs.ServiceAccountName)
		return s
	})
}

// ref says where a pull secret came from. The field path and wording are only built when a problem
// is reported, so a healthy review allocates nothing for them.
type ref struct {
	spec           string
	index          int
	serviceAccount string // set when inherited from the ServiceAccount
}

func (r ref) path() *field.Path {
	if r.serviceAccount != "" {
		return field.NewPath(r.spec).Child("serviceAccountName")
	}
	return field.NewPath(r.spec).Child("imagePullSecrets").Index(r.index)
}

func (r ref) via() string {
	if r.serviceAccount == "" {
		return ""
	}
	return fmt.Sprintf("serviceaccount %q imagePullSecrets[%d] (inherited by pods that name no pull secret): ", r.serviceAccount, r.index)
}

func (d *Decider) check(dec *Decision, ns, secret string, r ref, c *change, now time.Time) {
	claims := d.Lookup.ExternalSecretsFor(ns, secret)
	writers := claims
	for _, es := range claims {
		if !es.Writes() { // rare: filter, allocating only then
			writers = writing(claims)
			break
		}
	}
	if len(writers) == 0 {
		d.unmanaged(dec, ns, secret, r, claims, c.isNew(secret))
		return
	}
	if len(writers) > 1 {
		if msg := conflict(writers); msg != "" {
			dec.deny(ReasonAmbiguous, field.Forbidden(r.path(), r.via()+fmt.Sprintf("secret %q %s", secret, msg)))
			return
		}
	}
	for _, es := range writers {
		d.checkOne(dec, ns, secret, es, r, now)
	}
}

// conflict explains why several ExternalSecrets cannot all write one Secret, or returns "" when
// they can. ESO v0.16.2 refuses to write a Secret another ExternalSecret controls ("target is owned
// by another ExternalSecret"), so an Owner (the default policy) tolerates no other writer; two that
// create without owning (Orphan) do overwrite each other; Merge writers may share a Secret with at
// most one Orphan creator, and each is then checked on its own.
func conflict(writers []*ExternalSecret) string {
	var owners, orphans []string
	names := make([]string, len(writers))
	for i, es := range writers {
		names[i] = es.Namespace + "/" + es.Name
		switch {
		case es.Owns():
			owners = append(owners, names[i])
		case es.Spec.Target.CreationPolicy == chain.CreationOrphan:
			orphans = append(orphans, names[i])
		}
	}
	slices.Sort(names) // the index returns them in map order
	slices.Sort(owners)
	claimed := fmt.Sprintf("is claimed by %d ExternalSecrets (%s)", len(writers), strings.Join(names, ", "))
	switch {
	case len(owners) > 0:
		return fmt.Sprintf("%s, and %s creationPolicy Owner: ESO lets only the ExternalSecret that controls the Secret write it and fails the others with \"target is owned by another ExternalSecret\"; keep one writer (delete the others or point them at their own Secrets)",
			claimed, ownersPhrase(owners))
	case len(orphans) > 1:
		return claimed + ", and " + strconv.Itoa(len(orphans)) + " of them create it with creationPolicy Orphan, so each sync overwrites the other's data; keep one creator and make the others creationPolicy Merge"
	}
	return ""
}

func ownersPhrase(owners []string) string {
	if len(owners) == 1 {
		return owners[0] + " has"
	}
	return strings.Join(owners, ", ") + " have"
}

// writing returns the claims that write their Secret (see ExternalSecret.Writes).
func writing(claims []*ExternalSecret) []*ExternalSecret {
	out := make([]*ExternalSecret, 0, len(claims))
	for _, es := range claims {
		if es.Writes() {
			out = append(out, es)
		}
	}
	return out
}

// checkOne checks one ExternalSecret that writes secret: ESO's Ready verdict, and how fresh it is.
func (d *Decider) checkOne(dec *Decision, ns, secret string, es *ExternalSecret, r ref, now time.Time) {
	ready := es.Ready()
	switch {
	case ready == nil || ready.Status == "Unknown":
		d.noVerdict(dec, ns, secret, es, ready, r, now)
	case ready.Status != "True":
		d.notReady(dec, ns, secret, es, ready, r, now)
	case ready.Reason == ReasonESOSecretDeleted || ready.Reason == ReasonESOSecretMissing:
		d.readyWithoutSecret(dec, ns, secret, es, ready, r, now)
	case es.Status.Binding.Name == "":
		// ESO sets status.binding whenever it writes the Secret; Ready=True without it is a first
		// sync that returned no data under deletionPolicy Retain: nothing was ever written.
		dec.warn(ReasonNeverWritten, fmt.Sprintf(
			"%s: %ssecret %q comes from ExternalSecret %s/%s, which reports Ready=True (%s) but has never written a Secret (status.binding is empty: the provider returned no data); pods may fail to pull: kubectl describe externalsecret %s -n %s",
			r.path(), r.via(), secret, ns, es.Name, ready.Reason, es.Name, ns))
	default:
		d.synced(dec, ns, secret, es, r, now)
	}
}

// noVerdict handles an ExternalSecret ESO has not judged yet.
func (d *Decider) noVerdict(dec *Decision, ns, secret string, es *ExternalSecret, ready *chain.ExternalSecretCondition, r ref, now time.Time) {
	// No verdict from ESO yet (no condition, or Unknown while a sync is in flight): give it the
	// grace period, counted from creation (or from when the condition became Unknown).
	path, via := r.path(), r.via()
	age := now.Sub(es.CreationTimestamp.Time)
	if ready != nil && !ready.LastTransitionTime.IsZero() {
		age = now.Sub(ready.LastTransitionTime.Time)
	}
	if age < d.Policy.GracePeriod {
		dec.warn(ReasonPendingGrace, fmt.Sprintf(
			"%s: %ssecret %q comes from ExternalSecret %s/%s, which has not synced yet (no Ready verdict for %s, grace period %s); pods may fail to pull until it does",
			path, via, secret, ns, es.Name, age.Round(time.Second), d.Policy.GracePeriod))
		return
	}
	state := "has reported no Ready condition since it was created at " + es.CreationTimestamp.UTC().Format(time.RFC3339)
	if ready != nil {
		state = "has been Ready=Unknown since " + now.Add(-age).UTC().Format(time.RFC3339)
	}
	dec.deny(ReasonPending, field.Forbidden(path, fmt.Sprintf(
		"%ssecret %q comes from ExternalSecret %s/%s, which %s (grace period %s); check that External Secrets Operator is running and the store %q is valid: kubectl describe externalsecret %s -n %s",
		via, secret, ns, es.Name, state, d.Policy.GracePeriod, es.Spec.SecretStoreRef.Name, es.Name, ns)))
}

// notReady handles Ready=False: a young ExternalSecret still being validated and one whose last
// good sync is recent are warned about; any other is denied.
func (d *Decider) notReady(dec *Decision, ns, secret string, es *ExternalSecret, ready *chain.ExternalSecretCondition, r ref, now time.Time) {
	switch {
	case es.NeverSynced() && now.Sub(es.CreationTimestamp.Time) < d.Policy.GracePeriod:
		// ESO reports Ready=False while its store is still being validated (the flood gate, on by
		// default): a young ExternalSecret that never synced has no verdict yet.
		age := now.Sub(es.CreationTimestamp.Time)
		dec.warn(ReasonPendingGrace, fmt.Sprintf(
			"%s: %ssecret %q comes from ExternalSecret %s/%s, which has not synced yet (Ready=%s, %s, %s after creation, grace period %s); pods may fail to pull until it does",
			r.path(), r.via(), secret, ns, es.Name, ready.Status, ready.Reason, age.Round(time.Second), d.Policy.GracePeriod))
	case d.Policy.FailingGrace > 0 && !es.Status.RefreshTime.IsZero() && now.Sub(es.Status.RefreshTime.Time) < d.Policy.FailingGrace:
		// ESO keeps the Secret it last wrote when a refresh fails: within --failing-grace of that
		// sync the credential is probably still good.
		dec.warn(ReasonFailingGrace, fmt.Sprintf(
			"%s: %ssecret %q comes from ExternalSecret %s/%s, which is failing (Ready=%s, %s) but last synced at %s, within --failing-grace %s; the Secret still holds that credential until it expires: kubectl describe externalsecret %s -n %s",
			r.path(), r.via(), secret, ns, es.Name, ready.Status, ready.Reason, es.Status.RefreshTime.UTC().Format(time.RFC3339), d.Policy.FailingGrace, es.Name, ns))
	default:
		path, via := r.path(), r.via()
		detail := "Ready=" + ready.Status
		if ready.Reason != "" {
			detail += ", " + ready.Reason
		}
		if ready.Message != "" {
			detail += ": " + oneLine(ready.Message, 300)
		}
		since := ""
		if !ready.LastTransitionTime.IsZero() {
			since = " since " + ready.LastTransitionTime.UTC().Format(time.RFC3339)
		}
		event := ""
		if reason, msg, ok := d.Lookup.LatestWarning(ns, es.Name); ok {
			event = fmt.Sprintf("; ESO's last warning (%s): %s", reason, oneLine(msg, 400))
		}
		dec.deny(ReasonNotSynced, field.Forbidden(path, fmt.Sprintf(
			"%ssecret %q comes from ExternalSecret %s/%s, which is not synced (%s)%s%s; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret %s -n %s force-sync=$(date +%%s) --overwrite",
			via, secret, ns, es.Name, detail, since, event, es.Name, ns)))
	}
}

// readyWithoutSecret handles Ready=True with a reason that says there is no Secret.
func (d *Decider) readyWithoutSecret(dec *Decision, ns, secret string, es *ExternalSecret, ready *chain.ExternalSecretCondition, r ref, now time.Time) {
	// Ready=True, yet there is no Secret: the provider returned nothing and deletionPolicy
	// Delete removed it, or creationPolicy Merge found no Secret to merge into.
	path, via := r.path(), r.via()
	why := "the provider returned no data and its deletionPolicy Delete removed the Secret"
	if ready.Reason == ReasonESOSecretMissing {
		why = "its creationPolicy Merge needs an existing Secret to merge into, and there is none"
	}
	dec.deny(ReasonNotSynced, field.Forbidden(path, fmt.Sprintf(
		"%ssecret %q comes from ExternalSecret %s/%s, which reports Ready=True but %s (%s: %s); pods would fail to pull: kubectl describe externalsecret %s -n %s",
		via, secret, ns, es.Name, why, ready.Reason, oneLine(ready.Message, 300), es.Name, ns)))
}

// synced handles a Ready ExternalSecret: its Secret must be of a pullable type, and fresh.
func (d *Decider) synced(dec *Decision, ns, secret string, es *ExternalSecret, r ref, now time.Time) {
	if t := es.SecretType(); t != "" && t != chain.SecretTypeDockerConfigJSON && t != chain.SecretTypeDockercfg {
		d.notPullable(dec, ns, secret, es, t, r)
		return
	}
	if dec.Reason == ReasonNoPullSecrets {
		dec.Reason = ReasonSynced
	}
	interval := es.RefreshPeriod()
	if !es.Periodic() || interval <= 0 || es.Status.RefreshTime.IsZero() || d.Policy.StaleFactor <= 0 {
		return
	}
	if age := now.Sub(es.Status.RefreshTime.Time); age > time.Duration(d.Policy.StaleFactor)*interval {
		path, via := r.path(), r.via()
		dec.warn(ReasonStale, fmt.Sprintf(
			"%s: %ssecret %q from ExternalSecret %s/%s was last refreshed at %s, more than %d refresh intervals (%s) ago; the credential may be stale",
			path, via, secret, ns, es.Name, es.Status.RefreshTime.UTC().Format(time.RFC3339), d.Policy.StaleFactor, interval))
	}
}

// notPullable reports a Secret the kubelet will not read as registry credentials.
func (d *Decider) notPullable(dec *Decision, ns, secret string, es *ExternalSecret, typ string, r ref) {
	msg := fmt.Sprintf("%ssecret %q comes from ExternalSecret %s/%s, which writes a Secret of type %s; the kubelet only pulls with %s or %s Secrets: set spec.target.template.type: %s",
		r.via(), secret, ns, es.Name, typ, chain.SecretTypeDockerConfigJSON, chain.SecretTypeDockercfg, chain.SecretTypeDockerConfigJSON)
	if d.Policy.NonDockerSecrets == UnmanagedDeny {
		dec.deny(ReasonNotPullable, field.Forbidden(r.path(), msg))
		return
	}
	dec.warn(ReasonNotPullable, r.path().String()+": "+msg)
}

// unmanaged handles a Secret no ExternalSecret writes; claims are those that name it but do not
// write it (creationPolicy None, being deleted, a non-Secret target). isNew says the object did not
// use this secret before (a CREATE, or an UPDATE that adds it).
//
// What is decided when, under --unmanaged-secrets=deny: a new reference is admitted with a warning
// (its ExternalSecret is often applied right after the workload); any later change of the pod
// template that keeps it is denied unless an ExternalSecret writes it by then. warn always warns,
// allow always allows.
func (d *Decider) unmanaged(dec *Decision, ns, secret string, r ref, claims []*ExternalSecret, isNew bool) {
	if d.Policy.Unmanaged == UnmanagedAllow {
		if dec.Reason == ReasonNoPullSecrets {
			dec.Reason = ReasonSynced
		}
		return
	}
	if isNew && d.Policy.Unmanaged == UnmanagedDeny {
		dec.warn(ReasonNotBackedYet, fmt.Sprintf(
			"%s: %ssecret %q is not written by any ExternalSecret in namespace %s yet; admitted because this change adds it, but the next change of the pod template is denied unless an ExternalSecret with spec.target.name: %s writes it",
			r.path(), r.via(), secret, ns, secret))
		return
	}
	path, via := r.path(), r.via()
	var notes []string
	for _, es := range claims {
		switch {
		case es.DeletionTimestamp != nil:
			notes = append(notes, fmt.Sprintf("ExternalSecret %s/%s is being deleted", es.Namespace, es.Name))
		case es.Spec.Target.Manifest != nil:
			notes = append(notes, fmt.Sprintf("ExternalSecret %s/%s writes a %s, not a Secret", es.Namespace, es.Name, es.Spec.Target.Manifest.Kind))
		default:
			notes = append(notes, fmt.Sprintf("ExternalSecret %s/%s has creationPolicy None", es.Namespace, es.Name))
		}
	}
	slices.Sort(notes)
	note := ""
	if len(notes) > 0 {
		note = " (" + strings.Join(notes, "; ") + ")"
	}
	msg := fmt.Sprintf("%ssecret %q is not written by any ExternalSecret in namespace %s%s; pull secrets must be backed by a synced ExternalSecret: create one with spec.target.name: %s, or label the namespace %s=warn",
		via, secret, ns, note, secret, EnforcementLabel)
	switch d.Policy.Unmanaged {
	case UnmanagedWarn:
		dec.warn(ReasonUnmanaged, path.String()+": "+msg)
	default:
		dec.deny(ReasonUnmanaged, field.Forbidden(path, msg))
	}
}

func (dec *Decision) deny(r Reason, err *field.Error) {
	if len(dec.Denials) == 0 {
		dec.Reason = r
	}
	dec.Denials = append(dec.Denials, err)
}

func (dec *Decision) warn(r Reason, msg string) {
	if len(dec.Denials) == 0 && len(dec.Warnings) == 0 {
		dec.Reason = r
	}
	dec.Warnings = append(dec.Warnings, msg)
}

// Message renders the denials as one message for kubectl: a single error as is, several as a list.
func (dec *Decision) Message(kind, namespace, name string) string {
	var b strings.Builder
	obj := strings.ToLower(kind)
	if name != "" {
		obj += " " + namespace + "/" + name
	} else {
		obj += " in namespace " + namespace
	}
	b.WriteString(obj)
	if len(dec.Denials) == 1 {
		b.WriteString(": a pull secret is not backed by a synced ExternalSecret: ")
		b.WriteString(dec.Denials[0].Error())
	} else {
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(len(dec.Denials)))
		b.WriteString(" pull secrets are not backed by a synced ExternalSecret: ")
		for i, e := range dec.Denials {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(e.Error())
		}
	}
	b.WriteString(ExplainHint(kind, namespace, name))
	return b.String()
}

// ExplainHint ends a denial (and the guard's events) with the command that walks the whole chain
// link by link, Vault included: what the webhook cannot see from its caches (which policy, which
// rule). Empty for an object without a name yet (generateName), which explain cannot address.
func ExplainHint(kind, namespace, name string) string {
	if name == "" {
		return ""
	}
	return "; the whole chain: " + events.ExplainCommand(events.ObjectRef{Kind: kind, Namespace: namespace, Name: name})
}

// oneLine flattens a provider error (often multi-line, with Vault's "* permission denied" bullets)
// into one line and trims it to max bytes so a denial stays readable.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
