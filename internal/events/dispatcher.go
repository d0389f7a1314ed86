package events

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	promx "github.com/credchain/credchain/internal/metrics"
	bolt "go.etcd.io/bbolt"
)

// Sink delivers one event; a nil error means the destination acknowledged it. Errors wrap ErrRejected
// when the destination will never take this event, ErrUnavailable when it takes none right now.
type Sink interface {
	Name() string
	Send(ctx context.Context, e Event) error
}

// BatchSink delivers several events at once (a chat message merging a burst).
type BatchSink interface {
	Sink
	MaxBatch() int
	// SendBatch delivers the leading events, as many as fit in one message (at least one), and
	// returns how many; on an error none was delivered.
	SendBatch(ctx context.Context, events []Event) (int, error)
}

// Dispatcher is the Notifier that fans events out to sinks through per-sink outboxes, with retries
// and backoff. Notify returns once the event is on disk for every sink.
//
// No event can stall the ones behind it: one a sink rejects (ErrRejected) is dead-lettered at once
// (a merged batch that is rejected is retried one event at a time first, so only the culprit goes);
// one that keeps failing is dead-lettered after Limits.MaxAttempts failures while the sink is up, or
// Limits.MaxAge after its time whatever the failure. Each dead letter is counted
// (credchain_events_dead_lettered_total{sink,reason}) and logged with the event's id and type only.
type Dispatcher struct {
	log     logr.Logger
	limits  Limits
	workers []*worker
	metrics dispatcherMetrics
	// minBackoff and maxBackoff bound the wait after a failed delivery (package constants; fields
	// so that tests can shorten them before Run).
	minBackoff, maxBackoff time.Duration
}

var _ Notifier = (*Dispatcher)(nil)

type worker struct {
	sink   Sink
	outbox *Outbox
	wake   chan struct{}

	// attempts counts failed deliveries (other than ErrUnavailable) per outbox key, for
	// Limits.MaxAttempts. Owned by the worker's goroutine (Dispatcher.run); entries below the
	// outbox's head are forgotten.
	attempts map[uint64]int
	// splitThrough: pending events with keys up to it are sent one at a time, because a merged
	// batch holding them was rejected. Owned by Dispatcher.run.
	splitThrough uint64
	// backoff is the wait after the next failed delivery: minBackoff after progress, doubled by
	// each failure up to maxBackoff. Owned by Dispatcher.run.
	backoff time.Duration
}

type dispatcherMetrics struct {
	pending      *prometheus.GaugeVec
	pendingBytes *prometheus.GaugeVec
	delivered    *prometheus.CounterVec
	retries      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	deadLetters  *prometheus.GaugeVec
}

// deadReasons are every value of the reason label, created at 0 for each sink.
var deadReasons = []string{DeadRejected, DeadAttempts, DeadAge, DeadOverflow, DeadCorrupt}

// NewDispatcher creates one outbox per sink in db, with the default Limits. reg may be nil.
func NewDispatcher(db *bolt.DB, log logr.Logger, reg prometheus.Registerer, sinks ...Sink) (*Dispatcher, error) {
	return NewDispatcherWithLimits(db, log, reg, Limits{}, sinks...)
}

