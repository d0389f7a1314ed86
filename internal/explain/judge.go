package explain

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/credchain/credchain/internal/chain"
)

// Judge decides each link's state from the facts, the cause, and the fix. It reads nothing.
func Judge(f *Facts) *Report {
	j := &judge{f: f, r: &Report{Schema: Schema, Target: Object{Kind: f.Target.Kind, Namespace: f.Target.Namespace, Name: f.Target.Name}}}
	if f.Workload != nil {
		j.workload()
	} else {
		j.externalSecretTarget()
	}
	j.r.Vault = VaultStatus{Checked: f.Vault != nil, Address: f.VaultAddr, NotChecked: f.VaultNotChecked}
	j.r.State = OK
	for _, l := range j.r.Links {
		j.r.State = worse(j.r.State, l.State)
	}
	j.r.Cause = cause(j.r.Links)
	if j.r.Cause != nil {
		j.r.Fix = newFixer(f, j.r).build()
	}
	return j.r
}

// judge builds one Report's links, top-down. Single-goroutine.
type judge struct {
	f *Facts
	r *Report
}

func (j *judge) add(l Link) { j.r.Links = append(j.r.Links, l) }

func (j *judge) workload() {
	w := j.f.Workload
	d := &WorkloadDetail{Object: Object{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}, ServiceAccount: w.ServiceAccount}
	for _, s := range j.f.Secrets {
		d.PullSecrets = append(d.PullSecrets, PullSecret{Name: s.Name, From: s.From})
	}
	l := Link{Kind: LinkWorkload, Name: d.Object.String(), State: OK, Workload: d}
	switch {
	case len(j.f.Secrets) == 0:
		l.Evidence = fmt.Sprintf("its pods pull with no imagePullSecrets (neither its own nor ServiceAccount %s's): no chain to explain", w.ServiceAccount)
	case j.f.ServiceAccount != nil:
		l.Evidence = fmt.Sprintf("names no imagePullSecrets: its pods get ServiceAccount %s's", w.ServiceAccount)
	default:
		l.Evidence = fmt.Sprintf("its pods pull with %s (%s.imagePullSecrets)", names(j.f.Secrets), chain.WorkloadKinds[w.Kind])
	}
	if w.Kind == "Pod" && len(w.PullSecrets) > 0 {
		l.Evidence = fmt.Sprintf("pulls with %s (spec.imagePullSecrets, final once admitted)", names(j.f.Secrets))
	}
	j.add(l)
	depth := 1
	if a := j.f.ServiceAccount; a != nil {
		j.account(a, w.Namespace)
		depth = 2
	}
	for _, s := range j.f.Secrets {
		j.secret(s, depth)
	}
}

func names(ss []*SecretFacts) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name
	}
	return strings.Join(out, ", ")
}

func (j *judge) account(a *AccountFacts, ns string) {
	d := &ServiceAccountDetail{Object: Object{Kind: "ServiceAccount", Namespace: ns, Name: a.Name}, Exists: a.Exists, PullSecrets: a.PullSecrets}
	l := Link{Kind: LinkServiceAccount, Name: d.Object.String(), Depth: 1, ServiceAccount: d}
	switch {
	case a.Err != nil:
		l.State, l.Evidence = Unknown, "cannot be read: "+oneLine(a.Err.Error())
	case !a.Exists:
		l.State, l.Evidence = Broken, "does not exist: the pods cannot be created (the API server refuses a pod whose ServiceAccount is missing)"
	case len(a.PullSecrets) == 0:
		l.State, l.Evidence = OK, "exists, with no imagePullSecrets"
	default:
		l.State, l.Evidence = OK, "exists; its imagePullSecrets "+strings.Join(a.PullSecrets, ", ")+" are copied into the pods at admission"
	}
	j.add(l)
}

