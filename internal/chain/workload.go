package chain

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WorkloadKinds are the kinds whose pods pull with the chain's Secrets, keyed by kind, valued by the
// JSON path of their pod spec (denials name it so the reader knows which field to look at). The
// webhook checks exactly these; the blast radius and `check` report exactly these.
var WorkloadKinds = map[string]string{
	"Deployment":  "spec.template.spec",
	"StatefulSet": "spec.template.spec",
	"DaemonSet":   "spec.template.spec",
	"ReplicaSet":  "spec.template.spec",
	"Job":         "spec.template.spec",
	"CronJob":     "spec.jobTemplate.spec.template.spec",
	"Pod":         "spec",
	// Older than ReplicaSet and still served; a pod template like the others.
	"ReplicationController": "spec.template.spec",
}

// Workload is an object that makes pods, reduced to what the chain needs.
type Workload struct {
	Kind, Namespace, Name string
	// PullSecrets are the pod spec's own imagePullSecrets, in order.
	PullSecrets []string
	// ServiceAccount is the pods' account, "default" when unset (as the API server does).
	ServiceAccount string
	// Inherits is whether its pods receive the ServiceAccount's pull secrets when they name none:
	// true for pod templates and for a Pod not yet admitted (a manifest), false for a Pod the API
	// server has admitted (its ServiceAccount admission already copied them in).
	Inherits bool
	// ControlledBy is the kind of its controller when that is a workload kind too (a Deployment's
	// ReplicaSet, a CronJob's Job, a ReplicaSet's Pod): such objects are reported through their
	// controller, not on their own, so one Deployment is one line, not three.
	ControlledBy string
}

// Ref is the workload as a reference.
func (w *Workload) Ref() Ref { return Ref{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name} }

// Ref names one Kubernetes object.
type Ref struct{ Kind, Namespace, Name string }

// String is "Kind ns/name", or "Kind name" for a cluster-scoped object.
func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// PullSecrets is the pull-secret rule of Kubernetes, in one place: pods carry their spec's own
// imagePullSecrets; only when they name none, and only if they are still to be admitted (inherits),
// does the ServiceAccount admission plugin copy in the account's, which saPullSecrets returns.
func PullSecrets(own []string, inherits bool, saPullSecrets func() []string) (names []string, inherited bool) {
	if len(own) > 0 || !inherits {
		return own, false
	}
	return saPullSecrets(), true
}

// WorkloadOf reduces a typed object of one of WorkloadKinds to a Workload; ok is false for any
// other object. admitted says whether a Pod comes from the API server (its pull secrets are final)
// rather than from a manifest.
func WorkloadOf(obj client.Object, admitted bool) (w *Workload, ok bool) {
	var spec *corev1.PodSpec
	kind := ""
	switch o := obj.(type) {
	case *appsv1.Deployment:
		kind, spec = "Deployment", &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		kind, spec = "StatefulSet", &o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		kind, spec = "DaemonSet", &o.Spec.Template.Spec
	case *appsv1.ReplicaSet:
		kind, spec = "ReplicaSet", &o.Spec.Template.Spec
	case *batchv1.Job:
		kind, spec = "Job", &o.Spec.Template.Spec
	case *batchv1.CronJob:
		kind, spec = "CronJob", &o.Spec.JobTemplate.Spec.Template.Spec
	case *corev1.ReplicationController:
		if o.Spec.Template == nil {
			return nil, false
		}
		kind, spec = "ReplicationController", &o.Spec.Template.Spec
	case *corev1.Pod:
		kind, spec = "Pod", &o.Spec
	default:
		return nil, false
	}
	w = &Workload{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(),
		ServiceAccount: serviceAccountName(spec), Inherits: kind != "Pod" || !admitted}
	for _, r := range spec.ImagePullSecrets {
		w.PullSecrets = append(w.PullSecrets, r.Name)
	}
	if c := metav1.GetControllerOfNoCopy(obj); c != nil {
		if _, isWorkload := WorkloadKinds[c.Kind]; isWorkload {
			w.ControlledBy = c.Kind
		}
	}
	return w, true
}

// serviceAccountName is the pod spec's account as the API server resolves it: serviceAccountName,
// else the deprecated serviceAccount alias, else "default".
func serviceAccountName(spec *corev1.PodSpec) string {
	switch {
	case spec.ServiceAccountName != "":
		return spec.ServiceAccountName
	case spec.DeprecatedServiceAccount != "":
		return spec.DeprecatedServiceAccount
	}
	return "default"
}

// WorkloadObjects returns one empty object of each of WorkloadKinds, for informers and lists.
func WorkloadObjects() []client.Object {
	return []client.Object{&appsv1.Deployment{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}, &appsv1.ReplicaSet{},
		&batchv1.Job{}, &batchv1.CronJob{}, &corev1.ReplicationController{}, &corev1.Pod{}}
}

// WorkloadLists returns one empty list of each of WorkloadKinds.
func WorkloadLists() []client.ObjectList {
	return []client.ObjectList{&appsv1.DeploymentList{}, &appsv1.StatefulSetList{}, &appsv1.DaemonSetList{},
		&appsv1.ReplicaSetList{}, &batchv1.JobList{}, &batchv1.CronJobList{}, &corev1.ReplicationControllerList{},
		&corev1.PodList{}}
}
