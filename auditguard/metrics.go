package auditguard

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the guard's Prometheus metrics.
type Metrics struct {
	LinesRead     prometheus.Counter
	LinesRelevant prometheus.Counter
	LinesDropped  *prometheus.CounterVec
	DecodeErrors  prometheus.Counter
	// LinesUnparsable counts lines that are no JSON audit entry at all (Ingest, any sink goroutine).
	LinesUnparsable prometheus.Counter
	Duplicates      prometheus.Counter
	QueueDepth      prometheus.Gauge
	// QueueBytes and LineBufferBytes are the bytes held of --queue-bytes and --line-buffer-bytes
	// (Add/Sub from any sink goroutine and the processing one).
	QueueBytes      prometheus.Gauge
	LineBufferBytes prometheus.Gauge
	Restores        *prometheus.CounterVec
	Withheld        *prometheus.CounterVec
	// AuditSocketOnly is set from the processing goroutine's audit device checks (auditdevices.go).
	AuditSocketOnly prometheus.Gauge
	// UnreadableMounts is set from the processing goroutine's re-index.
	UnreadableMounts prometheus.Gauge
	RestoreLatency   prometheus.Histogram
	IndexRoles       prometheus.Gauge
	IndexPolicies    prometheus.Gauge
	LastResync       prometheus.Gauge
	Reconciles       prometheus.Counter
	// Standby is 1 while a --vault-local-node guard's Vault node is a standby (reconcile paused).
	Standby     prometheus.Gauge
	Events      *prometheus.CounterVec
	Connections prometheus.Gauge
	// ConnectionsRefused counts socket connections closed at once for --max-connections.
	ConnectionsRefused prometheus.Counter
	BlastReady         prometheus.Gauge
	// DesiredValid is 1 while the desired state's directories load, 0 while they do not (the
	// guard acts on the last state that did, if any), -1 without a desired state; DesiredErrors
	// counts the contents that did not load, DesiredPolicies the policies in force; Drifts the
	// drifts found, by what became of them. All set by the processing goroutine.
	DesiredValid    prometheus.Gauge
	DesiredErrors   prometheus.Counter
	DesiredPolicies prometheus.Gauge
	Drifts          *prometheus.CounterVec
}

