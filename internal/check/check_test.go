package check

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

func pointer[T any](v T) *T { return &v }

// chainFixture is the incident's chain, healthy: Deployment prod/order-service pulls with Secret
// regcred-order-service, which ExternalSecret prod/order-service-regcred writes from
// secret/data/order-service/regcred through SecretStore prod/vault-backend, which logs in as
// role external-secrets-operator with ESO's own ServiceAccount; the role's token holds
// eso-order-service (and default), which grants the read.
type chainFixture struct {
	store    *chain.Store
	es       *chain.ExternalSecret
	more     []*chain.Store
	role     *Role
	policies map[string]string // name → HCL
	complete bool
	tweak    func(*Vault)
}

func newChainFixture() *chainFixture {
	store := &chain.Store{Kind: chain.KindSecretStore, Namespace: "prod", Name: "vault-backend",
		Spec: &chain.StoreSpec{Provider: chain.StoreProvider{Names: []string{"vault"}, Vault: &chain.VaultProvider{
			Server: "https://vault:8200", Path: pointer("secret"), Version: "v2",
			Auth: &chain.VaultAuth{Kubernetes: &chain.VaultKubernetesAuth{MountPath: "kubernetes", Role: "external-secrets-operator"}}}}},
		Status: &chain.StoreStatus{}}
	es := &chain.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "order-service-regcred"},
		Spec: chain.ExternalSecretSpec{SecretStoreRef: chain.StoreRef{Name: "vault-backend"},
			Target: chain.ExternalSecretTarget{Name: "regcred-order-service", Template: &chain.ExternalSecretTemplate{Type: chain.SecretTypeDockerConfigJSON}},
			Data:   []chain.ExternalSecretData{{SecretKey: ".dockerconfigjson", RemoteRef: chain.RemoteRef{Key: "order-service/regcred"}}}}}
	return &chainFixture{store: store, es: es, complete: true,
		role: &Role{Mount: "kubernetes", Name: "external-secrets-operator", TokenPolicies: []string{"eso-order-service"},
			BoundServiceAccountNames: []string{"external-secrets"}, BoundServiceAccountNamespaces: []string{"external-secrets"},
			Source: "roles.yaml:3"},
		policies: map[string]string{"eso-order-service": `path "secret/data/order-service/*" {
  capabilities = ["read"]
}
`}}
}

func (f *chainFixture) model() *chain.Model {
	o := &chain.Objects{ExternalSecrets: []*chain.ExternalSecret{f.es}, Stores: append([]*chain.Store{f.store}, f.more...)}
	o.AddServiceAccount("prod", "default", nil)
	o.Workloads = []*chain.Workload{{Kind: "Deployment", Namespace: "prod", Name: "order-service",
		PullSecrets: []string{"regcred-order-service"}, ServiceAccount: "default", Inherits: true}}
	return chain.NewModel(o)
}

func (f *chainFixture) vault(t testing.TB) *Vault {
	t.Helper()
	v := &Vault{Source: "files policies/ + roles.yaml", Policies: vaultacl.Set{}, Roles: map[chain.RoleRef]*Role{},
		Mounts: map[string]bool{"kubernetes": true}, Complete: f.complete}
	for name, text := range f.policies {
		p, err := vaultacl.Parse(name, "policies/"+name+".hcl", text)
		if err != nil {
			t.Fatal(err)
		}
		v.Policies[name] = p
	}
	if f.role != nil {
		v.Roles[f.role.Ref()] = f.role
	}
	if f.tweak != nil {
		f.tweak(v)
	}
	return v
}

