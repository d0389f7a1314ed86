package explain

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
	"github.com/credchain/credchain/internal/vaultacl"
)

var (
	now      = time.Date(2026, 11, 27, 10, 5, 0, 0, time.UTC)
	storeKey = chain.StoreKey{Kind: chain.KindSecretStore, Namespace: "prod", Name: "vault-backend"}
	roleRef  = chain.RoleRef{Mount: "kubernetes", Name: "eso"}
	esoSA    = chain.ServiceAccountName{Namespace: "external-secrets", Name: "external-secrets"}
)

const orderPolicy = "path \"secret/data/order-service/*\" {\n  capabilities = [\"read\"]\n}\n"

// healthy is the incident's chain in memory, every link ok: Deployment prod/order-service →
// Secret regcred (owned by ExternalSecret regcred) → SecretStore vault-backend → role
// kubernetes/eso → policies eso-order + default.
func healthy(t *testing.T) *Facts {
	t.Helper()
	es := &chain.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "regcred"}, Spec: chain.ExternalSecretSpec{
		SecretStoreRef: chain.StoreRef{Name: "vault-backend"}, Target: chain.ExternalSecretTarget{Template: &chain.ExternalSecretTemplate{Type: chain.SecretTypeDockerConfigJSON}},
		Data: []chain.ExternalSecretData{{SecretKey: ".dockerconfigjson", RemoteRef: chain.RemoteRef{Key: "order-service/regcred"}}}},
		Status: chain.ExternalSecretStatus{RefreshTime: metav1.NewTime(now.Add(-time.Minute)), Conditions: []chain.ExternalSecretCondition{
			{Type: "Ready", Status: "True", Reason: "SecretSynced", Message: "secret synced", LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}}}}
	store := &chain.Store{Kind: storeKey.Kind, Namespace: storeKey.Namespace, Name: storeKey.Name, Spec: &chain.StoreSpec{Provider: chain.StoreProvider{
		Names: []string{"vault"}, Vault: &chain.VaultProvider{Server: "https://vault:8200", Path: ptr("secret"), Auth: &chain.VaultAuth{
			Kubernetes: &chain.VaultKubernetesAuth{Role: "eso"}}}}},
		Status: &chain.StoreStatus{Conditions: []chain.ExternalSecretCondition{{Type: "Ready", Status: "True", Reason: "Valid"}}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "regcred", CreationTimestamp: metav1.NewTime(now.Add(-3 * time.Hour))},
		Type: corev1.SecretTypeDockerConfigJson}
	f := &Facts{
		Target:          Target{Kind: "Deployment", Namespace: "prod", Name: "order-service"},
		Now:             now,
		Workload:        &chain.Workload{Kind: "Deployment", Namespace: "prod", Name: "order-service", PullSecrets: []string{"regcred"}, ServiceAccount: "default", Inherits: true},
		Secrets:         []*SecretFacts{{Name: "regcred", From: FromPodSpec, Secret: secret, Writers: []string{"regcred"}, FoundBy: "ownerReference"}},
		ExternalSecrets: map[string]*ExternalSecretFacts{"regcred": {ES: es}},
		Stores:          map[chain.StoreKey]*StoreFacts{storeKey: {Store: store}},
		ESOAccount:      esoSA,
		VaultAddr:       "https://vault:8200",
		Vault: &check.Vault{Source: "vault https://vault:8200", Complete: true, Mounts: map[string]bool{"kubernetes": true},
			Policies: vaultacl.Set{"eso-order": mustParse(t, "eso-order", orderPolicy), "default": mustParse(t, "default", `path "auth/token/lookup-self" { capabilities = ["read"] }`)},
			Roles: map[chain.RoleRef]*check.Role{roleRef: {Mount: "kubernetes", Name: "eso", TokenPolicies: []string{"eso-order"},
				BoundServiceAccountNames: []string{"external-secrets"}, BoundServiceAccountNamespaces: []string{"external-secrets"}, Source: "vault:auth/kubernetes/role/eso"}}},
	}
	return f
}

