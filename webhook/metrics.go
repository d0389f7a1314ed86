package webhook

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	promx "github.com/credchain/credchain/internal/metrics"
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
		m.Decisions = promx.RegisterOrExisting(reg, m.Decisions)
		m.Latency = promx.RegisterOrExisting(reg, m.Latency)
	}
	return m
}

// WithMetrics decorates a review with decision counters and a latency histogram. The kind label
// takes only the kinds credchain checks (anything else is "other"): /validate is reachable by any
// pod, and a forged review must not grow the series without bound.
func WithMetrics(m *Metrics, next ReviewFunc) ReviewFunc {
	return func(ctx context.Context, req admission.Request) Result {
		start := time.Now()
		res := next(ctx, req)
		kind := kindLabel(req.Kind.Kind)
		m.Latency.WithLabelValues(kind).Observe(time.Since(start).Seconds())
		m.Decisions.WithLabelValues(kind, res.Outcome, string(res.Reason)).Inc()
		return res
	}
}

// kindLabel bounds the kind label to SupportedKinds.
func kindLabel(kind string) string {
	if _, ok := SupportedKinds[kind]; ok {
		return kind
	}
	return "other"
}
