package inventory

import (
	"fmt"
	"math/rand/v2"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credchain/credchain/internal/chain"
)

// synthCluster is a cluster's chain of n ExternalSecrets as platform teams lay it out: teams of
// perTeam ExternalSecrets, each team a namespace with one SecretStore logging in with its own role
// on the cluster's mount (kubernetes-<cluster>), each ExternalSecret writing a pull secret one
// Deployment uses; a Secret also comes in through the team's ServiceAccount.
//
// With random names each name also ends in a random suffix (as generated names do), which
// compresses worse: the pessimistic size.
func synthCluster(name string, n, perTeam int, random ...bool) *chain.Model {
	o := &chain.Objects{}
	rnd := rand.New(rand.NewPCG(1, 2))
	suffix := func() string {
		if len(random) == 0 || !random[0] {
			return ""
		}
		return fmt.Sprintf("-%08x", rnd.Uint32())
	}
	team := ""
	for i := range n {
		if i%perTeam == 0 {
			team = fmt.Sprintf("team-%03d", i/perTeam) + suffix()
		}
		if i%perTeam == 0 {
			o.Stores = append(o.Stores, vaultStore(team, "vault-backend", "https://vault.platform.example.com:8200", "kubernetes-"+name, "eso-"+team))
			o.AddServiceAccount(team, "default", []string{"regcred-shared"})
		}
		svc := fmt.Sprintf("svc-%05d", i) + suffix()
		o.ExternalSecrets = append(o.ExternalSecrets, &chain.ExternalSecret{
			ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: svc + "-regcred"},
			Spec:       chain.ExternalSecretSpec{SecretStoreRef: chain.StoreRef{Name: "vault-backend"}, Target: chain.ExternalSecretTarget{Name: "regcred-" + svc}}})
		o.Workloads = append(o.Workloads, &chain.Workload{Kind: "Deployment", Namespace: team, Name: svc,
			PullSecrets: []string{"regcred-" + svc}, ServiceAccount: "default", Inherits: true})
	}
	return chain.NewModel(o)
}

func vaultStore(ns, name, server, mount, role string) *chain.Store {
	return &chain.Store{Kind: chain.KindSecretStore, Namespace: ns, Name: name, Status: &chain.StoreStatus{},
		Spec: &chain.StoreSpec{Provider: chain.StoreProvider{Names: []string{"vault"}, Vault: &chain.VaultProvider{Server: server,
			Auth: &chain.VaultAuth{Kubernetes: &chain.VaultKubernetesAuth{MountPath: mount, Role: role}}}}}}
}
