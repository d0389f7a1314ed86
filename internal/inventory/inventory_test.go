package inventory

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
)

// TestFromModel: the inventory lists every Vault store (another provider's not), with its login,
// and per Kubernetes auth role the chain model's impact of that role alone.
func TestFromModel(t *testing.T) {
	t.Parallel()
	ns := "prod"
	approle := vaultStore(ns, "approle", "https://vault:8200", "", "")
	approle.Spec.Provider.Vault.Auth = &chain.VaultAuth{AppRole: json.RawMessage(`{"path":"approle"}`)}
	vaultNS := "team-a"
	withNS := vaultStore("", "shared", "https://vault.example.com", "kubernetes-eu-1", "eso-shared")
	withNS.Kind, withNS.Spec.Provider.Vault.Namespace = chain.KindClusterSecretStore, &vaultNS
	o := &chain.Objects{
		Stores: []*chain.Store{vaultStore(ns, "vault", "https://vault:8200", "kubernetes-eu-1/", "eso"), approle, withNS,
			{Kind: chain.KindSecretStore, Namespace: ns, Name: "aws", Spec: &chain.StoreSpec{Provider: chain.StoreProvider{Names: []string{"aws"}}}}},
		ExternalSecrets: []*chain.ExternalSecret{
			{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred"}, Spec: chain.ExternalSecretSpec{SecretStoreRef: chain.StoreRef{Name: "vault"}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared"}, Spec: chain.ExternalSecretSpec{SecretStoreRef: chain.StoreRef{Name: "shared", Kind: chain.KindClusterSecretStore}}},
		},
		Workloads: []*chain.Workload{{Kind: "Deployment", Namespace: ns, Name: "app", PullSecrets: []string{"regcred", "shared"}, ServiceAccount: "default", Inherits: true}},
	}
	got := FromModel("eu-1", chain.NewModel(o))
	app := []events.ObjectRef{{Kind: "Deployment", Namespace: ns, Name: "app"}}
	want := &Inventory{Version: 1, Cluster: "eu-1",
		Stores: []Store{{Kind: "ClusterSecretStore", Name: "shared", Server: "https://vault.example.com", VaultNamespace: "team-a", Login: "kubernetes", Mount: "kubernetes-eu-1", Role: "eso-shared"},
			{Kind: "SecretStore", Namespace: ns, Name: "approle", Server: "https://vault:8200", Login: "appRole"},
			{Kind: "SecretStore", Namespace: ns, Name: "vault", Server: "https://vault:8200", Login: "kubernetes", Mount: "kubernetes-eu-1", Role: "eso"}},
		Roles: []Role{
			{Mount: "kubernetes-eu-1", Name: "eso", BlastRadius: events.BlastRadius{
				Stores:          []events.ObjectRef{{Kind: "SecretStore", Namespace: ns, Name: "vault"}},
				ExternalSecrets: []events.ObjectRef{{Kind: "ExternalSecret", Namespace: ns, Name: "regcred"}},
				Secrets:         []events.ObjectRef{{Kind: "Secret", Namespace: ns, Name: "regcred"}}, Workloads: app}},
			{Mount: "kubernetes-eu-1", Name: "eso-shared", BlastRadius: events.BlastRadius{
				Stores:          []events.ObjectRef{{Kind: "ClusterSecretStore", Name: "shared"}},
				ExternalSecrets: []events.ObjectRef{{Kind: "ExternalSecret", Namespace: ns, Name: "shared"}},
				Secrets:         []events.ObjectRef{{Kind: "Secret", Namespace: ns, Name: "shared"}}, Workloads: app}},
		}}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("got\n%s\nwant\n%s", g, w)
	}
}

// TestInventorySize measures the encoded inventory of 2,000 and 10,000 ExternalSecrets
// (docs/inventory.md): the larger must fit NATS's default max_payload with room to spare.
func TestInventorySize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n      int
		random bool
	}{{2000, false}, {10000, false}, {2000, true}, {10000, true}} {
		n := tc.n
		inv := FromModel("prod-eu-1", synthCluster("prod-eu-1", n, 20, tc.random))
		inv.PublishedAt = time.Now().UTC()
		raw, _ := json.Marshal(inv)
		start := time.Now()
		b, err := Encode(inv, DefaultMaxBytes)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("%d ExternalSecrets (random names: %t; %d stores, %d roles): %d bytes JSON, %d bytes gzip (%.0f%% of 1 MiB), encoded in %s",
			n, tc.random, len(inv.Stores), len(inv.Roles), len(raw), len(b), 100*float64(len(b))/DefaultMaxBytes, took.Round(time.Millisecond))
		if n == 10000 && len(b) > DefaultMaxBytes/2 {
			t.Errorf("10,000 ExternalSecrets encode to %d bytes, more than half of NATS's default max payload", len(b))
		}
	}
}

// BenchmarkInventoryImpact: the guard's lookup over 50 clusters of 2,000 ExternalSecrets each
// (issue 16's target: ≤ 1 ms). "one role" is a delete of a policy one team's role references;
// "shared role" one every cluster's store uses (the worst case: 50 radii); "three roles" a policy
// three roles reference, in one cluster, merged.
func BenchmarkInventoryImpact(b *testing.B) {
	const clusters, perCluster = 50, 2000
	all := map[string]*cluster{}
	for i := range clusters {
		name := fmt.Sprintf("cluster-%02d", i)
		m := synthCluster(name, perCluster, 20)
		// Every cluster also has a store using one shared role.
		inv := FromModel(name, m)
		shared := FromModel(name, chain.NewModel(&chain.Objects{Stores: []*chain.Store{vaultStore("platform", "shared", "https://vault", "kubernetes", "eso-platform")},
			ExternalSecrets: []*chain.ExternalSecret{{ObjectMeta: metav1.ObjectMeta{Namespace: "platform", Name: "regcred"}, Spec: chain.ExternalSecretSpec{SecretStoreRef: chain.StoreRef{Name: "shared"}}}}}))
		inv.Roles, inv.Stores = append(inv.Roles, shared.Roles...), append(inv.Stores, shared.Stores...)
		all[name] = newCluster(inv, time.Now().Add(time.Hour))
	}
	ix := newIndex(all)
	for name, roles := range map[string][]events.RoleRef{
		"one role":    {{Mount: "kubernetes-cluster-17", Name: "eso-team-042"}},
		"shared role": {{Mount: "kubernetes", Name: "eso-platform"}},
		"three roles": {{Mount: "kubernetes-cluster-17", Name: "eso-team-001"}, {Mount: "kubernetes-cluster-17", Name: "eso-team-002"}, {Mount: "kubernetes-cluster-17", Name: "eso-team-003"}},
	} {
		b.Run(name, func(b *testing.B) {
			now := time.Now()
			for b.Loop() {
				if len(ix.impact(roles, now)) == 0 {
					b.Fatal("no impact")
				}
			}
		})
	}
}
