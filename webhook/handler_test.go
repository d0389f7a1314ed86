package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func review(op admissionv1.Operation, kind, ns string, obj, old []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: kind}, Namespace: ns, Name: "order-service",
		Operation: op, Object: runtime.RawExtension{Raw: obj}, OldObject: runtime.RawExtension{Raw: old},
	}}
}

// as sets the request's user, as the API server does from the caller's credentials.
func as(user string, r admission.Request) admission.Request {
	r.UserInfo.Username = user
	return r
}

func TestHandler(t *testing.T) {
	t.Parallel()
	failing := newES("order-service-regcred", "regcred-order-service", testNow.Add(-24*time.Hour), readyCond("False", "SecretSyncedError", "could not get secret data from provider"))
	lookup := &fakeLookup{es: map[string][]*ExternalSecret{"prod/regcred-order-service": {failing}, "staging/regcred-order-service": {failing}}}
	nsStore := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	for name, mode := range map[string]string{"staging": "warn", "sandbox": "off", "prod": "", "typo": "enfrce"} {
		_ = nsStore.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{EnforcementLabel: mode}}})
	}
	synced, notSynced := &atomic.Bool{}, &atomic.Bool{}
	synced.Store(true)
	dep := func(annotation string) []byte {
		d := deploymentFor("prod", "order-service", "", []string{"regcred-order-service"})
		if annotation != "" {
			d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": annotation}
		}
		b, _ := json.Marshal(d)
		return b
	}
	scaled := func() []byte {
		d := deploymentFor("prod", "order-service", "", []string{"regcred-order-service"})
		d.Spec.Replicas = new(int32)
		b, _ := json.Marshal(d)
		return b
	}
	// A pod of the Deployment's ReplicaSet, as the ReplicaSet controller creates it on a scale-up.
	owned := func(apiVersion, kind string, controller bool) []byte {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "order-service-7d9f-x2x4q", OwnerReferences: []metav1.OwnerReference{{
				APIVersion: apiVersion, Kind: kind, Name: "order-service-7d9f", UID: "1f0c", Controller: &controller}}},
			Spec: deploymentFor("prod", "order-service", "", []string{"regcred-order-service"}).Spec.Template.Spec,
		}
		if kind == "" {
			p.OwnerReferences = nil // a bare pod
		}
		b, _ := json.Marshal(p)
		return b
	}
	rsOfDeployment := func() []byte {
		d := deploymentFor("prod", "order-service", "", []string{"regcred-order-service"})
		yes := true
		rs := map[string]any{"metadata": map[string]any{"name": "order-service-7d9f", "namespace": "prod",
			"ownerReferences": []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "order-service", UID: "9a1b", Controller: &yes}}},
			"spec": map[string]any{"template": d.Spec.Template}}
		b, _ := json.Marshal(rs)
		return b
	}
	// A Job's labels live outside the template: changing them is an unchanged update.
	job := func(suspend bool, label string) []byte {
		d := deploymentFor("prod", "order-service", "", []string{"regcred-order-service"})
		j := map[string]any{"metadata": map[string]any{"name": "migrate", "namespace": "prod", "labels": map[string]string{"l": label}},
			"spec": map[string]any{"suspend": suspend, "template": d.Spec.Template}}
		b, _ := json.Marshal(j)
		return b
	}
	cronJob := func(suspend bool) []byte {
		d := deploymentFor("prod", "order-service", "", []string{"regcred-order-service"})
		j := map[string]any{"metadata": map[string]any{"name": "nightly", "namespace": "prod"},
			"spec": map[string]any{"suspend": suspend, "schedule": "@daily", "jobTemplate": map[string]any{"spec": map[string]any{"template": d.Spec.Template}}}}
		b, _ := json.Marshal(j)
		return b
	}
	tests := map[string]struct {
		req       admission.Request
		notSynced bool
		allowed   bool
		code      int32
		reason    Reason
		msg       string // substring of the result message or of the only warning
	}{
		"create denied":           {req: review(admissionv1.Create, "Deployment", "prod", dep(""), nil), code: http.StatusForbidden, reason: ReasonNotSynced, msg: `deployment prod/order-service: a pull secret is not backed by a synced ExternalSecret: spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service"`},
		"rollout restart denied":  {req: review(admissionv1.Update, "Deployment", "prod", dep("now"), dep("")), code: http.StatusForbidden, reason: ReasonNotSynced},
		"replicas change allowed": {req: review(admissionv1.Update, "Deployment", "prod", scaled(), dep("")), allowed: true, reason: ReasonUnchanged},
		"delete allowed":          {req: review(admissionv1.Delete, "Deployment", "prod", nil, dep("")), allowed: true, reason: ReasonNotChecked},
		"scale subresource allowed": {req: func() admission.Request {
			r := review(admissionv1.Update, "Deployment", "prod", dep("x"), dep(""))
			r.SubResource = "scale"
			return r
		}(), allowed: true, reason: ReasonNotChecked},
		"exempt namespace":                          {req: review(admissionv1.Create, "Deployment", "kube-system", dep(""), nil), allowed: true, reason: ReasonExempt},
		"off namespace":                             {req: review(admissionv1.Create, "Deployment", "sandbox", dep(""), nil), allowed: true, reason: ReasonOff},
		"warn namespace":                            {req: review(admissionv1.Create, "Deployment", "staging", dep(""), nil), allowed: true, reason: ReasonNotSynced, msg: `credchain.io/enforcement=warn, would deny: spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret staging/order-service-regcred`},
		"unknown label enforces":                    {req: review(admissionv1.Update, "Deployment", "typo", dep("now"), dep("")), code: http.StatusForbidden, reason: ReasonUnmanaged},
		"unsupported kind allowed":                  {req: review(admissionv1.Create, "ConfigMap", "prod", []byte(`{}`), nil), allowed: true, reason: ReasonNotChecked},
		"malformed object is 400":                   {req: review(admissionv1.Create, "Deployment", "prod", []byte(`{"spec":`), nil), code: http.StatusBadRequest, reason: ReasonBadRequest, msg: "decoding Deployment"},
		"no namespace is 400":                       {req: review(admissionv1.Create, "Deployment", "", dep(""), nil), code: http.StatusBadRequest, reason: ReasonBadRequest},
		"pod of a ReplicaSet: checked on its owner": {req: as("system:serviceaccount:kube-system:replicaset-controller", review(admissionv1.Create, "Pod", "prod", owned("apps/v1", "ReplicaSet", true), nil)), allowed: true, reason: ReasonControlled},
		"pod of a ReplicaSet, controllers without their own accounts":        {req: as("system:kube-controller-manager", review(admissionv1.Create, "Pod", "prod", owned("apps/v1", "ReplicaSet", true), nil)), allowed: true, reason: ReasonControlled},
		"pod of a ReplicationController":                                     {req: as("system:serviceaccount:kube-system:replication-controller", review(admissionv1.Create, "Pod", "prod", owned("v1", "ReplicationController", true), nil)), allowed: true, reason: ReasonControlled},
		"ReplicaSet of a Deployment":                                         {req: as("system:serviceaccount:kube-system:deployment-controller", review(admissionv1.Create, "ReplicaSet", "prod", rsOfDeployment(), nil)), allowed: true, reason: ReasonControlled},
		"a forged controller reference from a user is checked":               {req: as("mallory", review(admissionv1.Create, "Pod", "prod", owned("apps/v1", "ReplicaSet", true), nil)), code: http.StatusForbidden, reason: ReasonNotSynced},
		"another controller's account does not vouch for a ReplicaSet's pod": {req: as("system:serviceaccount:kube-system:job-controller", review(admissionv1.Create, "Pod", "prod", owned("apps/v1", "ReplicaSet", true), nil)), code: http.StatusForbidden, reason: ReasonNotSynced},
		"creating a suspended Job creates nothing":                           {req: review(admissionv1.Create, "Job", "prod", job(true, ""), nil), allowed: true, reason: ReasonSuspended},
		"suspending a Job is admitted":                                       {req: review(admissionv1.Update, "Job", "prod", job(true, ""), job(false, "")), allowed: true, reason: ReasonSuspended},
		"unsuspending a Job is checked":                                      {req: review(admissionv1.Update, "Job", "prod", job(false, ""), job(true, "")), code: http.StatusForbidden, reason: ReasonNotSynced},
		"unsuspending a CronJob is checked":                                  {req: review(admissionv1.Update, "CronJob", "prod", cronJob(false), cronJob(true)), code: http.StatusForbidden, reason: ReasonNotSynced},
		"a Job's unchanged update is not checked":                            {req: review(admissionv1.Update, "Job", "prod", job(false, "x"), job(false, "")), allowed: true, reason: ReasonUnchanged},
		"pod of an operator's resource is checked":                           {req: review(admissionv1.Create, "Pod", "prod", owned("argoproj.io/v1alpha1", "Rollout", true), nil), code: http.StatusForbidden, reason: ReasonNotSynced},
		"pod merely referencing a ReplicaSet":                                {req: review(admissionv1.Create, "Pod", "prod", owned("apps/v1", "ReplicaSet", false), nil), code: http.StatusForbidden, reason: ReasonNotSynced},
		"bare pod is checked":                                                {req: review(admissionv1.Create, "Pod", "prod", owned("", "", false), nil), code: http.StatusForbidden, reason: ReasonNotSynced},
		"not synced is internal error": {req: review(admissionv1.Create, "Deployment", "prod", dep(""), nil), notSynced: true,
			code: http.StatusInternalServerError, reason: ReasonNotReady, msg: "internal error: credchain's informer caches have not synced yet"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := &Handler{
				Decider:    &Decider{Lookup: lookup, Policy: Policy{Unmanaged: UnmanagedDeny, GracePeriod: 2 * time.Minute, StaleFactor: 3}},
				Namespaces: nsStore, DefaultEnforcement: EnforcementEnforce, Exempt: map[string]bool{"kube-system": true},
				Synced: synced, Now: func() time.Time { return testNow },
			}
			if tc.notSynced {
				h.Synced = notSynced
			}
			m := NewMetrics(prometheus.NewRegistry())
			res := WithMetrics(m, h.Review)(t.Context(), tc.req)
			resp := res.Response
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tc.allowed, resp.Result)
			}
			if !tc.allowed && resp.Result.Code != tc.code {
				t.Errorf("code = %d, want %d", resp.Result.Code, tc.code)
			}
			if tc.msg != "" {
				got := resp.Result.Message
				if tc.allowed {
					got = strings.Join(resp.Warnings, "\n")
				}
				if !strings.Contains(got, tc.msg) {
					t.Errorf("message %q lacks %q", got, tc.msg)
				}
			}
			// The metrics decorator saw the same decision.
			want := res.Outcome
			if got := testutil.ToFloat64(m.Decisions.WithLabelValues(kindLabel(tc.req.Kind.Kind), want, string(tc.reason))); got != 1 {
				t.Errorf("decisions{%s,%s,%s} = %v, want 1", kindLabel(tc.req.Kind.Kind), want, tc.reason, got)
			}
			if got := testutil.CollectAndCount(m.Latency); got != 1 {
				t.Errorf("latency series = %d, want 1", got)
			}
		})
	}
}
