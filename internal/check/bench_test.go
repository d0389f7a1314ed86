package check

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// Issue 13's Speed target: an offline check of 5,000 ExternalSecrets × 500 policies × 50 roles
// in at most 1 s on one core.
const (
	benchRoles           = 50
	benchPoliciesPerRole = 10 // 500 policies
	benchPerRole         = 100
	benchESs             = benchRoles * benchPerRole // 5,000 ExternalSecrets
)

// benchInput is a platform of 50 teams, as a GitOps repository and its Vault would hold it:
// each team a namespace with a SecretStore logging in as the team's role, whose token holds ten
// policies of its own (prefix, segment and exact rules, a deny, an exact metadata rule) plus
// default; 100 ExternalSecrets per team, each with two spec.data items, each written to a Secret
// a Deployment pulls with. One ExternalSecret in 20 reads a path its policies deny.
func benchInput(tb testing.TB) (*chain.Objects, *Vault) {
	tb.Helper()
	o := &chain.Objects{ServiceAccounts: map[string][]string{}}
	v := &Vault{Source: "bench", Policies: vaultacl.Set{}, Roles: map[chain.RoleRef]*Role{}, Mounts: map[string]bool{"kubernetes": true}, Complete: true}
	for r := range benchRoles {
		team := fmt.Sprintf("team-%02d", r)
		role := &Role{Mount: "kubernetes", Name: team, BoundServiceAccountNames: []string{"external-secrets"},
			BoundServiceAccountNamespaces: []string{"external-secrets"}}
		for p := range benchPoliciesPerRole {
			name := fmt.Sprintf("%s-app-%d", team, p)
			text := fmt.Sprintf(`path "secret/data/%[1]s/app-%[2]d/*" { capabilities = ["read"] }
path "secret/data/%[1]s/app-%[2]d/+/config" { capabilities = ["read", "list"] }
path "secret/metadata/%[1]s/app-%[2]d/*" { capabilities = ["list"] }
path "secret/data/%[1]s/app-%[2]d/admin" { capabilities = ["deny"] }
path "secret/data/shared/%[1]s-%[2]d" { capabilities = ["read"] }
`, team, p)
			pol, err := vaultacl.Parse(name, "policies/"+name+".hcl", text)
			if err != nil {
				tb.Fatal(err)
			}
			v.Policies[name] = pol
			role.TokenPolicies = append(role.TokenPolicies, name)
		}
		v.Roles[role.Ref()] = role
		o.Stores = append(o.Stores, &chain.Store{Kind: chain.KindSecretStore, Namespace: team, Name: "vault",
			Spec: &chain.StoreSpec{Provider: chain.StoreProvider{Names: []string{"vault"}, Vault: &chain.VaultProvider{
				Server: "https://vault:8200", Path: pointer("secret"),
				Auth: &chain.VaultAuth{Kubernetes: &chain.VaultKubernetesAuth{Role: team}}}}}})
		for i := range benchPerRole {
			app := fmt.Sprintf("app-%d", i%benchPoliciesPerRole)
			second := fmt.Sprintf("%s/%s/svc-%d/config", team, app, i)
			if i%20 == 0 {
				second = fmt.Sprintf("%s/%s/admin", team, app) // denied
			}
			es := &chain.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: fmt.Sprintf("es-%d", i)},
				Spec: chain.ExternalSecretSpec{SecretStoreRef: chain.StoreRef{Name: "vault"},
					Target: chain.ExternalSecretTarget{Name: fmt.Sprintf("regcred-%d", i)},
					Data: []chain.ExternalSecretData{
						{SecretKey: "a", RemoteRef: chain.RemoteRef{Key: fmt.Sprintf("%s/%s/svc-%d", team, app, i)}},
						{SecretKey: "b", RemoteRef: chain.RemoteRef{Key: second}},
					}}}
			o.ExternalSecrets = append(o.ExternalSecrets, es)
			o.Workloads = append(o.Workloads, &chain.Workload{Kind: "Deployment", Namespace: team, Name: fmt.Sprintf("svc-%d", i),
				PullSecrets: []string{fmt.Sprintf("regcred-%d", i)}, ServiceAccount: "default", Inherits: true})
		}
	}
	return o, v
}

// TestBenchInput: the benchmark checks what it says, and its verdicts are the planted ones.
func TestBenchInput(t *testing.T) {
	t.Parallel()
	o, v := benchInput(t)
	r := Check(chain.NewModel(o), v)
	broken := benchESs / 20
	if len(v.Policies) != benchRoles*benchPoliciesPerRole || r.Summary.ExternalSecrets != benchESs ||
		r.Summary.Broken != broken || r.Summary.OK != benchESs-broken {
		t.Fatalf("policies %d, summary %+v", len(v.Policies), r.Summary)
	}
	for _, res := range r.ExternalSecrets {
		if res.Verdict == Broken && (res.Reasons[0].Code != CodeDenied || !strings.Contains(res.Reasons[0].Message, "/admin")) {
			t.Fatalf("%s: %s", res.ExternalSecret, res.Reasons[0].Message)
		}
	}
}

// BenchmarkCheck is one offline Check of 5,000 ExternalSecrets × 500 policies × 50 roles: every
// role's ACL built, 20,000 requests evaluated, 5,000 results with their blast radius. Run it
// with -cpu 1 for the target's one core (Check uses one goroutine either way).
func BenchmarkCheck(b *testing.B) {
	o, v := benchInput(b)
	m := chain.NewModel(o)
	b.ReportAllocs()
	for b.Loop() {
		if r := Check(m, v); r.Summary.ExternalSecrets != benchESs {
			b.Fatal(r.Summary)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchESs, "ns/ExternalSecret")
}

// BenchmarkCheckBaseline is the same-process baseline BenchmarkCheck is compared with: indexing
// the model (chain.NewModel) and listing every ExternalSecret's requests (chain.VaultRequests),
// the part of the work that evaluates nothing.
func BenchmarkCheckBaseline(b *testing.B) {
	o, _ := benchInput(b)
	b.Run("NewModel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			chain.NewModel(o)
		}
	})
	m := chain.NewModel(o)
	b.Run("VaultRequests", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, es := range m.ExternalSecrets {
				s, _ := m.StoreOf(es)
				reqs, _ := chain.VaultRequests(s, es)
				n += len(reqs)
			}
			if n != benchESs*4 {
				b.Fatal(n)
			}
		}
	})
}
