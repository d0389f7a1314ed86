package chain

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ExternalSecret is the slice of ESO's ExternalSecret that the webhook decides on. It is a local type
// on purpose: ESO's Go module pins older Kubernetes and controller-runtime releases, and the informer
// only decodes the fields declared here, which keeps the cache small (10,000 ExternalSecrets cost a few
// MB, not the hundreds a full unstructured copy would).
//
// The same shape is served by external-secrets.io/v1 and v1beta1 for every field read here.
type ExternalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ExternalSecretSpec   `json:"spec,omitempty"`
	Status ExternalSecretStatus `json:"status,omitempty"`
}

// ExternalSecretSpec holds the spec fields the decision reads.
type ExternalSecretSpec struct {
	// RefreshInterval is ESO's refresh period; zero (or "0") means "never refresh".
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
	// RefreshPolicy is Periodic (the default, every RefreshInterval), CreatedOnce or OnChange (ESO
	// ≥ 0.16): only a periodic ExternalSecret's refreshTime says how fresh its credential is.
	RefreshPolicy  string               `json:"refreshPolicy,omitempty"`
	Target         ExternalSecretTarget `json:"target,omitempty"`
	SecretStoreRef StoreRef             `json:"secretStoreRef,omitempty"`
	// Data and DataFrom are what ESO fetches from the provider: what `check` evaluates Vault's ACL
	// against. The webhook's informer drops both (its decision never reads them), so its cache
	// stays small.
	Data     []ExternalSecretData     `json:"data,omitempty"`
	DataFrom []ExternalSecretDataFrom `json:"dataFrom,omitempty"`
}

// StoreRef names a SecretStore or ClusterSecretStore; Kind defaults to SecretStore.
type StoreRef struct {
	Name string `json:"name,omitempty"`
	Kind string `json:"kind,omitempty"`
}

// ExternalSecretData is one spec.data item: one key fetched into one Secret key.
type ExternalSecretData struct {
	SecretKey string    `json:"secretKey,omitempty"`
	RemoteRef RemoteRef `json:"remoteRef"`
	// SourceRef, when set, fetches this item from another store or from a generator.
	SourceRef *SourceRef `json:"sourceRef,omitempty"`
}

// ExternalSecretDataFrom is one spec.dataFrom item: a whole secret (extract) or a search (find).
type ExternalSecretDataFrom struct {
	Extract   *RemoteRef `json:"extract,omitempty"`
	Find      *Find      `json:"find,omitempty"`
	SourceRef *SourceRef `json:"sourceRef,omitempty"`
}

// RemoteRef is ESO's ExternalSecretDataRemoteRef: the provider's key and how to read it.
type RemoteRef struct {
	Key string `json:"key"`
	// Property is a field inside the secret; ESO reads the whole secret either way.
	Property string `json:"property,omitempty"`
	// Version selects a KV v2 version: ESO sends it as ?version=N.
	Version string `json:"version,omitempty"`
	// MetadataPolicy Fetch reads the KV v2 metadata endpoint instead of the data.
	MetadataPolicy string `json:"metadataPolicy,omitempty"`
}

