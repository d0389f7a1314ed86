package chain

import (
	"encoding/json"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// SecretStore is the slice of ESO's SecretStore the chain reads: which provider, and for Vault, how
// ESO reaches it and logs in. Like ExternalSecret it is a local type, decoding only these fields.
type SecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   StoreSpec   `json:"spec,omitempty"`
	Status StoreStatus `json:"status,omitempty"`
}

// ClusterSecretStore is SecretStore's cluster-scoped twin (same spec). It is its own Go type because
// the informer cache maps one Go type to one kind.
type ClusterSecretStore SecretStore

// StoreSpec is spec of either store kind.
type StoreSpec struct {
	Provider StoreProvider `json:"provider"`
}

// StoreStatus is the store's status: ESO validates a store (for Vault, a token lookup-self) and
// reports Ready.
type StoreStatus struct {
	Conditions []ExternalSecretCondition `json:"conditions,omitempty"`
}

// StoreProvider is spec.provider. Only Vault is modelled; Names lists every provider key set, so a
// store of another provider is reported as "not checked" by name.
type StoreProvider struct {
	Vault *VaultProvider `json:"vault,omitempty"`
	Names []string       `json:"-"`
}

// UnmarshalJSON decodes the Vault provider and records which providers are set.
func (p *StoreProvider) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	p.Names = p.Names[:0]
	for k, v := range all {
		if string(v) != "null" {
			p.Names = append(p.Names, k)
		}
	}
	slices.Sort(p.Names)
	p.Vault = nil
	if v, ok := all["vault"]; ok && string(v) != "null" {
		p.Vault = &VaultProvider{}
		return json.Unmarshal(v, p.Vault)
	}
	return nil
}

// VaultProvider is spec.provider.vault (ESO v0.16.2).
type VaultProvider struct {
	Server string `json:"server"`
	// Path is the KV mount; unset means the key carries the mount as its first segment.
	Path *string `json:"path,omitempty"`
	// Version is the KV engine version, "v1" or "v2" (the CRD's default).
	Version string `json:"version,omitempty"`
	// Namespace is the Vault Enterprise namespace requests are made in.
	Namespace *string    `json:"namespace,omitempty"`
	Auth      *VaultAuth `json:"auth,omitempty"`
}

// KV versions of VaultProvider.Version.
const (
	VaultKVv1 = "v1"
	VaultKVv2 = "v2"
)

// KVVersion is Version with the CRD's default applied.
func (v *VaultProvider) KVVersion() string {
	if v.Version == "" {
		return VaultKVv2
	}
	return v.Version
}

// VaultAuth is spec.provider.vault.auth. Kubernetes auth is modelled; the others are recorded by
// presence only, so LoginMethod can say which one ESO logs in with.
type VaultAuth struct {
	// Namespace, when set, is the Vault namespace the login is made in (else the provider's).
	Namespace      *string              `json:"namespace,omitempty"`
	Kubernetes     *VaultKubernetesAuth `json:"kubernetes,omitempty"`
	TokenSecretRef json.RawMessage      `json:"tokenSecretRef,omitempty"`
	AppRole        json.RawMessage      `json:"appRole,omitempty"`
	Jwt            json.RawMessage      `json:"jwt,omitempty"`
	Cert           json.RawMessage      `json:"cert,omitempty"`
	Iam            json.RawMessage      `json:"iam,omitempty"`
	UserPass       json.RawMessage      `json:"userPass,omitempty"`
	Ldap           json.RawMessage      `json:"ldap,omitempty"`
}

// VaultKubernetesAuth is spec.provider.vault.auth.kubernetes.
type VaultKubernetesAuth struct {
	// MountPath is the Kubernetes auth mount; the CRD defaults it to "kubernetes".
	MountPath string `json:"mountPath,omitempty"`
	Role      string `json:"role"`
	// ServiceAccountRef is the account ESO requests a token for; unset means ESO's own account
	// (or the token in SecretRef).
	ServiceAccountRef *ServiceAccountRef `json:"serviceAccountRef,omitempty"`
	SecretRef         json.RawMessage    `json:"secretRef,omitempty"`
}

