package explain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
)

// store is one store of es, then (one deeper) the Vault half behind it.
func (j *judge) store(es *chain.ExternalSecret, key chain.StoreKey, depth int) {
	ref := check.StoreRef{Kind: key.Kind, Namespace: key.Namespace, Name: key.Name}
	sf := j.f.Stores[key]
	d := &StoreDetail{StoreRef: ref}
	l := Link{Kind: LinkStore, Name: ref.String(), Depth: depth, Store: d}
	switch {
	case sf == nil || (sf.Store == nil && sf.Err == nil):
		l.State = Broken
		l.Evidence = "does not exist: ESO cannot fetch " + strings.Join(chain.ItemsOn(es, key), ", ")
	case sf.Store == nil:
		l.State, l.Evidence = Unknown, "cannot be read: "+oneLine(sf.Err.Error())
	default:
		d.Exists = true
		l.State, l.Evidence = storeStatus(sf.Store, d, es.Namespace, j.f.ESOAccount)
	}
	j.add(l)
	if sf != nil && sf.Store != nil && sf.Store.Vault() != nil {
		j.vault(es, sf.Store, depth+1)
	}
}

func storeStatus(s *chain.Store, d *StoreDetail, esNamespace string, eso chain.ServiceAccountName) (State, string) {
	d.Provider = strings.Join(s.Spec.Provider.Names, ",")
	state, ev := Unknown, []string{"no Ready condition: ESO has not validated it"}
	for _, c := range s.Status.Conditions {
		if c.Type != "Ready" {
			continue
		}
		d.Ready, d.Reason, d.Message = c.Status, c.Reason, oneLine(c.Message)
		st := "Ready=" + c.Status
		if c.Reason != "" {
			st += " " + c.Reason
		}
		if c.Status != "True" && c.Message != "" {
			st += ": " + d.Message
		}
		ev = []string{st}
		state = map[string]State{"True": OK, "False": Broken}[c.Status]
		if state == "" {
			state = Unknown
		}
	}
	v := s.Vault()
	if v == nil {
		return worse(state, Unknown), strings.Join(append(ev, "provider "+d.Provider+": not checked (only Vault is)"), "; ")
	}
	d.Server, d.VaultNamespace, d.AuthMethod = v.Server, "(root)", chain.LoginMethod(s)
	if v.Namespace != nil && *v.Namespace != "" {
		d.VaultNamespace = *v.Namespace
	}
	ev = append(ev, "Vault "+v.Server, "namespace "+d.VaultNamespace)
	if ref, ok := s.KubernetesRole(); ok {
		d.AuthMount, d.Role = ref.Mount, ref.Name
		sa := "from the token in auth.kubernetes.secretRef"
		if acc, known := chain.LoginAccount(s, esNamespace, eso); known {
			d.ServiceAccount, sa = acc.String(), acc.String()
		}
		ev = append(ev, fmt.Sprintf("Kubernetes auth at mount %s as role %s, ServiceAccount %s", ref.Mount, ref.Name, sa))
	} else {
		ev = append(ev, "auth "+cmpOr(d.AuthMethod, "none"))
	}
	return state, strings.Join(ev, "; ")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// vault is the Vault half behind one store: the role, its policies, and each request ESO makes
// through the store, as check evaluated them.
func (j *judge) vault(es *chain.ExternalSecret, s *chain.Store, depth int) {
	if j.f.Vault == nil {
		j.add(Link{Kind: LinkVault, Name: "Vault", Depth: depth, State: Unknown, Evidence: "Vault not checked: " + j.f.VaultNotChecked})
		return
	}
	res := j.f.Results[es.Name]
	ref, ok := s.KubernetesRole()
	if res == nil || !ok {
		why := "ESO does not log in with Kubernetes auth"
		if res != nil {
			why = firstMessage(res, check.CodeAuthMethod, check.CodeVaultNamespace)
		}
		j.add(Link{Kind: LinkVault, Name: "Vault " + s.Vault().Server, Depth: depth, State: Unknown, Evidence: "not checked: " + why})
		return
	}
	reqs := requestsVia(res, es, s)
	role := j.f.Vault.Roles[ref]
	j.role(res, ref, role, reqs, depth)
	if role == nil {
		return
	}
	for _, name := range role.TokenPolicyNames() {
		j.policy(name, ref, reqs, depth+1)
	}
	for i := range reqs {
		if reqs[i].Kind != chain.RequestLogin {
			j.request(res, &reqs[i], depth+1)
		}
	}
}

// requestsVia are res's requests that go through store s.
func requestsVia(res *check.Result, es *chain.ExternalSecret, s *chain.Store) []check.Request {
	own := chain.StoreKeyOf(es.Namespace, es.Spec.SecretStoreRef) == s.Key()
	var out []check.Request
	for _, r := range res.Requests {
		if (r.Store == nil && own) || (r.Store != nil && r.Store.Kind == s.Kind && r.Store.Namespace == s.Namespace && r.Store.Name == s.Name) {
			out = append(out, r)
		}
	}
	return out
}

// loginCodes are the reasons the login (the role's link) fails for.
var loginCodes = []string{check.CodeMountMissing, check.CodeRoleMissing, check.CodeRoleUnknown, check.CodeNotBound, check.CodeAccountUnknown}

func (j *judge) role(res *check.Result, ref chain.RoleRef, role *check.Role, reqs []check.Request, depth int) {
	d := &RoleDetail{RoleRef: check.RoleRef{Mount: ref.Mount, Name: ref.Name}, Exists: role != nil}
	if res.ServiceAccount != nil {
		d.LoginAs = res.ServiceAccount.String()
	}
	l := Link{Kind: LinkRole, Name: "Vault role " + ref.Mount + "/" + ref.Name, Depth: depth, State: OK, Role: d}
	login := slices.IndexFunc(reqs, func(r check.Request) bool { return r.Kind == chain.RequestLogin })
	if login >= 0 {
		l.State = requestState(reqs[login].Verdict)
	}
	if role != nil {
		d.Source = role.Source
		d.BoundServiceAccountNames, d.BoundServiceAccountNamespaces = role.BoundServiceAccountNames, role.BoundServiceAccountNamespaces
		d.TokenPolicies = role.TokenPolicyNames()
	}
	switch msg := loginMessage(res, ref); {
	case l.State != OK && msg != "":
		l.Evidence = msg
	case role == nil:
		l.Evidence = "does not exist"
	default:
		l.Evidence = fmt.Sprintf("exists; binds ServiceAccount %s (bound_service_account_names %s, bound_service_account_namespaces %s); token policies %s",
			cmpOr(d.LoginAs, "?"), quoted(d.BoundServiceAccountNames), quoted(d.BoundServiceAccountNamespaces), strings.Join(d.TokenPolicies, ", "))
	}
	j.add(l)
}

// loginMessage is check's reason for the login through ref failing, "" when there is none.
func loginMessage(res *check.Result, ref chain.RoleRef) string {
	mount := "auth mount " + strconv.Quote(ref.Mount)
	for _, r := range res.Reasons {
		if slices.Contains(loginCodes, r.Code) && strings.Contains(r.Message, mount) {
			return r.Message
		}
	}
	return ""
}

func firstMessage(res *check.Result, codes ...string) string {
	for _, r := range res.Reasons {
		if slices.Contains(codes, r.Code) {
			return r.Message
		}
	}
	return "not evaluated"
}

// policy is one of the role's token policies: whether it exists and which requests it decides.
// A missing one is broken when a request ESO makes is granted by no rule (what the missing
// policy may have granted); else Vault ignoring the name breaks nothing.
func (j *judge) policy(name string, ref chain.RoleRef, reqs []check.Request, depth int) {
	exists := name == "root" || j.f.Vault.Policies[name] != nil
	d := &PolicyDetail{Name: name, Exists: exists}
	for _, r := range reqs {
		if n := requestName(&r); r.Rule != nil && !slices.Contains(d.Decides, n) &&
			slices.ContainsFunc(r.Rule.Sources, func(s check.RuleSource) bool { return s.Policy == name }) {
			d.Decides = append(d.Decides, n)
		}
	}
	l := Link{Kind: LinkPolicy, Name: "policy " + name, Depth: depth, State: OK, Policy: d}
	switch {
	case exists && len(d.Decides) > 0:
		l.Evidence = "exists; its rules decide " + strings.Join(d.Decides, ", ")
	case exists && !slices.ContainsFunc(reqs, func(r check.Request) bool { return r.Kind != chain.RequestLogin && r.Verdict != check.Skipped }):
		l.Evidence = "exists; not evaluated, the login fails first"
	case exists:
		l.Evidence = "exists; decides none of the requests ESO makes"
	case slices.ContainsFunc(reqs, ungranted):
		var need []string
		for _, r := range reqs {
			if n := requestName(&r); ungranted(r) && !slices.Contains(need, n) {
				need = append(need, n)
			}
		}
		l.State = Broken
		l.Evidence = fmt.Sprintf("does not exist; role %s/%s names it, and no rule of its other policies grants %s", ref.Mount, ref.Name, strings.Join(need, ", "))
	default:
		l.Evidence = fmt.Sprintf("does not exist; role %s/%s names it, Vault ignores the name, and no request ESO makes needs it", ref.Mount, ref.Name)
	}
	j.add(l)
}

// ungranted is a broken request no rule denies: what a missing policy can explain.
func ungranted(r check.Request) bool {
	if r.Kind == chain.RequestLogin || r.Verdict != check.Broken || r.Path == "" {
		return false
	}
	return r.Rule == nil || !slices.ContainsFunc(r.Rule.Sources, func(s check.RuleSource) bool { return slices.Contains(s.Capabilities, "deny") })
}

func requestName(r *check.Request) string {
	if r.Path == "" {
		return r.Why
	}
	return r.Capability + " " + r.Path
}

func requestState(v check.Verdict) State {
	switch v {
	case check.OK:
		return OK
	case check.Broken:
		return Broken
	}
	return Unknown // unknown, not checked, or skipped (the login failed first)
}

func (j *judge) request(res *check.Result, r *check.Request, depth int) {
	l := Link{Kind: LinkRequest, Name: requestName(r), Depth: depth, State: requestState(r.Verdict), Request: r}
	switch {
	case r.Verdict == check.Skipped:
		l.Evidence = r.Why + ": never made, the login fails first"
	case r.Verdict == check.OK:
		l.Evidence = r.Why + ": granted by " + describeRule(r.Rule)
	default:
		l.Evidence = requestMessage(res, r)
	}
	j.add(l)
}

// requestMessage is check's reason for r, which names the request ("read on \"path\" (why): ...").
func requestMessage(res *check.Result, r *check.Request) string {
	prefix := r.Capability + " on " + strconv.Quote(r.Path) + " (" + r.Why + ")"
	for _, reason := range res.Reasons {
		if strings.HasPrefix(reason.Message, prefix) || (r.Path == "" && strings.HasPrefix(reason.Message, r.Why)) {
			return reason.Message
		}
	}
	return r.Why + ": " + string(r.Verdict)
}

// describeRule is `rule "secret/data/*" (policy a, b)`.
func describeRule(r *check.Rule) string {
	if r == nil {
		return "no rule"
	}
	var ps []string
	for _, s := range r.Sources {
		ps = append(ps, s.Policy)
	}
	return fmt.Sprintf("rule %q (policy %s)", r.Path, strings.Join(ps, ", "))
}