// Find is spec.dataFrom[].find: secrets found by name or tags under Path.
type Find struct {
	Path *string `json:"path,omitempty"`
	Name *struct {
		RegExp string `json:"regexp,omitempty"`
	} `json:"name,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

// SourceRef is a per-item store or generator override.
type SourceRef struct {
	StoreRef *StoreRef `json:"storeRef,omitempty"`
	// GeneratorRef makes the item come from a generator, not a store.
	GeneratorRef *struct {
		Kind string `json:"kind,omitempty"`
		Name string `json:"name,omitempty"`
	} `json:"generatorRef,omitempty"`
}

// Store returns the store this item is read from: its own sourceRef's, else the ExternalSecret's;
// nil for a generator.
func (s *SourceRef) Store(def StoreRef) *StoreRef {
	switch {
	case s == nil:
		return &def
	case s.GeneratorRef != nil:
		return nil
	case s.StoreRef != nil && s.StoreRef.Name != "": // data[].sourceRef.storeRef is not a pointer in ESO
		return s.StoreRef
	}
	return &def
}

// ExternalSecretTarget is spec.target: which Secret ESO writes, and how.
type ExternalSecretTarget struct {
	// Name of the Secret ESO writes; empty means the ExternalSecret's own name.
	Name string `json:"name,omitempty"`
	// CreationPolicy: Owner (default) creates the Secret and sets itself as its controller; Orphan
	// creates it without an owner; Merge writes its keys into a Secret that must already exist;
	// CreateOrMerge (newer ESO) creates or merges without owning; None writes nothing.
	CreationPolicy string `json:"creationPolicy,omitempty"`
	// Template, when set, shapes the Secret; its type is what makes a Secret usable as a pull secret.
	Template *ExternalSecretTemplate `json:"template,omitempty"`
	// Manifest (newer ESO) makes the target a resource of another kind: then no Secret is written.
	Manifest *ExternalSecretManifest `json:"manifest,omitempty"`
}

// ExternalSecretTemplate is the part of spec.target.template the decision reads.
type ExternalSecretTemplate struct {
	// Type is the Secret's type; empty means Opaque for a Secret ESO creates.
	Type string `json:"type,omitempty"`
}

// ExternalSecretManifest is spec.target.manifest: a non-Secret target.
type ExternalSecretManifest struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// ExternalSecretStatus holds the status fields the decision reads.
type ExternalSecretStatus struct {
	RefreshTime metav1.Time `json:"refreshTime,omitempty"`
	Binding     struct {
		Name string `json:"name,omitempty"`
	} `json:"binding,omitempty"`
	Conditions []ExternalSecretCondition `json:"conditions,omitempty"`
}

// ExternalSecretCondition is one of ESO's status conditions (Ready, Deleted).
type ExternalSecretCondition struct {
	Type               string      `json:"type"`
	Status             string      `json:"status"`
	Reason             string      `json:"reason,omitempty"`
	Message            string      `json:"message,omitempty"`
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
}

// TargetName is the Secret this ExternalSecret writes: spec.target.name, defaulting to its own name.
func (es *ExternalSecret) TargetName() string {
	if es.Spec.Target.Name != "" {
		return es.Spec.Target.Name
	}
	return es.Name
}

// Creation policies of spec.target.creationPolicy that change what an ExternalSecret does to its Secret.
const (
	CreationOwner         = "Owner"
	CreationOrphan        = "Orphan"
	CreationMerge         = "Merge"
	CreationCreateOrMerge = "CreateOrMerge"
	CreationNone          = "None"
)

// Writes reports whether this ExternalSecret writes its target Secret at all: not with
// creationPolicy None, not with a non-Secret spec.target.manifest, and not once it is being deleted.
func (es *ExternalSecret) Writes() bool {
	return es.Spec.Target.CreationPolicy != CreationNone && es.Spec.Target.Manifest == nil && es.DeletionTimestamp == nil
}

// Owns reports whether ESO makes this ExternalSecret the Secret's controller (creationPolicy Owner,
// the default). ESO v0.16.2 then fails every other ExternalSecret that writes the same Secret with
// "target is owned by another ExternalSecret" (it refuses to write a Secret another ExternalSecret
// controls, whatever the writer's own policy).
func (es *ExternalSecret) Owns() bool {
	p := es.Spec.Target.CreationPolicy
	return p == "" || p == CreationOwner
}

// Secret types the kubelet reads as registry credentials; it ignores pull secrets of any other type.
const (
	SecretTypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	SecretTypeDockercfg        = "kubernetes.io/dockercfg"
)

// SecretType is the type of the Secret ESO writes, "" when it cannot be told from the
// ExternalSecret: a Merge writes into a Secret whose type someone else chose.
func (es *ExternalSecret) SecretType() string {
	if t := es.Spec.Target.Template; t != nil && t.Type != "" {
		return t.Type
	}
	switch es.Spec.Target.CreationPolicy {
	case CreationMerge, CreationCreateOrMerge:
		return ""
	}
	return "Opaque" // ESO creates an Opaque Secret when no template sets a type
}

// NeverSynced reports whether ESO has never written this ExternalSecret's Secret: no refresh time and
// no binding. ESO sets both on its first successful sync.
func (es *ExternalSecret) NeverSynced() bool {
	return es.Status.RefreshTime.IsZero() && es.Status.Binding.Name == ""
}

// Periodic reports whether ESO refreshes it every RefreshInterval (refreshPolicy unset or Periodic).
func (es *ExternalSecret) Periodic() bool {
	return es.Spec.RefreshPolicy == "" || es.Spec.RefreshPolicy == "Periodic"
}

// Ready returns the Ready condition, or nil when ESO has not reported one yet.
func (es *ExternalSecret) Ready() *ExternalSecretCondition {
	for i := range es.Status.Conditions {
		if es.Status.Conditions[i].Type == "Ready" {
			return &es.Status.Conditions[i]
		}
	}
	return nil
}

// RefreshPeriod is spec.refreshInterval, zero when unset or "0".
func (es *ExternalSecret) RefreshPeriod() time.Duration {
	if es.Spec.RefreshInterval == nil {
		return 0
	}
	return es.Spec.RefreshInterval.Duration
}

// DeepCopyObject implements runtime.Object.
func (es *ExternalSecret) DeepCopyObject() runtime.Object { return es.DeepCopy() }

// DeepCopy returns a deep copy.
func (es *ExternalSecret) DeepCopy() *ExternalSecret {
	if es == nil {
		return nil
	}
	out := *es
	es.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if es.Spec.RefreshInterval != nil {
		d := *es.Spec.RefreshInterval
		out.Spec.RefreshInterval = &d
	}
	if es.Spec.Target.Template != nil {
		t := *es.Spec.Target.Template
		out.Spec.Target.Template = &t
	}
	if es.Spec.Target.Manifest != nil {
		m := *es.Spec.Target.Manifest
		out.Spec.Target.Manifest = &m
	}
	out.Spec.Data = deepCopyData(es.Spec.Data)
	out.Spec.DataFrom = deepCopyDataFrom(es.Spec.DataFrom)
	es.Status.RefreshTime.DeepCopyInto(&out.Status.RefreshTime)
	if es.Status.Conditions != nil {
		out.Status.Conditions = make([]ExternalSecretCondition, len(es.Status.Conditions))
		copy(out.Status.Conditions, es.Status.Conditions)
		for i := range out.Status.Conditions {
			es.Status.Conditions[i].LastTransitionTime.DeepCopyInto(&out.Status.Conditions[i].LastTransitionTime)
		}
	}
	return &out
}

// StoreKind is the kind of the store the ExternalSecret names: SecretStore unless set.
func (es *ExternalSecret) StoreKind() string {
	if es.Spec.SecretStoreRef.Kind == "" {
		return KindSecretStore
	}
	return es.Spec.SecretStoreRef.Kind
}

// ExternalSecretList is a list of ExternalSecrets.
type ExternalSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExternalSecret `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (l *ExternalSecretList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := &ExternalSecretList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]ExternalSecret, len(l.Items))
		for i := range l.Items {
			out.Items[i] = *l.Items[i].DeepCopy()
		}
	}
	return out
}
