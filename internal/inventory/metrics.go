package inventory

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	promx "github.com/credchain/credchain/internal/metrics"
)

// Results of a publish attempt (credchain_inventory_publishes_total{result}).
const (
	ResultPublished = "published"
	// ResultHeartbeat: the inventory had not changed; re-put so that it does not age out.
	ResultHeartbeat = "heartbeat"
	// ResultUnchanged: the inventory had not changed and no heartbeat was due: no put.
	ResultUnchanged = "unchanged"
	// ResultTooLarge: the encoded inventory exceeds the max payload (ErrTooLarge).
	ResultTooLarge = "too_large"
	// ResultError: building the model or the put failed (NATS down, a permission missing).
	ResultError = "error"
)

type publisherMetrics struct {
	publishes *prometheus.CounterVec
	last      prometheus.Gauge
	bytes     prometheus.Gauge
}

func newPublisherMetrics(reg prometheus.Registerer) *publisherMetrics {
	m := &publisherMetrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_inventory_publishes_total",
			Help: "Attempts to publish this cluster's inventory, by result: published, heartbeat, unchanged (skipped), too_large, error."}, []string{"result"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_inventory_last_publish_timestamp_seconds",
			Help: "When this cluster's inventory was last put to the bucket (Unix seconds); older than the TTL means the guard no longer sees the cluster."}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_inventory_bytes",
			Help: "Size of the last encoded (gzip-compressed) inventory; NATS refuses one over its max_payload (1 MiB by default)."}),
	}
	if reg != nil {
		m.publishes = promx.RegisterOrExisting(reg, m.publishes)
		m.last = promx.RegisterOrExisting(reg, m.last)
		m.bytes = promx.RegisterOrExisting(reg, m.bytes)
	}
	for _, r := range []string{ResultPublished, ResultHeartbeat, ResultUnchanged, ResultTooLarge, ResultError} {
		m.publishes.WithLabelValues(r)
	}
	return m
}

// Reasons a value is ignored (credchain_inventory_read_errors_total{reason}).
const (
	ReasonUndecodable = "undecodable"
	ReasonVersion     = "version"
	ReasonMismatch    = "cluster_mismatch"
	ReasonInvalidKey  = "invalid_key"
	// ReasonWatch: the bucket's watch failed or ended; the Reader watches again.
	ReasonWatch = "watch"
)

type readerMetrics struct {
	errors   *prometheus.CounterVec
	clusters prometheus.Gauge
}

func newReaderMetrics(reg prometheus.Registerer) *readerMetrics {
	m := &readerMetrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_inventory_read_errors_total",
			Help: "Inventory values the guard ignored (keeping the cluster's previous one), and failed watches, by reason."}, []string{"reason"}),
		clusters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_inventory_clusters",
			Help: "Clusters whose inventory is live (put within the TTL)."}),
	}
	if reg != nil {
		m.errors = promx.RegisterOrExisting(reg, m.errors)
		m.clusters = promx.RegisterOrExisting(reg, m.clusters)
	}
	for _, r := range []string{ReasonUndecodable, ReasonVersion, ReasonMismatch, ReasonInvalidKey, ReasonWatch} {
		m.errors.WithLabelValues(r)
	}
	return m
}

// reason is the metric label of a Decode or ValidClusterName error.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrUnsupportedVersion):
		return ReasonVersion
	case errors.Is(err, ErrClusterMismatch):
		return ReasonMismatch
	case errors.Is(err, ErrInvalidCluster):
		return ReasonInvalidKey
	}
	return ReasonUndecodable
}
