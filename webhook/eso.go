package webhook

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ESOGroup is the API group External Secrets Operator serves ExternalSecrets in.
const ESOGroup = "external-secrets.io"

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
	RefreshPolicy string `json:"refreshPolicy,omitempty"`
	Target        struct {
		// Name of the Secret ESO writes; empty means the ExternalSecret's own name.
		Name string `json:"name,omitempty"`
		// CreationPolicy: Owner (default) and Orphan create and own the Secret; Merge writes its
		// keys into a Secret that must already exist; None writes nothing.
		CreationPolicy string `json:"creationPolicy,omitempty"`
	} `json:"target,omitempty"`
	SecretStoreRef struct {
		Name string `json:"name,omitempty"`
		Kind string `json:"kind,omitempty"`
	} `json:"secretStoreRef,omitempty"`
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
	CreationMerge = "Merge"
	CreationNone  = "None"
)

// Writes reports whether this ExternalSecret writes its target Secret at all: not with
// creationPolicy None, and not once it is being deleted.
func (es *ExternalSecret) Writes() bool {
	return es.Spec.Target.CreationPolicy != CreationNone && es.DeletionTimestamp == nil
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

// ESOVersions are the ExternalSecret API versions credchain understands, most preferred first.
// ESO ≥ 0.17 serves only v1; 0.10–0.16 serve both.
var ESOVersions = []string{"v1", "v1beta1"}

// AddToScheme registers ExternalSecret under group/version. Only one version may be registered per
// scheme: the informer cache maps a Go type to exactly one GVK.
func AddToScheme(s *runtime.Scheme, version string) {
	gv := schema.GroupVersion{Group: ESOGroup, Version: version}
	s.AddKnownTypeWithName(gv.WithKind("ExternalSecret"), &ExternalSecret{})
	s.AddKnownTypeWithName(gv.WithKind("ExternalSecretList"), &ExternalSecretList{})
	metav1.AddToGroupVersion(s, gv)
}