// NewDispatcherWithLimits is NewDispatcher with outbox and retry limits (zero fields: the defaults).
func NewDispatcherWithLimits(db *bolt.DB, log logr.Logger, reg prometheus.Registerer, lim Limits, sinks ...Sink) (*Dispatcher, error) {
	lim.SetDefaults()
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{log: log, limits: lim, minBackoff: minBackoff, maxBackoff: maxBackoff, metrics: dispatcherMetrics{
		pending:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "credchain_events_pending", Help: "Events in a sink's outbox, not yet acknowledged."}, []string{"sink"}),
		pendingBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "credchain_events_pending_bytes", Help: "Bytes of encoded events in a sink's outbox (bounded; past the bound the oldest are dead-lettered)."}, []string{"sink"}),
		delivered:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_events_delivered_total", Help: "Events a sink acknowledged."}, []string{"sink"}),
		retries:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_events_retries_total", Help: "Failed delivery attempts (retried with backoff)."}, []string{"sink"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "credchain_events_dead_lettered_total", Help: "Events set aside undelivered, by reason: rejected by the sink, too many attempts, too old, outbox full, corrupt entry."}, []string{"sink", "reason"}),
		deadLetters:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "credchain_events_dead_letters", Help: "Events kept in a sink's dead-letter bucket (bounded; the oldest are deleted)."}, []string{"sink"}),
	}}
	if reg != nil {
		d.metrics.pending = promx.RegisterOrExisting(reg, d.metrics.pending)
		d.metrics.pendingBytes = promx.RegisterOrExisting(reg, d.metrics.pendingBytes)
		d.metrics.delivered = promx.RegisterOrExisting(reg, d.metrics.delivered)
		d.metrics.retries = promx.RegisterOrExisting(reg, d.metrics.retries)
		d.metrics.deadLettered = promx.RegisterOrExisting(reg, d.metrics.deadLettered)
		d.metrics.deadLetters = promx.RegisterOrExisting(reg, d.metrics.deadLetters)
	}
	for _, s := range sinks {
		o, err := NewOutbox(db, s.Name(), lim)
		if err != nil {
			return nil, err
		}
		w := &worker{sink: s, outbox: o, wake: make(chan struct{}, 1), attempts: map[uint64]int{}}
		d.workers = append(d.workers, w)
		d.gauges(w)
		// The counters exist at 0 from the start, so "pending but nothing delivered" and "dead
		// letters increased" alerts work for a sink that never delivered once (wrong URL, bad
		// credentials).
		d.metrics.delivered.WithLabelValues(s.Name())
		d.metrics.retries.WithLabelValues(s.Name())
		for _, r := range deadReasons {
			d.metrics.deadLettered.WithLabelValues(s.Name(), r)
		}
	}
	return d, nil
}

// gauges sets w's gauges from its outbox.
func (d *Dispatcher) gauges(w *worker) {
	d.metrics.pending.WithLabelValues(w.sink.Name()).Set(float64(w.outbox.Len()))
	d.metrics.pendingBytes.WithLabelValues(w.sink.Name()).Set(float64(w.outbox.Bytes()))
	d.metrics.deadLetters.WithLabelValues(w.sink.Name()).Set(float64(w.outbox.DeadLen()))
}

// Notify implements Notifier: it stores the event, capped (Cap), in every sink's outbox.
func (d *Dispatcher) Notify(_ context.Context, e Event) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC() // MaxAge counts from it
	}
	e = withExplain(Cap(e))
	var errs []error
	for _, w := range d.workers {
		overflow, err := w.outbox.Add(e)
		for _, dl := range overflow {
			d.deadLettered(w, dl)
		}
		d.gauges(w)
		if err != nil {
			errs = append(errs, fmt.Errorf("queueing event for %s: %w", w.sink.Name(), err))
			continue
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return errors.Join(errs...)
}

// deadLettered counts and logs one dead letter: the event's id and type, never its content.
func (d *Dispatcher) deadLettered(w *worker, dl DeadLetter) {
	d.metrics.deadLettered.WithLabelValues(w.sink.Name(), dl.Reason).Inc()
	kv := []any{"sink", w.sink.Name(), "id", dl.ID, "type", dl.Type, "reason", dl.Reason}
	if dl.Attempts > 0 {
		kv = append(kv, "attempts", dl.Attempts)
	}
	if dl.Error != "" {
		kv = append(kv, "error", dl.Error)
	}
	d.log.Info("event dead-lettered: it will not be delivered", kv...)
}

// deadLetter moves p to the dead letters.
func (d *Dispatcher) deadLetter(w *worker, p Pending, reason string, cause error) {
	dl := DeadLetter{Reason: reason, Attempts: w.attempts[p.Key]}
	if cause != nil {
		dl.Error = cause.Error()
	}
	dl, ok, err := w.outbox.DeadLetter(p.Key, dl)
	delete(w.attempts, p.Key)
	if err != nil {
		d.log.Error(err, "moving an event to the dead letters", "sink", w.sink.Name(), "id", p.Event.ID)
		return
	}
	if ok {
		d.deadLettered(w, dl)
	}
	d.gauges(w)
}

// Run delivers until ctx ends; events still pending stay in the outbox for the next run.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Go(func() { d.run(ctx, w) })
	}
	wg.Wait()
}

