package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/credchain/credchain/internal/chain"
)

// ModelFunc builds the chain model of the cluster now, from informer caches.
type ModelFunc func(ctx context.Context) (*chain.Model, error)

// Publisher puts its cluster's inventory under the cluster's name: once at start, after each
// change (Notify, debounced), and every TTL/3 as a heartbeat even without one, so that the guard
// sees a live cluster and a vanished one ages out after the TTL. A change that leaves the
// inventory as it was is not put. Publishing is best effort: a failed put is logged and counted
// and retried with backoff, never returned, so the webhook around it keeps admitting.
//
// Goroutines: Run's goroutine owns every field but notify, which Notify (any goroutine, e.g.
// informer event handlers) sends to without blocking.
type Publisher struct {
	cluster    string
	kv         jetstream.KeyValue
	build      ModelFunc
	ttl        time.Duration
	debounce   time.Duration
	maxBytes   int
	putTimeout time.Duration
	log        logr.Logger
	metrics    *publisherMetrics
	now        func() time.Time

	notify chan struct{}

	// last is the JSON (publishedAt zeroed) of the last inventory put; lastPut when.
	last    []byte
	lastPut time.Time
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithTTL sets how long the inventory stays live without a put; the heartbeat is every TTL/3.
// Defaults to DefaultTTL. It must match the bucket's (EnsureBucket).
func WithTTL(d time.Duration) PublisherOption { return func(p *Publisher) { p.ttl = d } }

// WithDebounce sets the least time between two puts after changes. Defaults to 500ms: a burst
// of informer events (a rollout, the first sync) is one put, and a change is visible to the guard
// within about a second.
func WithDebounce(d time.Duration) PublisherOption { return func(p *Publisher) { p.debounce = d } }

// WithMaxBytes sets the largest encoded inventory a put may carry: the NATS servers' max_payload.
// Defaults to DefaultMaxBytes (NATS's default, 1 MiB).
func WithMaxBytes(n int) PublisherOption { return func(p *Publisher) { p.maxBytes = n } }

// WithPutTimeout bounds one put (its PubAck). Defaults to 5s.
func WithPutTimeout(d time.Duration) PublisherOption { return func(p *Publisher) { p.putTimeout = d } }

// WithLogger sets the logger. Defaults to none.
func WithLogger(l logr.Logger) PublisherOption { return func(p *Publisher) { p.log = l } }

// WithRegistry registers the publisher's metrics with reg. Defaults to none (kept unregistered).
func WithRegistry(reg prometheus.Registerer) PublisherOption {
	return func(p *Publisher) { p.metrics = newPublisherMetrics(reg) }
}

// NewPublisher returns the publisher of cluster's inventory, built by build, into kv.
func NewPublisher(cluster string, kv jetstream.KeyValue, build ModelFunc, opts ...PublisherOption) (*Publisher, error) {
	if err := ValidClusterName(cluster); err != nil {
		return nil, fmt.Errorf("inventory publisher: %w", err)
	}
	p := &Publisher{cluster: cluster, kv: kv, build: build, ttl: DefaultTTL, debounce: 500 * time.Millisecond,
		maxBytes: DefaultMaxBytes, putTimeout: 5 * time.Second, log: logr.Discard(), now: time.Now, notify: make(chan struct{}, 1)}
	for _, o := range opts {
		o(p)
	}
	if p.metrics == nil {
		p.metrics = newPublisherMetrics(nil)
	}
	if p.ttl <= 0 || p.debounce < 0 || p.maxBytes <= 0 || p.putTimeout <= 0 {
		return nil, fmt.Errorf("inventory publisher: ttl %s, debounce %s, max bytes %d, put timeout %s: each must be positive",
			p.ttl, p.debounce, p.maxBytes, p.putTimeout)
	}
	return p, nil
}

// Notify says the cluster's chain may have changed. It never blocks: changes coalesce.
func (p *Publisher) Notify() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends; it returns nil then. Call it once the caches have synced: an
// inventory of half-synced caches would tell the guard that stores do not exist.
func (p *Publisher) Run(ctx context.Context) error {
	heartbeat := p.ttl / 3
	backoff := p.debounce
	next := p.now() // the first put at once
	var lastTry time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			return nil
		case <-p.notify:
			// At most one attempt per debounce: after a quiet spell at once, in a burst at its end.
			at := lastTry.Add(p.debounce)
			if now := p.now(); at.Before(now) {
				at = now
			}
			if at.Before(next) {
				next = at
			}
			continue
		case <-timer.C:
		}
		lastTry = p.now()
		if err := p.publish(ctx, lastTry.Sub(p.lastPut) >= heartbeat); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Error(err, "publishing the cluster's inventory; the webhook keeps admitting, the guard sees the last one put until it ages out",
				"cluster", p.cluster, "bucket", p.kv.Bucket(), "retryIn", backoff.String())
			next = lastTry.Add(backoff)
			backoff = min(2*max(backoff, 100*time.Millisecond), heartbeat)
			continue
		}
		backoff = p.debounce
		next = p.lastPut.Add(heartbeat)
	}
}

// publish builds, compares and puts the inventory once; heartbeat puts it even unchanged.
func (p *Publisher) publish(ctx context.Context, heartbeat bool) error {
	m, err := p.build(ctx)
	if err != nil {
		p.metrics.publishes.WithLabelValues(ResultError).Inc()
		return fmt.Errorf("building the chain model: %w", err)
	}
	inv := FromModel(p.cluster, m)
	content, err := json.Marshal(inv) // PublishedAt zero: equal content, equal bytes
	if err != nil {
		p.metrics.publishes.WithLabelValues(ResultError).Inc()
		return fmt.Errorf("internal error: encoding inventory: %w", err)
	}
	changed := !bytes.Equal(content, p.last)
	if !changed && !heartbeat {
		p.metrics.publishes.WithLabelValues(ResultUnchanged).Inc()
		return nil
	}
	now := p.now()
	inv.PublishedAt = now.UTC()
	data, err := Encode(inv, p.maxBytes)
	if err != nil {
		result := ResultError
		if errors.Is(err, ErrTooLarge) {
			result = ResultTooLarge
		}
		p.metrics.publishes.WithLabelValues(result).Inc()
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, p.putTimeout)
	defer cancel()
	if _, err := p.kv.Put(pctx, p.cluster, data); err != nil {
		p.metrics.publishes.WithLabelValues(ResultError).Inc()
		return fmt.Errorf("putting %d bytes to $KV.%s.%s: %w", len(data), p.kv.Bucket(), p.cluster, err)
	}
	result := ResultPublished
	if !changed {
		result = ResultHeartbeat
	}
	p.metrics.publishes.WithLabelValues(result).Inc()
	p.metrics.last.Set(float64(now.UnixNano()) / 1e9)
	p.metrics.bytes.Set(float64(len(data)))
	p.last, p.lastPut = content, now
	if changed {
		p.log.V(1).Info("published the cluster's inventory", "cluster", p.cluster, "bytes", len(data),
			"stores", len(inv.Stores), "roles", len(inv.Roles), "externalSecrets", inv.externalSecrets())
	}
	return nil
}