// ServiceAccountRef is ESO's ServiceAccountSelector. Namespace is only honoured on a
// ClusterSecretStore; a SecretStore's account is in the store's namespace.
type ServiceAccountRef struct {
	Name      string   `json:"name"`
	Namespace *string  `json:"namespace,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
}

// Mount is the Kubernetes auth mount with the CRD's default applied and slashes trimmed, as Vault
// names it in auth/<mount>/role/<role>.
func (k *VaultKubernetesAuth) Mount() string {
	m := strings.Trim(k.MountPath, "/")
	if m == "" {
		return "kubernetes"
	}
	return m
}

// Store is either store kind, as the chain sees it.
type Store struct {
	Kind      string // KindSecretStore or KindClusterSecretStore
	Namespace string // "" for a ClusterSecretStore
	Name      string
	Spec      *StoreSpec
	Status    *StoreStatus
}

// Key is the store's identity: kind, namespace, name.
func (s *Store) Key() StoreKey { return StoreKey{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name} }

// Vault returns the store's Vault provider, nil for another provider.
func (s *Store) Vault() *VaultProvider { return s.Spec.Provider.Vault }

// KubernetesRole is the Vault role the store logs in with through Kubernetes auth: its mount and
// name; ok is false when the store is not Vault or ESO logs in with another method (LoginMethod).
func (s *Store) KubernetesRole() (ref RoleRef, ok bool) {
	if LoginMethod(s) != "kubernetes" {
		return RoleRef{}, false // not Vault, or another method ESO prefers is set too
	}
	k := s.Vault().Auth.Kubernetes
	return RoleRef{Mount: k.Mount(), Name: k.Role}, true
}

// StoreKey identifies a store; Namespace is "" for a ClusterSecretStore.
type StoreKey struct{ Kind, Namespace, Name string }

// RoleRef is a Kubernetes auth role: its mount (no slashes) and name.
type RoleRef struct{ Mount, Name string }

// StoreFromSecretStore and StoreFromClusterSecretStore view either kind as a Store.
func StoreFromSecretStore(s *SecretStore) *Store {
	return &Store{Kind: KindSecretStore, Namespace: s.Namespace, Name: s.Name, Spec: &s.Spec, Status: &s.Status}
}

// StoreFromClusterSecretStore is StoreFromSecretStore for the cluster-scoped kind.
func StoreFromClusterSecretStore(s *ClusterSecretStore) *Store {
	return &Store{Kind: KindClusterSecretStore, Name: s.Name, Spec: &s.Spec, Status: &s.Status}
}

// DeepCopyObject implements runtime.Object.
func (s *SecretStore) DeepCopyObject() runtime.Object { return s.DeepCopy() }

// DeepCopy returns a deep copy.
func (s *SecretStore) DeepCopy() *SecretStore {
	if s == nil {
		return nil
	}
	out := &SecretStore{TypeMeta: s.TypeMeta, Spec: s.Spec.deepCopy(), Status: s.Status.deepCopy()}
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return out
}

// DeepCopyObject implements runtime.Object.
func (s *ClusterSecretStore) DeepCopyObject() runtime.Object {
	if s == nil {
		return (*ClusterSecretStore)(nil)
	}
	return (*ClusterSecretStore)((*SecretStore)(s).DeepCopy())
}

func (s StoreStatus) deepCopy() StoreStatus {
	out := StoreStatus{Conditions: slices.Clone(s.Conditions)}
	for i := range s.Conditions {
		s.Conditions[i].LastTransitionTime.DeepCopyInto(&out.Conditions[i].LastTransitionTime)
	}
	return out
}

func (s StoreSpec) deepCopy() StoreSpec {
	out := StoreSpec{Provider: StoreProvider{Names: slices.Clone(s.Provider.Names)}}
	v := s.Provider.Vault
	if v == nil {
		return out
	}
	nv := *v
	nv.Path, nv.Namespace = clonePtr(v.Path), clonePtr(v.Namespace)
	if a := v.Auth; a != nil {
		na := VaultAuth{Namespace: clonePtr(a.Namespace), TokenSecretRef: slices.Clone(a.TokenSecretRef),
			AppRole: slices.Clone(a.AppRole), Jwt: slices.Clone(a.Jwt), Cert: slices.Clone(a.Cert),
			Iam: slices.Clone(a.Iam), UserPass: slices.Clone(a.UserPass), Ldap: slices.Clone(a.Ldap)}
		if k := a.Kubernetes; k != nil {
			nk := *k
			nk.SecretRef = slices.Clone(k.SecretRef)
			if r := k.ServiceAccountRef; r != nil {
				nr := *r
				nr.Namespace, nr.Audiences = clonePtr(r.Namespace), slices.Clone(r.Audiences)
				nk.ServiceAccountRef = &nr
			}
			na.Kubernetes = &nk
		}
		nv.Auth = &na
	}
	out.Provider.Vault = &nv
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// SecretStoreList is a list of SecretStores.
type SecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretStore `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (l *SecretStoreList) DeepCopyObject() runtime.Object {
	out := &SecretStoreList{TypeMeta: l.TypeMeta, Items: make([]SecretStore, len(l.Items))}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range l.Items {
		out.Items[i] = *l.Items[i].DeepCopy()
	}
	return out
}

// ClusterSecretStoreList is a list of ClusterSecretStores.
type ClusterSecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterSecretStore `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (l *ClusterSecretStoreList) DeepCopyObject() runtime.Object {
	out := &ClusterSecretStoreList{TypeMeta: l.TypeMeta, Items: make([]ClusterSecretStore, len(l.Items))}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range l.Items {
		out.Items[i] = *l.Items[i].DeepCopyObject().(*ClusterSecretStore)
	}
	return out
}
