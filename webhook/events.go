package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/credchain/credchain/internal/events"
)

// EventEmitter turns the webhook's decisions into admission.denied and admission.warned events. It
// never slows a review: events go through a bounded channel to a goroutine that calls the
// notifier (whose outbox write may fsync), and a full channel drops (counted in the log). The same
// object denied for the same reason within Window is reported once, so a controller retrying a
// broken rollout does not flood NATS or Slack. Replicas deduplicate on their own, but derive the
// event ID from the object, reason and window, so the JetStream stream (whose duplicate window, 1h,
// outlasts Window) keeps one event when two replicas see the same denial; Slack may show one per replica.
type EventEmitter struct {
	Notifier events.Notifier
	// Window deduplicates per object and reason. Defaults to 10m.
	Window time.Duration
	// Cluster names this installation in events.
	Cluster string
	Log     logr.Logger

	// dropped counts events dropped because the deduplication table was full.
	dropped atomic.Int64

	once sync.Once
	ch   chan events.Event
	mu   sync.Mutex
	last map[string]time.Time
}

func (em *EventEmitter) init() {
	em.once.Do(func() {
		if em.Window == 0 {
			em.Window = 10 * time.Minute
		}
		em.ch = make(chan events.Event, 1024)
		em.last = map[string]time.Time{}
	})
}

// Run delivers queued events until ctx ends.
func (em *EventEmitter) Run(ctx context.Context) error {
	em.init()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-em.ch:
			if err := em.Notifier.Notify(ctx, e); err != nil {
				em.Log.Error(err, "notifying admission event", "type", e.Type)
			}
		}
	}
}

// emit queues an event unless the same object and reason was reported within the window.
func (em *EventEmitter) emit(e events.Event) {
	em.init()
	key := e.Type + "|" + e.Workload.String() + "|" + e.Reason
	now := time.Now()
	em.mu.Lock()
	if t, ok := em.last[key]; ok && now.Sub(t) < em.Window {
		em.mu.Unlock()
		return
	}
	if len(em.last) >= maxDedupKeys { // forget expired keys when full; bounded memory
		for k, t := range em.last {
			if now.Sub(t) >= em.Window {
				delete(em.last, k)
			}
		}
	}
	if len(em.last) >= maxDedupKeys {
		// Still full: more distinct denials within one window than any real cluster makes (a
		// flood of forged reviews, say). Drop rather than grow or flood NATS and Slack.
		em.mu.Unlock()
		em.dropped.Add(1)
		em.Log.V(1).Info("admission event deduplication table full; dropping event", "type", e.Type)
		return
	}
	em.last[key] = now
	em.mu.Unlock()
	e = events.Cap(e) // a multi-MB pull-secret name must not sit in the queue or reach NATS whole
	select {
	case em.ch <- e:
	default:
		em.Log.Info("admission event queue full; dropping event", "type", e.Type, "workload", e.Workload.String())
	}
}

// maxDedupKeys bounds the deduplication table: 10,000 keys of a few hundred bytes each.
const maxDedupKeys = 10000

// eventID is the same on every replica for one object, reason and window bucket.
func (em *EventEmitter) eventID(typ string, w *events.ObjectRef, reason string, now time.Time) string {
	em.init()
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%s|%s|%d", em.Cluster, typ, w, reason, now.UnixNano()/int64(em.Window))))
	return hex.EncodeToString(h[:16])
}

// WithEvents decorates a review: denials (and warn-mode would-be denials, and warnings) become
// events. Dry runs are answered the same but reported to nobody.
func WithEvents(em *EventEmitter, next ReviewFunc) ReviewFunc {
	return func(ctx context.Context, req admission.Request) Result {
		res := next(ctx, req)
		if req.DryRun != nil && *req.DryRun {
			// kubectl diff, apply --dry-run=server, GitOps previews: nothing was changed, nobody to tell.
			return res
		}
		var typ, msg string
		switch {
		case res.Outcome == OutcomeDenied:
			typ, msg = events.AdmissionDenied, res.Message
		case res.Outcome == OutcomeWarned && res.Message != "":
			typ, msg = events.AdmissionWarned, wouldDeny+res.Message
		case res.Outcome == OutcomeWarned:
			typ, msg = events.AdmissionWarned, strings.Join(res.Response.Warnings, "; ")
		default:
			return res
		}
		now := time.Now().UTC()
		w := &events.ObjectRef{Kind: kindLabel(req.Kind.Kind), Namespace: req.Namespace, Name: req.Name}
		em.emit(events.Event{
			APIVersion: events.APIVersion, ID: em.eventID(typ, w, string(res.Reason), now), Type: typ, Time: now, Reason: string(res.Reason), Message: msg,
			Workload: w,
			Actor:    &events.Actor{DisplayName: req.UserInfo.Username, Operation: strings.ToLower(string(req.Operation)), Source: events.ActorFromAdmission},
			Cluster:  em.Cluster,
		})
		return res
	}
}
