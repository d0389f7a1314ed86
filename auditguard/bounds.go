package auditguard

import (
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/credchain/credchain/internal/events"
)

// byteBudget is a byte count shared by goroutines that may take from it without waiting: the
// long-line buffers of every reader (LineBufferBytes) and the queued lines (QueueBytes). A nil
// budget is unbounded.
type byteBudget struct {
	max  int64
	used atomic.Int64
	// gauge mirrors used (Add/Sub are atomic, so concurrent updates never leave it stale); may be nil.
	gauge prometheus.Gauge
}

func newByteBudget(max int64, gauge prometheus.Gauge) *byteBudget {
	return &byteBudget{max: max, gauge: gauge}
}

// tryAcquire takes n bytes when they fit, else takes nothing and returns false.
func (b *byteBudget) tryAcquire(n int64) bool {
	if b == nil || n == 0 {
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			if b.gauge != nil {
				b.gauge.Add(float64(n))
			}
			return true
		}
	}
}

// release gives back n bytes taken with tryAcquire.
func (b *byteBudget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.used.Add(-n)
	if b.gauge != nil {
		b.gauge.Sub(float64(n))
	}
}

// Default memory bounds (Config).
const (
	DefaultMaxConnections  = 16
	DefaultLineBufferBytes = 96 << 20
	DefaultQueueBytes      = 16 << 20
)

// MemoryBaseline is what the guard needs besides the buffers its flags bound, for the worst-case
// sum of MemoryBound: the Go runtime, the Vault, NATS and Kubernetes clients, the role index and
// Prometheus' registry. Measured after start-up against a dev Vault with 300 roles and policies, no
// --blast-radius and no event sink: 5.3 MiB of heap in use, 17 MiB taken from the OS by the runtime, 36 MiB
// RSS with the binary's pages (docs/auditguard.md, "Memory and disk"); 64 MiB leaves room for an
// index of many thousands of roles. Not in it: the blast radius' informer caches (--blast-radius), which grow with the cluster's
// workloads and ESO objects (a few KiB each, managed fields stripped).
const MemoryBaseline = 64 << 20

// gcFactor is how far the Go heap may grow past what is live before a collection with the default
// GOGC=100: freed long-line buffers and dequeued lines stay allocated until then.
const gcFactor = 2

// MemoryBound is the guard's worst-case memory with a configuration, by part, in bytes.
type MemoryBound struct {
	// LineBuffers is LineBufferBytes: every long line being read, across sockets and files.
	LineBuffers int64
	// ReadBuffers are the 64 KiB read buffers: one per socket connection (MaxConnections) and two
	// per audit file (the file and, for RotateGrace after a rotation, the rotated-away one).
	ReadBuffers int64
	// Queue is QueueBytes of queued lines plus the channel's slots.
	Queue int64
	// Processing is the line being processed and what decoding it allocates (its largest strings
	// and maps, at most its size): the line left the queue budget when it was taken.
	Processing int64
	// Outbox is what the event dispatcher reads into memory: per configured sink up to
	// events.MaxPeek events of at most events.MaxEventBytes each.
	Outbox int64
	// DisableWaits are the audit device disables waiting for their response entry, each holding
	// its decoded request entry (auditdevice.go).
	DisableWaits int64
	// Baseline is MemoryBaseline.
	Baseline int64
	// Total is gcFactor × (everything above but Baseline) + Baseline.
	Total int64
}

// MemoryBound computes the worst case of c (defaulted): what the install's memory limit must hold
// so that a flood hits a bound (counted, alerted) instead of the OOM killer. manifests/ checks the
// chart's and the kustomize base's limits against it.
func (c Config) MemoryBound() MemoryBound {
	files := int64(len(c.AuditFiles))
	m := MemoryBound{
		LineBuffers:  c.LineBufferBytes,
		ReadBuffers:  (int64(c.MaxConnections) + 2*files) * readBufferSize,
		Queue:        c.QueueBytes + int64(c.QueueSize)*queuedSlotBytes,
		Processing:   2 * min(int64(c.MaxLine), c.QueueBytes),
		Outbox:       int64(c.Events.Sinks()) * events.MaxPeek * events.MaxEventBytes,
		DisableWaits: maxPendingDisables * maxDisableRequestLine,
		Baseline:     MemoryBaseline,
	}
	m.Total = gcFactor*(m.LineBuffers+m.ReadBuffers+m.Queue+m.Processing+m.Outbox+m.DisableWaits) + m.Baseline
	return m
}

// queuedSlotBytes is one slot of the queue channel: a work value, whatever fields it gains.
const queuedSlotBytes = int64(unsafe.Sizeof(work{}))

// StoreBaseline is the state store's size besides the event outboxes, for DiskBound: policy
// snapshots (a few KiB each, one per referenced policy, tombstones included) and file offsets.
// 64 MiB holds over ten thousand policies.
const StoreBaseline = 64 << 20

// DiskBound is the state store's worst-case size with c: per configured sink, a full outbox and a
// full dead-letter bucket, twice (bbolt copies the pages a transaction changes and reuses freed
// pages only afterwards, so the file can reach about twice what it holds), plus StoreBaseline.
func (c Config) DiskBound() int64 {
	l := c.Events.Limits
	return 2*int64(c.Events.Sinks())*(l.MaxPendingBytes+l.MaxDeadLetterBytes) + StoreBaseline
}