// secret is one pull secret, then (one deeper) the registries tried with it and its writers.
func (j *judge) secret(s *SecretFacts, depth int) {
	ns := j.f.Target.Namespace
	d := &SecretDetail{Object: Object{Kind: "Secret", Namespace: ns, Name: s.Name}, From: s.From, Exists: s.Secret != nil, FoundBy: s.FoundBy}
	l := Link{Kind: LinkSecret, Name: d.Object.String(), Depth: depth, Secret: d}
	var ev []string
	switch {
	case s.Err != nil:
		l.State = Unknown
		ev = append(ev, "cannot be read: "+oneLine(s.Err.Error()))
	case s.Secret == nil:
		l.State = Broken
		ev = append(ev, "does not exist: the kubelet pulls without it and the registry refuses the pull")
	default:
		sec := s.Secret
		d.Type = string(sec.Type)
		created := sec.CreationTimestamp.UTC()
		d.Created = &created
		l.State = OK
		ev = append(ev, fmt.Sprintf("exists, type %s, %s old", sec.Type, age(j.f.Now.Sub(created))))
		if sec.Type != corev1.SecretTypeDockerConfigJson && sec.Type != corev1.SecretTypeDockercfg {
			l.State = Broken
			ev = append(ev, fmt.Sprintf("the kubelet ignores a pull secret whose type is not %s or %s", chain.SecretTypeDockerConfigJSON, chain.SecretTypeDockercfg))
		}
	}
	if len(s.Writers) > 0 {
		d.WrittenBy = &Object{Kind: KindExternalSecret, Namespace: ns, Name: s.Writers[0]}
		how := "its controller owner"
		if s.FoundBy != "ownerReference" {
			how = "spec.target.name"
		}
		ev = append(ev, fmt.Sprintf("written by ExternalSecret %s (%s)", s.Writers[0], how))
		if len(s.Writers) > 1 {
			ev = append(ev, fmt.Sprintf("also named by ExternalSecret %s: ESO fails all but one writer of a Secret", strings.Join(s.Writers[1:], ", ")))
		}
	} else if s.WritersErr != nil {
		ev = append(ev, "its ExternalSecret cannot be found: "+oneLine(s.WritersErr.Error()))
		l.State = worse(l.State, Unknown)
	} else if j.f.Target.Kind != KindExternalSecret {
		ev = append(ev, "no ExternalSecret in "+ns+" writes it: not from ESO")
	}
	l.Evidence = strings.Join(ev, "; ")
	j.add(l)
	for _, rr := range s.Registries {
		j.registry(rr, depth+1)
	}
	if j.f.Target.Kind == KindExternalSecret {
		return // the target is the writer: it heads the chain
	}
	for _, name := range s.Writers {
		j.externalSecret(name, depth+1)
	}
}

// externalSecretTarget heads the chain with the ExternalSecret: the Secret it writes, then its stores.
func (j *judge) externalSecretTarget() {
	name := j.f.Target.Name
	j.esLink(name, 0)
	for _, s := range j.f.Secrets {
		j.secret(s, 1)
	}
	if ef := j.f.ExternalSecrets[name]; ef.ES != nil && !ef.ES.Writes() {
		j.r.Links[0].Evidence += "; it writes no Secret (creationPolicy None, or a manifest target)"
	}
	j.stores(name, 1)
}

func (j *judge) externalSecret(name string, depth int) {
	j.esLink(name, depth)
	j.stores(name, depth+1)
}

func (j *judge) stores(esName string, depth int) {
	ef := j.f.ExternalSecrets[esName]
	if ef == nil || ef.ES == nil {
		return
	}
	for _, key := range chain.ItemStores(ef.ES) {
		j.store(ef.ES, key, depth)
	}
}

// esLink is the ExternalSecret as ESO reports it: its Ready condition, last sync, latest warning.
func (j *judge) esLink(name string, depth int) {
	ns := j.f.Target.Namespace
	ef := j.f.ExternalSecrets[name]
	d := &ExternalSecretDetail{Object: Object{Kind: KindExternalSecret, Namespace: ns, Name: name}}
	l := Link{Kind: LinkExternalSecret, Name: d.Object.String(), Depth: depth, ExternalSecret: d}
	switch {
	case ef == nil || (ef.ES == nil && ef.Err == nil):
		l.State, l.Evidence = Broken, "does not exist: nothing writes the Secret"
	case ef.ES == nil:
		l.State, l.Evidence = Unknown, "cannot be read: "+oneLine(ef.Err.Error())
	default:
		l.State, l.Evidence = j.esStatus(ef, d)
	}
	j.add(l)
}

