package webhook

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Handler validates every pod-template kind on one path (/validate); a raw handler rather than a
// typed validator per kind because the check is the same for all of them and only needs the pod
// spec, which ExtractPodRefs pulls out of each kind's JSON.
//
// Its core is Review, which returns a typed Result; the metrics and events decorators work on that
// result (ReviewFunc), and AsHandler adapts the decorated function to admission.Handler once, at
// registration.
type Handler struct {
	Decider *Decider
	// Namespaces is the Namespace informer's store, read for the enforcement label.
	Namespaces toolscache.Store
	// DefaultEnforcement applies to namespaces without the label (or with an unknown value).
	DefaultEnforcement Enforcement
	// Exempt namespaces are never checked: kube-system's controllers, credchain's own namespace
	// (the webhook must be able to roll itself out even when it denies everything else) and ESO's
	// (ESO cannot back its own pull secret).
	Exempt map[string]bool
	// Synced reports whether the informers have synced. Until they have, every review is answered
	// with an error rather than from an empty cache, which would deny every workload as "unmanaged";
	// over HTTP, Unavailable answers 503 first so the registration's failurePolicy decides.
	Synced *atomic.Bool
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// Outcome labels for the decisions metric.
const (
	OutcomeAllowed = "allowed"
	OutcomeWarned  = "warned"
	OutcomeDenied  = "denied"
	OutcomeErrored = "errored"
)

// wouldDeny starts what warn mode reports instead of a denial, in warnings and in events.
const wouldDeny = EnforcementLabel + "=warn, would deny: "

// Result is one review's outcome, computed once by the core and read by every decorator.
type Result struct {
	Response admission.Response
	// Outcome is OutcomeAllowed, OutcomeWarned, OutcomeDenied or OutcomeErrored.
	Outcome string
	Reason  Reason
	// Mode is the namespace's enforcement, when the review got that far.
	Mode Enforcement
	// Message is the denial, or in warn mode the denial that was turned into warnings.
	Message string
}

// ReviewFunc is the core's signature; decorators wrap it.
type ReviewFunc func(ctx context.Context, req admission.Request) Result

// AsHandler adapts a ReviewFunc to controller-runtime's admission.Handler.
func AsHandler(f ReviewFunc) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		return f(ctx, req).Response
	})
}

var _ admission.Handler = (*Handler)(nil)

// Handle implements admission.Handler (for embedding without the decorators).
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	return h.Review(ctx, req).Response
}

func allowed(r Reason, msg string) Result {
	return Result{Response: admission.Allowed(msg), Outcome: OutcomeAllowed, Reason: r}
}

func errored(code int32, r Reason, err error) Result {
	return Result{Response: admission.Errored(code, err), Outcome: OutcomeErrored, Reason: r}
}

