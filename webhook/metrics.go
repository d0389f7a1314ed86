package webhook

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/credchain/credchain/internal/events"
)

// Metrics are the webhook's own Prometheus metrics, next to controller-runtime's
// controller_runtime_webhook_* request metrics.
type Metrics struct {
	Decisions *prometheus.CounterVec
	Latency   *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credchain_webhook_decisions_total",
			Help: "Admission decisions by kind, outcome (allowed, warned, denied, errored) and reason.",
		}, []string{"kind", "decision", "reason"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "credchain_webhook_decision_duration_seconds",
			Help: "Time to decide one admission review, excluding TLS and JSON framing.",
			// Decisions take microseconds; the buckets resolve 5µs..50ms.
			Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 50e-3},
		}, []string{"kind"}),
	}
	if reg != nil {
		m.Decisions = events.RegisterOrExisting(reg, m.Decisions)
		m.Latency = events.RegisterOrExisting(reg, m.Latency)
	}
	return m
}

// WithMetrics decorates an admission.Handler with decision counters and a latency histogram.
func WithMetrics(m *Metrics, next admission.Handler) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		start := time.Now()
		ctx, rh := withReason(ctx)
		resp := next.Handle(ctx, req)
		kind := req.Kind.Kind
		m.Latency.WithLabelValues(kind).Observe(time.Since(start).Seconds())
		m.Decisions.WithLabelValues(kind, outcome(resp), string(rh.r)).Inc()
		return resp
	})
}

func outcome(resp admission.Response) string {
	switch {
	case resp.Result != nil && resp.Result.Code >= 400 && resp.Result.Code != 403:
		return OutcomeErrored
	case !resp.Allowed:
		return OutcomeDenied
	case len(resp.Warnings) > 0:
		return OutcomeWarned
	default:
		return OutcomeAllowed
	}
}
