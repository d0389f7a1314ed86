package chain

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ESOGroup is the API group External Secrets Operator serves its objects in.
const ESOGroup = "external-secrets.io"

// Kinds of ESO's stores, as spec.secretStoreRef.kind names them.
const (
	KindSecretStore        = "SecretStore"
	KindClusterSecretStore = "ClusterSecretStore"
)

// ESOVersions are the ESO API versions credchain understands, most preferred first. ESO ≥ 0.17
// serves only v1; 0.10–0.16 serve both, with the same shape for every field read here.
var ESOVersions = []string{"v1", "v1beta1"}

// AddToScheme registers ExternalSecret, SecretStore and ClusterSecretStore (and their lists) under
// ESO's group at version. Only one version may be registered per scheme: the informer cache maps a Go
// type to exactly one GVK.
func AddToScheme(s *runtime.Scheme, version string) {
	gv := schema.GroupVersion{Group: ESOGroup, Version: version}
	s.AddKnownTypeWithName(gv.WithKind("ExternalSecret"), &ExternalSecret{})
	s.AddKnownTypeWithName(gv.WithKind("ExternalSecretList"), &ExternalSecretList{})
	s.AddKnownTypeWithName(gv.WithKind(KindSecretStore), &SecretStore{})
	s.AddKnownTypeWithName(gv.WithKind(KindSecretStore+"List"), &SecretStoreList{})
	s.AddKnownTypeWithName(gv.WithKind(KindClusterSecretStore), &ClusterSecretStore{})
	s.AddKnownTypeWithName(gv.WithKind(KindClusterSecretStore+"List"), &ClusterSecretStoreList{})
	metav1.AddToGroupVersion(s, gv)
}