// MaxPeek is the most events a sink's worker reads from its outbox at a time (a BatchSink's
// MaxBatch may be fewer). With MaxEventBytes it bounds the events a dispatcher holds in memory per
// sink, whatever the outbox holds on disk.
const MaxPeek = 64

// Backoff bounds for failed deliveries.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// sendTimeout bounds one delivery attempt.
const sendTimeout = 30 * time.Second

// run is the worker's goroutine: it delivers the outbox's head (deliverHead), then goes on at once
// after progress, waits the backoff after a failure (doubled each time up to maxBackoff, at least
// the server's Retry-After), and sleeps until Notify wakes it when idle.
func (d *Dispatcher) run(ctx context.Context, w *worker) {
	bs, isBatch := w.sink.(BatchSink)
	limit := MaxPeek
	if isBatch {
		limit = bs.MaxBatch()
	}
	w.backoff = d.minBackoff
	for ctx.Err() == nil {
		res, ok := d.deliverHead(ctx, w, limit, isBatch)
		if !ok {
			return
		}
		wait := w.backoff
		switch {
		case res.failed:
			wait = max(wait, res.retryAfter) // honour the server's Retry-After
			w.backoff = min(w.backoff*2, d.maxBackoff)
		case res.progressed:
			continue // drain before sleeping
		default:
			wait = time.Hour // idle: woken by Notify
		}
		if !d.sleep(ctx, w, wait, res.failed) {
			return
		}
	}
}

// headResult is what one deliverHead did. failed: reading the outbox or a delivery failed, to be
// retried after the backoff and at least retryAfter; progressed: events left the outbox
// (delivered or dead-lettered), so the next pass comes at once.
type headResult struct {
	failed, progressed bool
	retryAfter         time.Duration
}

// deliverHead delivers up to limit events from the outbox's head, in groups (see group), until
// they are all gone or one fails. ok is false when ctx ended during a delivery.
func (d *Dispatcher) deliverHead(ctx context.Context, w *worker, limit int, isBatch bool) (res headResult, ok bool) {
	name := w.sink.Name()
	batch, err := w.outbox.Peek(limit)
	if err != nil {
		d.log.Error(err, "reading outbox", "sink", name)
		res.failed = true
	}
	w.forgetBefore(batch)
	for len(batch) > 0 {
		if batch[0].Err != nil {
			d.deadLetter(w, batch[0], DeadCorrupt, batch[0].Err)
			batch, res.progressed = batch[1:], true
			continue
		}
		g := w.group(batch, isBatch)
		n, err := d.send(ctx, w, g)
		if n > 0 {
			d.delivered(w, g[:n])
			w.backoff, res.progressed = d.minBackoff, true
			batch = batch[n:]
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return res, false
		}
		d.metrics.retries.WithLabelValues(name).Inc()
		rest := g[n:]
		if errors.Is(err, ErrRejected) {
			if d.rejected(w, rest, err) {
				batch, res.progressed = batch[1:], true
			}
			continue
		}
		var ra *RetryAfterError
		if errors.As(err, &ra) {
			res.retryAfter = ra.After
		}
		if d.expire(w, rest, batch, err) {
			res.progressed = true // what stood in the way is gone: try the rest now
			return res, true
		}
		d.log.V(1).Info("event delivery failed; will retry", "sink", name, "events", len(rest), "error", err.Error(), "backoff", w.backoff.String())
		res.failed = true
		return res, true
	}
	return res, true
}

// delivered removes the events the sink acknowledged from the outbox.
func (d *Dispatcher) delivered(w *worker, ps []Pending) {
	for _, p := range ps {
		if err := w.outbox.Remove(p.Key); err != nil {
			d.log.Error(err, "removing delivered event from outbox", "sink", w.sink.Name())
		}
		delete(w.attempts, p.Key)
		d.metrics.delivered.WithLabelValues(w.sink.Name()).Inc()
	}
	d.gauges(w)
}