func (j *judge) esStatus(ef *ExternalSecretFacts, d *ExternalSecretDetail) (State, string) {
	es := ef.ES
	var ev []string
	state := Unknown
	if c := es.Ready(); c == nil {
		ev = append(ev, "no Ready condition: ESO has not reconciled it (is ESO running, and does it watch "+es.Namespace+"?)")
	} else {
		d.Ready, d.Reason, d.Message = c.Status, c.Reason, oneLine(c.Message)
		s := "Ready=" + c.Status
		if c.Reason != "" {
			s += " " + c.Reason
		}
		if !c.LastTransitionTime.IsZero() {
			t := c.LastTransitionTime.UTC()
			d.Since = &t
			s += " since " + stamp(t)
		}
		if c.Message != "" {
			s += ": " + d.Message
		}
		ev = append(ev, s)
		state = map[string]State{"True": OK, "False": Broken}[c.Status]
		if state == "" {
			state = Unknown
		}
	}
	if t := es.Status.RefreshTime; !t.IsZero() {
		u := t.UTC()
		d.LastSync = &u
		ev = append(ev, "last sync "+stamp(u))
	} else {
		ev = append(ev, "never synced")
	}
	if es.DeletionTimestamp != nil {
		state = Broken
		ev = append(ev, "being deleted since "+stamp(es.DeletionTimestamp.UTC()))
	}
	if w := ef.Warning; w != nil {
		at := chain.EventTime(w).UTC()
		d.Warning = &Event{Reason: w.Reason, Message: oneLine(w.Message), At: at, Count: w.Count}
		s := fmt.Sprintf("ESO's latest warning (%s, %s", w.Reason, stamp(at))
		if d.LastSync != nil && at.Before(*d.LastSync) {
			s += ", before the last sync"
		}
		ev = append(ev, s+"): "+d.Warning.Message)
	} else if ef.WarningErr != nil {
		ev = append(ev, "ESO's events cannot be read: "+oneLine(ef.WarningErr.Error()))
	}
	return state, strings.Join(ev, "; ")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// age is a duration as a person says it: 45s, 12m, 5h, 3d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// maxMessage bounds a message quoted from the cluster (an ESO condition, an event): enough for
// Vault's error, short enough for one line.
const maxMessage = 400

// oneLine folds white space (Vault's errors span lines) and bounds the length; Write escapes
// what control characters are left.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxMessage {
		s = string(r[:maxMessage]) + "…"
	}
	return s
}

func quoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// registry is one registry of a pull secret's docker config, as RegistryChecker tried it.
func (j *judge) registry(rr RegistryResult, depth int) {
	d := &RegistryDetail{Registry: rr.Registry, URL: rr.URL, Username: rr.Username, Auth: rr.Auth, Status: rr.Status}
	l := Link{Kind: LinkRegistry, Name: "registry " + rr.Registry, Depth: depth, Registry: d}
	who := "the credential"
	if rr.Username != "" {
		who = "the credential of user " + rr.Username
	}
	switch {
	case rr.Err != nil:
		l.State, l.Evidence = Unknown, "cannot be tried: "+oneLine(rr.Err.Error())
	case rr.Auth == "none":
		l.State, l.Evidence = OK, fmt.Sprintf("GET %s answers 200 without credentials: the registry asks for none", rr.URL)
	case rr.Status == 200:
		l.State, l.Evidence = OK, fmt.Sprintf("GET %s with %s (%s auth): 200, the registry accepts it", rr.URL, who, rr.Auth)
	case rr.Status == 401 || rr.Status == 403:
		l.State, l.Evidence = Broken, fmt.Sprintf("GET %s with %s (%s auth): %d, the registry refuses it", rr.URL, who, rr.Auth, rr.Status)
	default:
		l.State, l.Evidence = Unknown, fmt.Sprintf("GET %s with %s (%s auth): HTTP %d", rr.URL, who, rr.Auth, rr.Status)
	}
	j.add(l)
}