// Review decides one admission request.
func (h *Handler) Review(ctx context.Context, req admission.Request) Result {
	kind := req.Kind.Kind
	switch {
	case req.Operation != admissionv1.Create && req.Operation != admissionv1.Update:
		// DELETE and CONNECT are never blocked: removing a broken workload must always work.
		return allowed(ReasonNotChecked, "")
	case req.SubResource != "":
		// scale, status, ephemeralcontainers: none changes the pull secrets of new pods.
		return allowed(ReasonNotChecked, "")
	case SupportedKinds[kind] == "":
		return allowed(ReasonNotChecked, "kind "+oneLine(kind, 63)+" is not checked by credchain")
	case req.Namespace == "":
		// Fail closed on a zero-value request: every checked kind is namespaced.
		return errored(http.StatusBadRequest, ReasonBadRequest, errMissingNamespace)
	case h.Exempt[req.Namespace]:
		return allowed(ReasonExempt, "namespace "+req.Namespace+" is exempt")
	}
	if !h.Synced.Load() {
		return errored(http.StatusInternalServerError, ReasonNotReady, errNotSynced)
	}
	mode := h.enforcement(req.Namespace)
	if mode == EnforcementOff {
		return allowed(ReasonOff, "")
	}
	if req.Operation == admissionv1.Create && createdByCheckedController(kind, req.Object.Raw, req.UserInfo.Username) {
		// A ReplicaSet's pods, a Deployment's ReplicaSets...: checked on their owner (owner.go).
		return allowed(ReasonControlled, "")
	}
	refs, err := ExtractPodRefs(kind, req.Object.Raw)
	if err != nil {
		return errored(http.StatusBadRequest, ReasonBadRequest, err)
	}
	var old *PodRefs
	if req.Operation == admissionv1.Update {
		oldRefs, err := ExtractPodRefs(kind, req.OldObject.Raw)
		if err != nil {
			return errored(http.StatusBadRequest, ReasonBadRequest, err)
		}
		if r, skip := skipUpdate(oldRefs, refs); skip {
			return allowed(r, "")
		}
		old = &oldRefs
	} else if refs.Suspended {
		// A suspended Job or CronJob creates nothing; unsuspending it is checked (skipUpdate).
		return allowed(ReasonSuspended, "")
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	dec := h.Decider.DecideChange(req.Namespace, refs, old, now())
	return h.result(ctx, req, mode, dec)
}

// skipUpdate says whether an UPDATE creates no pods from a new template, and why.
func skipUpdate(oldRefs, refs PodRefs) (Reason, bool) {
	switch {
	case refs.Suspended:
		// Suspending (or editing a suspended Job's template, which Kubernetes allows for
		// scheduling directives) creates no pods.
		return ReasonSuspended, true
	case oldRefs.Suspended:
		// suspend: true → false is when the Job's pods are created: checked even with an
		// unchanged template.
		return "", false
	case !TemplateChanged(oldRefs, refs):
		// replicas, labels, paused...: no new pods from a new template, nothing to check.
		return ReasonUnchanged, true
	}
	return "", false
}

// result turns a decision into the response for the namespace's enforcement mode.
func (h *Handler) result(ctx context.Context, req admission.Request, mode Enforcement, dec Decision) Result {
	res := Result{Reason: dec.Reason, Mode: mode}
	if len(dec.Denials) == 0 {
		res.Response = admission.Allowed("").WithWarnings(fitWarnings(dec.Warnings)...)
		res.Outcome = OutcomeAllowed
		if len(dec.Warnings) > 0 {
			res.Outcome = OutcomeWarned
		}
		return res
	}
	res.Message = dec.Message(req.Kind.Kind, req.Namespace, req.Name)
	log.FromContext(ctx).Info("pull secrets not backed by synced ExternalSecrets",
		"reason", dec.Reason, "denials", len(dec.Denials), "enforcement", mode)
	if mode == EnforcementWarn {
		// One warning per problem, each naming its ExternalSecret and fix (kubectl prints each on
		// its own line), sized so the API server never truncates them.
		warnings := make([]string, 0, len(dec.Warnings)+len(dec.Denials))
		for _, d := range dec.Denials {
			warnings = append(warnings, wouldDeny+d.Error())
		}
		res.Response = admission.Allowed("").WithWarnings(fitWarnings(append(warnings, dec.Warnings...))...)
		res.Outcome = OutcomeWarned
		return res
	}
	res.Response = deniedWithCauses(res.Message, dec.Denials).WithWarnings(fitWarnings(dec.Warnings)...)
	res.Outcome = OutcomeDenied
	return res
}

func (h *Handler) enforcement(ns string) Enforcement {
	if h.Namespaces != nil {
		if obj, ok, err := h.Namespaces.GetByKey(ns); err == nil && ok {
			if n, isNS := obj.(*corev1.Namespace); isNS {
				switch m := Enforcement(n.Labels[EnforcementLabel]); m {
				case EnforcementEnforce, EnforcementWarn, EnforcementOff:
					return m
				}
			}
		}
	}
	return h.DefaultEnforcement
}

// Unavailable answers 503 while the informers have not synced, before the review is decoded: the
// API server then treats the call as failed and the registration's failurePolicy decides (an
// AdmissionReview answered with allowed: false would be a denial under any failurePolicy).
func Unavailable(synced *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !synced.Load() {
			http.Error(w, errNotSynced.Error(), http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}