// rejected handles ErrRejected for rest, the events just tried (none delivered). A merged batch
// is refused whole for one event in it: its events are then sent one at a time, to find that one
// alone. A single event is dead-lettered; rejected reports whether it was.
func (d *Dispatcher) rejected(w *worker, rest []Pending, err error) bool {
	if len(rest) > 1 {
		// One of them is refused, the merge refused with it: find it alone.
		w.splitThrough = rest[len(rest)-1].Key
		d.log.V(1).Info("merged events rejected; sending them one at a time", "sink", w.sink.Name(), "events", len(rest), "error", err.Error())
		return false
	}
	d.deadLetter(w, rest[0], DeadRejected, err)
	return true
}

// sleep waits wait, or until Notify wakes the worker, except after a failure: new events don't
// make a failing sink healthy, so the backoff is waited in full after the wake-up too. It reports
// false when ctx ended.
func (d *Dispatcher) sleep(ctx context.Context, w *worker, wait time.Duration, failed bool) bool {
	select {
	case <-ctx.Done():
		return false
	case <-w.wake:
		if failed {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(wait):
			}
		}
	case <-time.After(wait):
	}
	return true
}

// group is what to send next from batch (the outbox's head): one event for a plain sink or inside a
// rejected batch being retried one by one, else the whole batch.
func (w *worker) group(batch []Pending, isBatch bool) []Pending {
	if !isBatch || batch[0].Key <= w.splitThrough {
		return batch[:1]
	}
	return batch
}

// forgetBefore drops attempt counts of events no longer at or behind the head.
func (w *worker) forgetBefore(batch []Pending) {
	for k := range w.attempts {
		if len(batch) == 0 || k < batch[0].Key {
			delete(w.attempts, k)
		}
	}
}

// send delivers g (or, for a batch sink, as much of it as fits one message) and returns how many.
func (d *Dispatcher) send(ctx context.Context, w *worker, g []Pending) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	bs, isBatch := w.sink.(BatchSink)
	if !isBatch {
		if err := w.sink.Send(ctx, g[0].Event); err != nil {
			return 0, err
		}
		return 1, nil
	}
	evs := make([]Event, len(g))
	for i, p := range g {
		evs[i] = p.Event
	}
	n, err := bs.SendBatch(ctx, evs)
	switch {
	case err != nil:
		return 0, err
	case n < 1 || n > len(g):
		return 0, fmt.Errorf("internal error: %s delivered %d of %d events", w.sink.Name(), n, len(g))
	}
	return n, nil
}

// expire handles a transient failure of rest (the events just tried): it counts the attempt
// against each (unless the sink is unavailable, which is not the events' fault), then dead-letters
// every pending event of batch past MaxAttempts or MaxAge. It reports whether it set any aside.
func (d *Dispatcher) expire(w *worker, rest, batch []Pending, err error) bool {
	var ra *RetryAfterError
	if !errors.Is(err, ErrUnavailable) && !errors.As(err, &ra) {
		for _, p := range rest {
			w.attempts[p.Key]++
		}
	}
	now := time.Now()
	moved := false
	for _, p := range batch {
		reason := ""
		switch {
		case w.attempts[p.Key] >= d.limits.MaxAttempts:
			reason = DeadAttempts
		case now.Sub(p.Event.Time) > d.limits.MaxAge:
			reason = DeadAge
		default:
			continue
		}
		d.deadLetter(w, p, reason, err)
		moved = true
	}
	return moved
}

// NewID returns a random event ID.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// IDFor is the ID of the event of type typ about subject (policy, namespace, object) that an audit
// entry with Vault's request ID caused: the same for every process that handles that entry, so
// when two guard replicas (or one after a restart) report it, JetStream's de-duplication (the ID
// is the Nats-Msg-Id) delivers it once.
func IDFor(requestID, typ string, subject ...string) string {
	h := sha256.New()
	for _, p := range append([]string{requestID, typ}, subject...) {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