func mustParse(t *testing.T, name, text string) *vaultacl.Policy {
	t.Helper()
	p, err := vaultacl.Parse(name, "vault:sys/policies/acl/"+name, text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func bodies(t *testing.T, policies map[string]string, roles map[chain.RoleRef]*check.Role) *Bodies {
	t.Helper()
	b := &Bodies{policies: map[string]Body{}, roles: roles, roleSources: map[chain.RoleRef]string{}}
	for name, text := range policies {
		b.policies[name] = Body{Text: text, Source: "--policies policies/" + name + ".hcl", Policy: mustParse(t, name, text)}
	}
	for ref := range roles {
		b.roleSources[ref] = "--terraform main.tf:9 (vault_kubernetes_auth_backend_role.eso)"
	}
	return b
}

// TestJudge: each way the chain breaks, from facts as Gather reads them, with the links' states,
// the cause and the fix.
func TestJudge(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		change func(t *testing.T, f *Facts)
		// states are "state name" of the links, in order.
		states []string
		cause  string   // the cause's link name, "" for none
		fix    []string // each step's command ("# why" when it has none), in order
		state  State
	}{
		"healthy": {
			change: func(*testing.T, *Facts) {},
			states: []string{"ok Deployment prod/order-service", "ok Secret prod/regcred", "ok ExternalSecret prod/regcred", "ok SecretStore prod/vault-backend",
				"ok Vault role kubernetes/eso", "ok policy default", "ok policy eso-order", "ok read auth/token/lookup-self", "ok read secret/data/order-service/regcred"},
			state: OK,
		},
		"the policy deleted, its body known": {
			change: func(t *testing.T, f *Facts) {
				delete(f.Vault.Policies, "eso-order")
				f.Bodies = bodies(t, map[string]string{"eso-order": orderPolicy}, nil)
			},
			states: []string{"ok Deployment prod/order-service", "ok Secret prod/regcred", "ok ExternalSecret prod/regcred", "ok SecretStore prod/vault-backend",
				"ok Vault role kubernetes/eso", "ok policy default", "broken policy eso-order", "ok read auth/token/lookup-self", "broken read secret/data/order-service/regcred"},
			cause: "policy eso-order",
			fix:   []string{"vault policy write eso-order - <<'EOF'\n" + orderPolicy + "EOF", "kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"the policy deleted, no body": {
			change: func(_ *testing.T, f *Facts) { delete(f.Vault.Policies, "eso-order") },
			cause:  "policy eso-order",
			fix:    []string{"vault policy write eso-order eso-order.hcl", "kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state:  Broken,
		},
		"a body holding the here-document's delimiter": {
			change: func(t *testing.T, f *Facts) {
				delete(f.Vault.Policies, "eso-order")
				f.Bodies = bodies(t, map[string]string{"eso-order": orderPolicy + "# EOF\n/*\nEOF\n*/\n"}, nil)
			},
			cause: "policy eso-order",
			fix: []string{"vault policy write eso-order - <<'EOF_'\n" + orderPolicy + "# EOF\n/*\nEOF\n*/\nEOF_",
				"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"a policy missing that nothing needs": {
			change: func(_ *testing.T, f *Facts) { f.Vault.Roles[roleRef].TokenPolicies = []string{"eso-order", "gone"} },
			states: []string{"ok Deployment prod/order-service", "ok Secret prod/regcred", "ok ExternalSecret prod/regcred", "ok SecretStore prod/vault-backend",
				"ok Vault role kubernetes/eso", "ok policy default", "ok policy eso-order", "ok policy gone", "ok read auth/token/lookup-self", "ok read secret/data/order-service/regcred"},
			state: OK,
		},
		"the policy in Vault drifted from its last known body": {
			change: func(t *testing.T, f *Facts) {
				f.Vault.Policies["eso-order"] = mustParse(t, "eso-order", `path "secret/data/other/*" { capabilities = ["read"] }`)
				f.Bodies = bodies(t, map[string]string{"eso-order": orderPolicy}, nil)
			},
			cause: "read secret/data/order-service/regcred",
			fix:   []string{"vault policy write eso-order - <<'EOF'\n" + orderPolicy + "EOF", "kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"an explicit deny": {
			change: func(t *testing.T, f *Facts) {
				f.Vault.Policies["eso-order"] = mustParse(t, "eso-order", orderPolicy+`path "secret/data/order-service/regcred" { capabilities = ["deny"] }`)
			},
			cause: "read secret/data/order-service/regcred",
			fix: []string{"# no last known body of role kubernetes/eso's policies (default, eso-order) grants read secret/data/order-service/regcred: add a rule granting read on \"secret/data/order-service/regcred\" to one of them",
				"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"the binding changed, fields kept": {
			change: func(_ *testing.T, f *Facts) {
				f.Vault.Roles[roleRef].BoundServiceAccountNames = []string{"someone-else"}
				f.RoleData = map[chain.RoleRef]map[string]any{roleRef: {
					"bound_service_account_names": []any{"someone-else"}, "bound_service_account_namespaces": []any{"external-secrets"},
					"policies": []any{"eso-order"}, "token_policies": []any{"eso-order"}, "ttl": json.Number("3600"), "token_ttl": json.Number("3600"),
					"token_max_ttl": json.Number("0"), "alias_name_source": "serviceaccount_uid", "token_type": "default", "audience": "vault",
					"token_bound_cidrs": []any{}, "token_no_default_policy": false, "bound_service_account_namespace_selector": ""}}
			},
			states: []string{"ok Deployment prod/order-service", "ok Secret prod/regcred", "ok ExternalSecret prod/regcred", "ok SecretStore prod/vault-backend",
				"broken Vault role kubernetes/eso", "ok policy default", "ok policy eso-order", "unknown read auth/token/lookup-self", "unknown read secret/data/order-service/regcred"},
			cause: "Vault role kubernetes/eso",
			fix: []string{"vault write auth/kubernetes/role/eso bound_service_account_names=someone-else,external-secrets bound_service_account_namespaces=external-secrets token_policies=eso-order audience=vault token_ttl=3600",
				"kubectl annotate secretstore vault-backend -n prod credchain.io/revalidate=$(date +%s) --overwrite", "kubectl wait --for=condition=Ready secretstore/vault-backend -n prod --timeout=2m",
				"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"the namespace not bound either": {
			change: func(_ *testing.T, f *Facts) {
				r := f.Vault.Roles[roleRef]
				r.BoundServiceAccountNames, r.BoundServiceAccountNamespaces = []string{"x-*"}, []string{"kube-system"}
			},
			cause: "Vault role kubernetes/eso",
			fix: []string{"vault write auth/kubernetes/role/eso 'bound_service_account_names=x-*,external-secrets' bound_service_account_namespaces=kube-system,external-secrets token_policies=eso-order",
				"kubectl annotate secretstore vault-backend -n prod credchain.io/revalidate=$(date +%s) --overwrite", "kubectl wait --for=condition=Ready secretstore/vault-backend -n prod --timeout=2m",
				"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"the role deleted, Terraform knows it": {
			change: func(t *testing.T, f *Facts) {
				r := f.Vault.Roles[roleRef]
				delete(f.Vault.Roles, roleRef)
				f.Bodies = bodies(t, nil, map[chain.RoleRef]*check.Role{roleRef: r})
			},
			states: []string{"ok Deployment prod/order-service", "ok Secret prod/regcred", "ok ExternalSecret prod/regcred", "ok SecretStore prod/vault-backend",
				"broken Vault role kubernetes/eso"},
			cause: "Vault role kubernetes/eso",
			fix: []string{"vault write auth/kubernetes/role/eso bound_service_account_names=external-secrets bound_service_account_namespaces=external-secrets token_policies=eso-order",
				"kubectl annotate secretstore vault-backend -n prod credchain.io/revalidate=$(date +%s) --overwrite", "kubectl wait --for=condition=Ready secretstore/vault-backend -n prod --timeout=2m",
				"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"ESO's sync failed, Vault now fine": {
			change: func(_ *testing.T, f *Facts) {
				es := f.ExternalSecrets["regcred"]
				es.ES.Status.Conditions[0] = chain.ExternalSecretCondition{Type: "Ready", Status: "False", Reason: "SecretSyncedError", Message: "could not get secret data from provider",
					LastTransitionTime: metav1.NewTime(now.Add(-10 * time.Minute))}
				es.Warning = &corev1.Event{Type: corev1.EventTypeWarning, Reason: "UpdateFailed", LastTimestamp: metav1.NewTime(now.Add(-10 * time.Minute)),
					Message: "error processing spec.data[0]:\n\nCode: 403. Errors:\n\n* permission denied\x1b[31m"}
			},
			cause: "ExternalSecret prod/regcred",
			fix:   []string{"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"Vault not checked": {
			change: func(_ *testing.T, f *Facts) { f.Vault, f.VaultNotChecked = nil, "VAULT_ADDR is not set" },
			states: []string{"ok Deployment prod/order-service", "ok Secret prod/regcred", "ok ExternalSecret prod/regcred", "ok SecretStore prod/vault-backend", "unknown Vault"},
			state:  Unknown,
		},
		"Vault not checked, ESO's sync failing": {
			change: func(_ *testing.T, f *Facts) {
				f.Vault, f.VaultNotChecked = nil, "no Vault token"
				f.ExternalSecrets["regcred"].ES.Status.Conditions[0].Status = "False"
			},
			cause: "ExternalSecret prod/regcred",
			fix: []string{"# Vault was not checked (no Vault token): run explain again with VAULT_ADDR and VAULT_TOKEN to find which Vault link fails",
				"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"the registry refuses the synced credential": {
			change: func(_ *testing.T, f *Facts) {
				f.Secrets[0].Registries = []RegistryResult{{Registry: "registry.example:5000", URL: "https://registry.example:5000/v2/", Username: "puller", Auth: "basic", Status: 401}}
			},
			states: []string{"ok Deployment prod/order-service", "ok Secret prod/regcred", "broken registry registry.example:5000", "ok ExternalSecret prod/regcred",
				"ok SecretStore prod/vault-backend", "ok Vault role kubernetes/eso", "ok policy default", "ok policy eso-order", "ok read auth/token/lookup-self",
				"ok read secret/data/order-service/regcred"},
			cause: "registry registry.example:5000",
			fix: []string{"# registry registry.example:5000 refuses the credential of user puller that ESO synced: renew it at the registry, or put the valid one where the ExternalSecret reads it, then sync",
				"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state: Broken,
		},
		"a bare Pod, its pull secrets final once admitted": {
			change: func(_ *testing.T, f *Facts) {
				f.Target = Target{Kind: "Pod", Namespace: "prod", Name: "order-service-7d9f"}
				f.Workload = &chain.Workload{Kind: "Pod", Namespace: "prod", Name: "order-service-7d9f", PullSecrets: []string{"regcred"}, ServiceAccount: "default"}
			},
			states: []string{"ok Pod prod/order-service-7d9f", "ok Secret prod/regcred", "ok ExternalSecret prod/regcred", "ok SecretStore prod/vault-backend",
				"ok Vault role kubernetes/eso", "ok policy default", "ok policy eso-order", "ok read auth/token/lookup-self", "ok read secret/data/order-service/regcred"},
			state: OK,
		},
		"the Secret deleted": {
			change: func(_ *testing.T, f *Facts) { f.Secrets[0].Secret, f.Secrets[0].FoundBy = nil, "spec.target.name" },
			cause:  "Secret prod/regcred",
			fix:    []string{"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state:  Broken,
		},
		"a pull secret of the wrong type, no ExternalSecret": {
			change: func(_ *testing.T, f *Facts) {
				f.Secrets[0].Secret.Type, f.Secrets[0].Writers = corev1.SecretTypeOpaque, nil
				f.ExternalSecrets, f.Stores = map[string]*ExternalSecretFacts{}, map[chain.StoreKey]*StoreFacts{}
			},
			states: []string{"ok Deployment prod/order-service", "broken Secret prod/regcred"},
			cause:  "Secret prod/regcred",
			state:  Broken,
		},
		"the store deleted": {
			change: func(_ *testing.T, f *Facts) { f.Stores[storeKey].Store = nil },
			states: []string{"ok Deployment prod/order-service", "ok Secret prod/regcred", "ok ExternalSecret prod/regcred", "broken SecretStore prod/vault-backend"},
			cause:  "SecretStore prod/vault-backend",
			fix:    []string{"kubectl annotate externalsecret regcred -n prod force-sync=$(date +%s) --overwrite"},
			state:  Broken,
		},
		"pull secrets from the ServiceAccount, which is gone": {
			change: func(_ *testing.T, f *Facts) {
				f.Workload.PullSecrets = nil
				f.ServiceAccount = &AccountFacts{Name: "default"}
				f.Secrets = nil
			},
			states: []string{"ok Deployment prod/order-service", "broken ServiceAccount prod/default"},
			cause:  "ServiceAccount prod/default",
			state:  Broken,
		},
		"a read refused by RBAC is unknown, not broken": {
			change: func(_ *testing.T, f *Facts) {
				f.Secrets[0].Secret, f.Secrets[0].Err = nil, errors.New(`secrets "regcred" is forbidden: User "on-call" cannot get resource "secrets"`)
			},
			states: []string{"ok Deployment prod/order-service", "unknown Secret prod/regcred", "ok ExternalSecret prod/regcred", "ok SecretStore prod/vault-backend",
				"ok Vault role kubernetes/eso", "ok policy default", "ok policy eso-order", "ok read auth/token/lookup-self", "ok read secret/data/order-service/regcred"},
			state: Unknown,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := healthy(t)
			tc.change(t, f)
			if f.Vault != nil {
				f.Results = evaluate(f, f.Vault)
			}
			r := Judge(f)
			out := text(t, r)
			if r.State != tc.state {
				t.Errorf("state %s, want %s\n%s", r.State, tc.state, out)
			}
			if tc.states != nil {
				var got []string
				for _, l := range r.Links {
					got = append(got, string(l.State)+" "+l.Name)
				}
				if !slices.Equal(got, tc.states) {
					t.Errorf("links\n got %q\nwant %q\n%s", got, tc.states, out)
				}
			}
			gotCause := ""
			if r.Cause != nil {
				gotCause = r.Links[r.Cause.Link].Name
			}
			if gotCause != tc.cause {
				t.Errorf("cause %q, want %q\n%s", gotCause, tc.cause, out)
			}
			var fix []string
			for _, s := range r.Fix {
				fix = append(fix, cmpOr(s.Command, "# "+s.Why))
			}
			if !slices.Equal(fix, tc.fix) {
				t.Errorf("fix\n got %q\nwant %q\n%s", fix, tc.fix, out)
			}
			if strings.ContainsFunc(out, func(r rune) bool { return r == 0x1b }) {
				t.Errorf("a control character reached the output:\n%q", out)
			}
		})
	}
}