// NewMetrics creates the metrics, registered with reg when non-nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		LinesRead:     prometheus.NewCounter(prometheus.CounterOpts{Name: "credchain_auditguard_lines_read_total", Help: "Audit lines read from every sink."}),
		LinesRelevant: prometheus.NewCounter(prometheus.CounterOpts{Name: "credchain_auditguard_lines_relevant_total", Help: "Audit lines that passed the pre-filter."}),
		LinesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_auditguard_lines_dropped_total",
			Help: "Lines dropped: relevant ones for queue_full (processing fell behind; reconcile repairs) or queue_bytes (--queue-bytes of lines waiting); unread ones, relevant or not, for too_long (over --max-line) or buffer_budget (over 64 KiB while --line-buffer-bytes was in use by other readers); disable_waits (an audit device disable's request entry over 64 KiB, or past 64 waiting for their response: not Vault's); or unknown_namespace (a namespace Vault does not list: forged, or created since the last listing and re-listed at most once a minute)."}, []string{"reason"}),
		DecodeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "credchain_auditguard_decode_errors_total", Help: "Relevant lines that did not decode."}),
		LinesUnparsable: prometheus.NewCounter(prometheus.CounterOpts{Name: "credchain_auditguard_lines_unparsable_total",
			Help: "Audit lines that are no JSON audit entry (an audit device with format=jsonx, or a prefix containing '{\"'): the guard cannot see what they record."}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "credchain_auditguard_duplicate_entries_total", Help: "Entries seen twice (same request ID from two audit devices), acted on once."}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_queue_depth", Help: "Entries waiting for processing."}),
		QueueBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_queue_bytes", Help: "Bytes of the entries waiting for processing (bounded by --queue-bytes)."}),
		LineBufferBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_line_buffer_bytes",
			Help: "Bytes held in buffers of audit lines longer than 64 KiB being read, across every connection and file (bounded by --line-buffer-bytes)."}),
		Restores: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_auditguard_restores_total", Help: "Policy restores by result (ok, failed)."}, []string{"result"}),
		Withheld: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_auditguard_restores_withheld_total",
			Help: "Restores of a deleted, referenced policy the guard refused (also counted as restores_total{result=\"failed\"}, which alerts): superseded (the snapshot is older than a logged write) or flapping (deleted too often)."}, []string{"reason"}),
		AuditSocketOnly: newSocketOnlyGauge(),
		UnreadableMounts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_unreadable_auth_mounts",
			Help: "Kubernetes auth mounts whose roles the guard could not read at the last re-index: their roles' policies are guarded from an older listing, or not at all."}),
		RestoreLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "credchain_auditguard_restore_latency_seconds", Help: "From a delete's audit entry arriving to the restore write returning.", Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, 1, 5}}),
		IndexRoles:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_index_roles", Help: "Kubernetes auth roles in the reverse index."}),
		IndexPolicies:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_index_policies", Help: "Policies referenced by at least one role."}),
		LastResync:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_last_resync_timestamp_seconds", Help: "Unix time of the last successful full resync."}),
		Reconciles:     prometheus.NewCounter(prometheus.CounterOpts{Name: "credchain_auditguard_reconciles_total", Help: "Reconcile passes."}),
		Standby: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_vault_standby",
			Help: "1 while the guard's own Vault node is an HA standby (--vault-local-node): reconcile leaves restores to the active node's guard."}),
		Events:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_auditguard_events_total", Help: "Events emitted by type."}, []string{"type"}),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_socket_connections", Help: "Open audit socket connections (one per Vault node)."}),
		ConnectionsRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "credchain_auditguard_connections_refused_total",
			Help: "Audit socket connections closed at once because --max-connections were open."}),
		BlastReady: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_blast_radius_ready",
			Help: "1 once the Kubernetes caches behind events' blast radius have synced; 0 before, and always without --blast-radius."}),
		DesiredValid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_desired_state_valid",
			Help: "1 while the desired state (--desired-policies, --terraform) loads; 0 while it does not, and the guard acts on the last one that did (if any); -1 without one."}),
		DesiredErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "credchain_auditguard_desired_state_errors_total",
			Help: "Contents of the desired state's directories that did not load (each reported once as guard.desired_state_invalid)."}),
		DesiredPolicies: prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_desired_policies", Help: "Policies in the desired state in force."}),
		Drifts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_auditguard_drifts_total",
			Help: "Desired policies found granting otherwise than their desired body (policy.drifted), by action: reported, corrected (--correct-drift), failed (the correction's write failed)."}, []string{"action"}),
	}
	m.DesiredValid.Set(-1)
	for _, a := range []string{"reported", "corrected", "failed"} {
		m.Drifts.WithLabelValues(a)
	}
	// Every labelled series exists from the start at 0: Prometheus' increase() does not count a
	// series' first appearance, so a lazily created {result="failed"} would hide the first failure.
	for _, r := range []string{"ok", "failed"} {
		m.Restores.WithLabelValues(r)
	}
	for _, r := range []HoldReason{HoldSuperseded, HoldFlapping} {
		m.Withheld.WithLabelValues(string(r))
	}
	for _, r := range []string{"queue_full", "queue_bytes", "too_long", "buffer_budget", "disable_waits", "unknown_namespace"} {
		m.LinesDropped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.AuditSocketOnly)
		reg.MustRegister(m.LinesRead, m.LinesRelevant, m.LinesDropped, m.DecodeErrors, m.LinesUnparsable, m.Duplicates, m.QueueDepth, m.QueueBytes, m.LineBufferBytes, m.Restores, m.Withheld, m.UnreadableMounts,
			m.RestoreLatency, m.IndexRoles, m.IndexPolicies, m.LastResync, m.Reconciles, m.Standby, m.Events, m.Connections, m.ConnectionsRefused, m.BlastReady,
			m.DesiredValid, m.DesiredErrors, m.DesiredPolicies, m.Drifts)
	}
	return m
}
