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

// Handler validates every pod-template kind on one path (/validate); a raw admission.Handler rather
// than a typed validator per kind because the check is the same for all of them and only needs the
// pod spec, which ExtractPodRefs pulls out of each kind's JSON.
type Handler struct {
	Decider *Decider
	// Namespaces is the Namespace informer's store, read for the enforcement label.
	Namespaces toolscache.Store
	// DefaultEnforcement applies to namespaces without the label (or with an unknown value).
	DefaultEnforcement Enforcement
	// Exempt namespaces are never checked: kube-system's controllers and credchain's own namespace
	// (the webhook must be able to roll itself out even when it denies everything else).
	Exempt map[string]bool
	// Synced reports whether the informers have synced. Until they have, every review is answered
	// with an error (the failurePolicy decides) rather than from an empty cache, which would deny
	// every workload as "unmanaged".
	Synced *atomic.Bool
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

var _ admission.Handler = (*Handler)(nil)

// Outcome labels for the decisions metric.
const (
	OutcomeAllowed = "allowed"
	OutcomeWarned  = "warned"
	OutcomeDenied  = "denied"
	OutcomeErrored = "errored"
)

type reasonKey struct{}

// reasonHolder carries the review's Reason from Handle to the metrics decorator without changing
// admission.Handler's signature.
type reasonHolder struct{ r Reason }

// withReason returns the review's reason holder, creating it if no decorator did yet.
func withReason(ctx context.Context) (context.Context, *reasonHolder) {
	if rh, ok := ctx.Value(reasonKey{}).(*reasonHolder); ok {
		return ctx, rh
	}
	rh := &reasonHolder{r: ReasonNotChecked}
	return context.WithValue(ctx, reasonKey{}, rh), rh
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, reason := h.handle(ctx, req)
	if rh, ok := ctx.Value(reasonKey{}).(*reasonHolder); ok {
		rh.r = reason
	}
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, Reason) {
	kind := req.Kind.Kind
	switch {
	case req.Operation != admissionv1.Create && req.Operation != admissionv1.Update:
		// DELETE and CONNECT are never blocked: removing a broken workload must always work.
		return admission.Allowed(""), ReasonNotChecked
	case req.SubResource != "":
		// scale, status, ephemeralcontainers: none changes the pull secrets of new pods.
		return admission.Allowed(""), ReasonNotChecked
	case SupportedKinds[kind] == "":
		return admission.Allowed("kind " + kind + " is not checked by credchain"), ReasonNotChecked
	case req.Namespace == "":
		// Fail closed on a zero-value request: every checked kind is namespaced.
		return admission.Errored(http.StatusBadRequest, errMissingNamespace), ReasonBadRequest
	case h.Exempt[req.Namespace]:
		return admission.Allowed("namespace " + req.Namespace + " is exempt"), ReasonExempt
	}
	if !h.Synced.Load() {
		return admission.Errored(http.StatusInternalServerError, errNotSynced), ReasonNotReady
	}
	mode := h.enforcement(req.Namespace)
	if mode == EnforcementOff {
		return admission.Allowed(""), ReasonOff
	}
	if createdByCheckedController(kind, req.Object.Raw) {
		// A ReplicaSet's pods, a Deployment's ReplicaSets...: checked on their owner (owner.go).
		return admission.Allowed(""), ReasonControlled
	}
	refs, err := ExtractPodRefs(kind, req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), ReasonBadRequest
	}
	if req.Operation == admissionv1.Update {
		oldRefs, err := ExtractPodRefs(kind, req.OldObject.Raw)
		if err != nil {
			return admission.Errored(http.StatusBadRequest, err), ReasonBadRequest
		}
		if !TemplateChanged(oldRefs, refs) {
			// replicas, labels, paused...: no new pods from a new template, nothing to check.
			return admission.Allowed(""), ReasonUnchanged
		}
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	dec := h.Decider.Decide(req.Namespace, refs, now())
	if len(dec.Denials) == 0 {
		return admission.Allowed("").WithWarnings(dec.Warnings...), dec.Reason
	}
	msg := dec.Message(kind, req.Namespace, req.Name)
	log.FromContext(ctx).Info("pull secrets not backed by synced ExternalSecrets",
		"reason", dec.Reason, "denials", len(dec.Denials), "enforcement", mode)
	if mode == EnforcementWarn {
		warnings := append(dec.Warnings, EnforcementLabel+"=warn, would deny: "+msg)
		return admission.Allowed("").WithWarnings(warnings...), dec.Reason
	}
	return admission.Denied(msg).WithWarnings(dec.Warnings...), dec.Reason
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
