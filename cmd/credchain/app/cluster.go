package app

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/kube"
	"github.com/credchain/credchain/webhook"
)

// clusterClient is a direct (uncached) client for the cluster, with ESO's types at the version
// the cluster serves, and the cluster's address for messages: what check and explain read with.
func clusterClient(kubeconfig string) (client.Reader, string, error) {
	rc, err := kube.RestConfig(kubeconfig)
	if err != nil {
		return nil, "", &badInputError{fmt.Errorf("finding the cluster: %w", err)}
	}
	version, err := webhook.DiscoverESOVersion(rc)
	if err != nil {
		return nil, "", &badInputError{fmt.Errorf("reading the cluster at %s: %w", rc.Host, err)}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, "", fmt.Errorf("internal error: %w", err)
	}
	chain.AddToScheme(scheme, version)
	c, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", &badInputError{fmt.Errorf("reading the cluster at %s: %w", rc.Host, err)}
	}
	return c, rc.Host, nil
}
