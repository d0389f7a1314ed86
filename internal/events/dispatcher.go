package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// Sink delivers one event; a nil error means the destination acknowledged it.
type Sink interface {
	Name() string
	Send(ctx context.Context, e Event) error
}

// BatchSink delivers several events at once (a chat message merging a burst).
type BatchSink interface {
	Sink
	MaxBatch() int
	SendBatch(ctx context.Context, events []Event) error
}

// Dispatcher is the Notifier that fans events out to sinks through per-sink outboxes, with retries
// and backoff. Notify returns once the event is on disk for every sink.
type Dispatcher struct {
	log     logr.Logger
	workers []*worker
	metrics dispatcherMetrics
}

var _ Notifier = (*Dispatcher)(nil)

type worker struct {
	sink   Sink
	outbox *Outbox
	wake   chan struct{}
}

type dispatcherMetrics struct {
	pending   *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	retries   *prometheus.CounterVec
}

// NewDispatcher creates one outbox per sink in db. reg may be nil.
func NewDispatcher(db *bolt.DB, log logr.Logger, reg prometheus.Registerer, sinks ...Sink) (*Dispatcher, error) {
	d := &Dispatcher{log: log, metrics: dispatcherMetrics{
		pending:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "credchain_events_pending", Help: "Events in a sink's outbox, not yet acknowledged."}, []string{"sink"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_events_delivered_total", Help: "Events a sink acknowledged."}, []string{"sink"}),
		retries:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_events_retries_total", Help: "Failed delivery attempts (retried with backoff)."}, []string{"sink"}),
	}}
	if reg != nil {
		d.metrics.pending = RegisterOrExisting(reg, d.metrics.pending)
		d.metrics.delivered = RegisterOrExisting(reg, d.metrics.delivered)
		d.metrics.retries = RegisterOrExisting(reg, d.metrics.retries)
	}
	for _, s := range sinks {
		o, err := NewOutbox(db, s.Name())
		if err != nil {
			return nil, err
		}
		d.workers = append(d.workers, &worker{sink: s, outbox: o, wake: make(chan struct{}, 1)})
		d.metrics.pending.WithLabelValues(s.Name()).Set(float64(o.Len()))
		// delivered and retries exist at 0 from the start, so "pending but nothing delivered" alerts
		// work for a sink that never delivered once (wrong URL, bad credentials).
		d.metrics.delivered.WithLabelValues(s.Name())
		d.metrics.retries.WithLabelValues(s.Name())
	}
	return d, nil
}

// Notify implements Notifier: it stores the event in every sink's outbox.
func (d *Dispatcher) Notify(_ context.Context, e Event) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	var errs []error
	for _, w := range d.workers {
		if err := w.outbox.Add(e); err != nil {
			errs = append(errs, fmt.Errorf("queueing event for %s: %w", w.sink.Name(), err))
			continue
		}
		d.metrics.pending.WithLabelValues(w.sink.Name()).Inc()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return errors.Join(errs...)
}

// Run delivers until ctx ends; events still pending stay in the outbox for the next run.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Go(func() { d.run(ctx, w) })
	}
	wg.Wait()
}

// Backoff bounds for failed deliveries.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

func (d *Dispatcher) run(ctx context.Context, w *worker) {
	name := w.sink.Name()
	backoff := minBackoff
	for ctx.Err() == nil {
		limit := 64
		bs, isBatch := w.sink.(BatchSink)
		if isBatch {
			limit = bs.MaxBatch()
		}
		batch, err := w.outbox.Peek(limit)
		if err != nil {
			d.log.Error(err, "reading outbox", "sink", name)
		}
		// Deliver: a batch sink takes everything pending in one call, others one event at a time.
		var groups [][]Pending
		if isBatch && len(batch) > 0 {
			groups = [][]Pending{batch}
		} else {
			for _, p := range batch {
				groups = append(groups, []Pending{p})
			}
		}
		failed := false
		var retryAfter time.Duration
		for _, g := range groups {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			var err error
			if isBatch {
				evs := make([]Event, len(g))
				for i, p := range g {
					evs[i] = p.Event
				}
				err = bs.SendBatch(sctx, evs)
			} else {
				err = w.sink.Send(sctx, g[0].Event)
			}
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				var ra *RetryAfterError
				if errors.As(err, &ra) {
					retryAfter = ra.After
				}
				d.metrics.retries.WithLabelValues(name).Inc()
				d.log.V(1).Info("event delivery failed; will retry", "sink", name, "events", len(g), "error", err.Error(), "backoff", backoff.String())
				failed = true
				break
			}
			for _, p := range g {
				if err := w.outbox.Remove(p.Key); err != nil {
					d.log.Error(err, "removing delivered event from outbox", "sink", name)
				}
				d.metrics.delivered.WithLabelValues(name).Inc()
				d.metrics.pending.WithLabelValues(name).Dec()
			}
			backoff = minBackoff
		}
		wait := backoff
		if failed {
			wait = max(wait, retryAfter) // honour the server's Retry-After
			backoff = min(backoff*2, maxBackoff)
		} else if len(batch) > 0 {
			continue // drain before sleeping
		} else {
			wait = time.Hour // idle: woken by Notify
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
			if failed {
				// New events don't make a failing sink healthy: keep the backoff.
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		case <-time.After(wait):
		}
	}
}

// NewID returns a random event ID.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RegisterOrExisting adds c to reg, or returns the collector already registered under the same name (a
// second component started in one process, as in tests, shares the series instead of panicking).
func RegisterOrExisting[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("internal error: registering metrics: %v", err))
	}
	return c
}
