// Package kube finds the Kubernetes cluster for every credchain command the same way.
package kube

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
)

// InCluster names the pod's own cluster explicitly (its ServiceAccount token and the
// KUBERNETES_SERVICE_* environment), skipping any kubeconfig.
const InCluster = "in-cluster"

// RestConfig finds the cluster the way kubectl and controller-runtime do: an explicit kubeconfig
// path, else $KUBECONFIG, in-cluster, ~/.kube/config. InCluster selects in-cluster config only.
func RestConfig(kubeconfig string) (*rest.Config, error) {
	switch kubeconfig {
	case "":
		return config.GetConfig()
	case InCluster:
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}

// Namespace is the namespace kubectl would use with kubeconfig (as RestConfig takes it): the current
// context's, else the pod's own when in-cluster, else "default". Commands that take -n default to it,
// so `credchain explain deployment/x` means what `kubectl get deployment/x` means.
func Namespace(kubeconfig string) string {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	switch kubeconfig {
	case "":
	case InCluster:
		rules = &clientcmd.ClientConfigLoadingRules{} // no files: clientcmd falls back to the pod's namespace
	default:
		rules.ExplicitPath = kubeconfig
	}
	ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}