// TestCheck holds each verdict of issue 13 §4 to a case: the chainFixture changed one way.
func TestCheck(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		change  func(*chainFixture)
		opts    []Option
		verdict Verdict
		code    string   // of the first reason; "" for ok
		message []string // substrings of the first reason's message
	}{
		"healthy chain": {change: func(*chainFixture) {}, verdict: OK},
		"the incident: the role's policy is gone, the role still logs in": {
			change:  func(f *chainFixture) { delete(f.policies, "eso-order-service") },
			verdict: Broken, code: CodeNoRuleGrants,
			message: []string{`read on "secret/data/order-service/regcred"`, `spec.data[0].remoteRef.key "order-service/regcred"`,
				`no rule of role "external-secrets-operator"'s policies (default, eso-order-service) grants it`,
				`role "external-secrets-operator" names policy "eso-order-service", which does not exist`},
		},
		"policy not in an incomplete input: unknown, not broken": {
			change:  func(f *chainFixture) { delete(f.policies, "eso-order-service"); f.complete = false },
			verdict: Unknown, code: CodePolicyUnknown, message: []string{`policy "eso-order-service" is not in the Vault input`},
		},
		"policy whose content is known only after apply": {
			change: func(f *chainFixture) {
				delete(f.policies, "eso-order-service")
				f.tweak = func(v *Vault) { v.UnknownPolicies = map[string]string{"eso-order-service": "known after apply"} }
			},
			verdict: Unknown, code: CodePolicyUnknown, message: []string{"known after apply"},
		},
		"role missing from a complete input": {
			change: func(f *chainFixture) { f.role = nil }, verdict: Broken, code: CodeRoleMissing,
			message: []string{`role "external-secrets-operator" on auth mount "kubernetes" does not exist`},
		},
		"role missing from an incomplete input": {
			change:  func(f *chainFixture) { f.role, f.complete = nil, false },
			verdict: Unknown, code: CodeRoleUnknown, message: []string{"is not in the Vault input"},
		},
		"role known only after apply": {
			change: func(f *chainFixture) {
				f.role = nil
				f.tweak = func(v *Vault) {
					v.UnknownRoles = map[chain.RoleRef]string{{Mount: "kubernetes", Name: "external-secrets-operator"}: "known after apply"}
				}
			},
			verdict: Unknown, code: CodeRoleUnknown, message: []string{"known after apply"},
		},
		"auth mount missing": {
			change:  func(f *chainFixture) { f.store.Spec.Provider.Vault.Auth.Kubernetes.MountPath = "k8s" },
			verdict: Broken, code: CodeMountMissing, message: []string{`no Kubernetes auth mount "k8s"`, "auth/k8s/login"},
		},
		"ServiceAccount name not bound": {
			change:  func(f *chainFixture) { f.role.BoundServiceAccountNames = []string{"eso"} },
			verdict: Broken, code: CodeNotBound,
			message: []string{"ServiceAccount external-secrets/external-secrets is not bound", "roles.yaml:3", "service account name not authorized"},
		},
		"ServiceAccount namespace not bound": {
			change:  func(f *chainFixture) { f.role.BoundServiceAccountNamespaces = []string{"eso"} },
			verdict: Broken, code: CodeNotBound, message: []string{"namespace not authorized"},
		},
		"bindings by glob and *": {
			change: func(f *chainFixture) {
				f.role.BoundServiceAccountNames = []string{"other", "external-*"}
				f.role.BoundServiceAccountNamespaces = []string{"*"}
			},
			verdict: OK,
		},
		"ESO's own account from the option": {
			change: func(*chainFixture) {}, opts: []Option{WithESOServiceAccount("eso", "eso")},
			verdict: Broken, code: CodeNotBound, message: []string{"ServiceAccount eso/eso"},
		},
		"serviceAccountRef on a SecretStore: the store's namespace": {
			change: func(f *chainFixture) {
				f.store.Spec.Provider.Vault.Auth.Kubernetes.ServiceAccountRef = &chain.ServiceAccountRef{Name: "order-service"}
			},
			verdict: Broken, code: CodeNotBound, message: []string{"ServiceAccount prod/order-service"},
		},
		"token from a Secret: the account cannot be told": {
			change: func(f *chainFixture) {
				f.store.Spec.Provider.Vault.Auth.Kubernetes.SecretRef = json.RawMessage(`{"name":"vault-jwt"}`)
			},
			verdict: Unknown, code: CodeAccountUnknown,
		},
		"a deny rule decides": {
			change: func(f *chainFixture) {
				f.policies["freeze"] = "path \"secret/data/order-service/regcred\" {\n  capabilities = [\"deny\"]\n}\n"
				f.role.TokenPolicies = append(f.role.TokenPolicies, "freeze")
			},
			verdict: Broken, code: CodeDenied,
			message: []string{`denied by rule "secret/data/order-service/regcred" (policy freeze, policies/freeze.hcl:1)`},
		},
		"the deciding rule lacks read": {
			change: func(f *chainFixture) {
				f.policies["lister"] = "path \"secret/data/order-service/+\" {\n  capabilities = [\"list\"]\n}\n"
				f.role.TokenPolicies = append(f.role.TokenPolicies, "lister")
			},
			verdict: Broken, code: CodeNoRuleGrants,
			message: []string{`rule "secret/data/order-service/+" (policy lister, policies/lister.hcl:1) grants only list`},
		},
		"a templated rule may match: unknown, never ok": {
			change: func(f *chainFixture) {
				f.policies["ident"] = `path "secret/data/{{identity.entity.name}}/*" { capabilities = ["deny"] }`
				f.role.TokenPolicies = append(f.role.TokenPolicies, "ident")
			},
			verdict: Unknown, code: CodeTemplated, message: []string{"templated path"},
		},
		"allowed_parameters and ESO's ?version=N": {
			change: func(f *chainFixture) {
				f.policies["eso-order-service"] = `path "secret/data/order-service/*" {
  capabilities = ["read"]
  allowed_parameters = { "foo" = [] }
}`
				f.es.Spec.Data[0].RemoteRef.Version = "2"
			},
			verdict: Unknown, code: CodeRestricted, message: []string{"ESO sends parameter version", "allowed_parameters"},
		},
		"allowed_parameters without ?version: ESO sends nothing they refuse": {
			change: func(f *chainFixture) {
				f.policies["eso-order-service"] = `path "secret/data/order-service/*" {
  capabilities = ["read"]
  allowed_parameters = { "foo" = [] }
}`
			},
			verdict: OK,
		},
		"a wrapping TTL refuses ESO's unwrapped read": {
			change: func(f *chainFixture) {
				f.policies["eso-order-service"] = `path "secret/data/order-service/*" {
  capabilities = ["read"]
  min_wrapping_ttl = "1m"
}`
			},
			verdict: Broken, code: CodeRestricted, message: []string{"ESO does not response-wrap"},
		},
		"token_no_default_policy: the store's lookup-self is not granted": {
			change:  func(f *chainFixture) { f.role.NoDefaultPolicy = true },
			verdict: Broken, code: CodeNoRuleGrants,
			message: []string{`read on "auth/token/lookup-self"`, "SecretStore prod/vault-backend validation"},
		},
		"a referent ClusterSecretStore is not validated: no lookup-self": {
			change: func(f *chainFixture) {
				f.role.NoDefaultPolicy = true
				f.role.BoundServiceAccountNames, f.role.BoundServiceAccountNamespaces = []string{"order-service"}, []string{"prod"}
				f.store.Kind, f.store.Namespace = chain.KindClusterSecretStore, ""
				f.store.Spec.Provider.Vault.Auth.Kubernetes.ServiceAccountRef = &chain.ServiceAccountRef{Name: "order-service"}
				f.es.Spec.SecretStoreRef.Kind = chain.KindClusterSecretStore
			},
			verdict: OK,
		},
		"the input's own default policy wins over the built-in": {
			change:  func(f *chainFixture) { f.policies["default"] = `path "sys/tools/hash" { capabilities = ["update"] }` },
			verdict: Broken, code: CodeNoRuleGrants, message: []string{"auth/token/lookup-self"},
		},
		"store not found": {
			change:  func(f *chainFixture) { f.es.Spec.SecretStoreRef.Name = "nope" },
			verdict: Broken, code: CodeStoreNotFound, message: []string{"SecretStore prod/nope not found: ESO cannot fetch spec.data[0]"},
		},
		"another provider: not checked": {
			change: func(f *chainFixture) {
				f.store.Spec.Provider = chain.StoreProvider{Names: []string{"aws"}}
			},
			verdict: NotChecked, code: CodeOtherProvider, message: []string{"provider aws, not checked"},
		},
		"an auth method not modelled": {
			change: func(f *chainFixture) {
				f.store.Spec.Provider.Vault.Auth = &chain.VaultAuth{AppRole: json.RawMessage(`{"roleId":"x"}`)}
			},
			verdict: Unknown, code: CodeAuthMethod, message: []string{"auth method appRole"},
		},
		"a Vault Enterprise namespace": {
			change:  func(f *chainFixture) { f.store.Spec.Provider.Vault.Namespace = pointer("team-a") },
			verdict: Unknown, code: CodeVaultNamespace,
		},
		"ESO refuses metadataPolicy Fetch on KV v1": {
			change: func(f *chainFixture) {
				f.store.Spec.Provider.Vault.Version = "v1"
				f.es.Spec.Data[0].RemoteRef.MetadataPolicy = "Fetch"
			},
			verdict: Broken, code: CodeESORefuses, message: []string{"cannot perform metadata fetch operations with kv version v1"},
		},
		"an item read through another store's role": {
			change: func(f *chainFixture) {
				other := *f.store
				other.Name = "vault-other"
				v := *f.store.Spec.Provider.Vault
				v.Auth = &chain.VaultAuth{Kubernetes: &chain.VaultKubernetesAuth{Role: "nobody"}}
				other.Spec = &chain.StoreSpec{Provider: chain.StoreProvider{Names: []string{"vault"}, Vault: &v}}
				f.more = append(f.more, &other)
				f.es.Spec.Data = append(f.es.Spec.Data, chain.ExternalSecretData{SecretKey: "b", RemoteRef: chain.RemoteRef{Key: "b"},
					SourceRef: &chain.SourceRef{StoreRef: &chain.StoreRef{Name: "vault-other"}}})
			},
			verdict: Broken, code: CodeRoleMissing, message: []string{`role "nobody"`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newChainFixture()
			tc.change(f)
			r := Check(f.model(), f.vault(t), tc.opts...)
			if len(r.ExternalSecrets) != 1 {
				t.Fatalf("got %d results, want 1", len(r.ExternalSecrets))
			}
			res := r.ExternalSecrets[0]
			if res.Verdict != tc.verdict {
				t.Fatalf("verdict %s, want %s; result:\n%s", res.Verdict, tc.verdict, asJSON(res))
			}
			if tc.code == "" {
				if len(res.Reasons) != 0 {
					t.Fatalf("reasons %s, want none", asJSON(res.Reasons))
				}
				return
			}
			if len(res.Reasons) == 0 || res.Reasons[0].Code != tc.code {
				t.Fatalf("first reason %s, want code %s", asJSON(res.Reasons), tc.code)
			}
			for _, m := range tc.message {
				if !strings.Contains(res.Reasons[0].Message, m) {
					t.Errorf("first reason %q does not hold %q", res.Reasons[0].Message, m)
				}
			}
		})
	}
}

func asJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// TestCheckBlastRadius: a broken ExternalSecret names its Secret, the workloads pulling with it,
// the role and the missing policy — what the e2e test asks `check` to name after alice's delete.
func TestCheckBlastRadius(t *testing.T) {
	t.Parallel()
	f := newChainFixture()
	delete(f.policies, "eso-order-service")
	r := Check(f.model(), f.vault(t))
	res := r.ExternalSecrets[0]
	if got, want := *res.Secret, (Object{Kind: "Secret", Namespace: "prod", Name: "regcred-order-service"}); got != want {
		t.Errorf("secret %v, want %v", got, want)
	}
	if want := []Object{{Kind: "Deployment", Namespace: "prod", Name: "order-service"}}; !slices.Equal(res.Workloads, want) {
		t.Errorf("workloads %v, want %v", res.Workloads, want)
	}
	if res.Role == nil || res.Role.Name != "external-secrets-operator" || !slices.Equal(res.DanglingPolicies, []string{"eso-order-service"}) {
		t.Errorf("role %v, dangling %v", res.Role, res.DanglingPolicies)
	}
	want := []UndefinedPolicy{{Policy: "eso-order-service", Roles: []RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator", Source: "roles.yaml:3"}}}}
	if got := r.UndefinedPolicies; asJSON(got) != asJSON(want) {
		t.Errorf("undefined policies %s, want %s", asJSON(got), asJSON(want))
	}
	if s := r.Summary; s.Broken != 1 || s.ExternalSecrets != 1 || s.UndefinedPolicies != 1 {
		t.Errorf("summary %+v", s)
	}
	if got := len(r.Failing()); got != 1 {
		t.Errorf("failing %d, want 1", got)
	}
	// With creationPolicy None no Secret is written: no blast radius.
	f.es.Spec.Target.CreationPolicy = chain.CreationNone
	if res := Check(f.model(), f.vault(t)).ExternalSecrets[0]; res.Secret != nil || res.Workloads != nil {
		t.Errorf("creationPolicy None: secret %v, workloads %v", res.Secret, res.Workloads)
	}
}

// TestCheckChange: what the change breaks comes first and apart from what was broken before; a
// policy the change deletes is gone (broken), though the input after is not Complete.
func TestCheckChange(t *testing.T) {
	t.Parallel()
	f := newChainFixture()
	f.complete = false
	already := f.es.DeepCopy()
	already.Name, already.Spec.SecretStoreRef.Name = "aaa-already-broken", "missing-store"
	m := chain.NewModel(&chain.Objects{ExternalSecrets: []*chain.ExternalSecret{already, f.es}, Stores: []*chain.Store{f.store}})
	before := f.vault(t)
	delete(f.policies, "eso-order-service")
	after := f.vault(t)

	r := CheckChange(m, before, after)
	var got []string
	for _, res := range r.ExternalSecrets {
		got = append(got, res.ExternalSecret.Name+":"+string(res.Before)+"→"+string(res.Verdict)+":"+string(res.Change))
	}
	want := []string{"order-service-regcred:ok→broken:breaks", "aaa-already-broken:broken→broken:still-broken"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !r.IsChange() || r.Summary.Breaks != 1 || r.Summary.StillBroken != 1 || len(r.Failing()) != 1 {
		t.Errorf("change %v, summary %+v, failing %d", r.IsChange(), r.Summary, len(r.Failing()))
	}
	if u := r.UndefinedPolicies; len(u) != 1 || u[0].Unknown {
		t.Errorf("undefined policies %s: want eso-order-service, known gone", asJSON(u))
	}

	// The fix the issue describes: the plan also drops the policy from the role, and the
	// ExternalSecret no longer needs it (it reads a path default grants): nothing breaks.
	f.role.TokenPolicies = nil
	f.es.Spec.Data[0].RemoteRef.Key = "cubbyhole/x"
	f.store.Spec.Provider.Vault.Path = nil
	m = chain.NewModel(&chain.Objects{ExternalSecrets: []*chain.ExternalSecret{f.es}, Stores: []*chain.Store{f.store}})
	if r := CheckChange(m, before, f.vault(t)); len(r.Failing()) != 0 {
		t.Errorf("the fixed change fails:\n%s", asJSON(r))
	}
}

// TestCheckBuildsEachRoleOnce: the per-role ACL is what makes 5,000 ExternalSecrets fast.
func TestCheckBuildsEachRoleOnce(t *testing.T) {
	t.Parallel()
	f := newChainFixture()
	var ess []*chain.ExternalSecret
	for i := range 20 {
		es := f.es.DeepCopy()
		es.Name = "es-" + string(rune('a'+i))
		ess = append(ess, es)
	}
	m := chain.NewModel(&chain.Objects{ExternalSecrets: ess, Stores: []*chain.Store{f.store}})
	e := newEngine(m, f.vault(t), newOptions(nil))
	r := e.report()
	if len(e.roles) != 1 || r.Summary.OK != 20 {
		t.Errorf("roles built %d, want 1; summary %+v", len(e.roles), r.Summary)
	}
	for _, ra := range e.roles {
		if len(ra.answers) != 2 { // lookup-self and the one secret path
			t.Errorf("answers cached %d, want 2", len(ra.answers))
		}
	}
}
