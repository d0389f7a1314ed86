package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
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
	em.last[key] = now
	if len(em.last) > 10000 { // forget expired keys now and then; bounded memory
		for k, t := range em.last {
			if now.Sub(t) >= em.Window {
				delete(em.last, k)
			}
		}
	}
	em.mu.Unlock()
	select {
	case em.ch <- e:
	default:
		em.Log.Info("admission event queue full; dropping event", "type", e.Type, "workload", e.Workload.String())
	}
}

// eventID is the same on every replica for one object, reason and window bucket.
func (em *EventEmitter) eventID(typ string, w *events.ObjectRef, reason string, now time.Time) string {
	em.init()
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%s|%s|%d", em.Cluster, typ, w, reason, now.UnixNano()/int64(em.Window))))
	return hex.EncodeToString(h[:16])
}

// WithEvents decorates an admission.Handler: denials (and warn-mode would-be denials) become events.
func WithEvents(em *EventEmitter, next admission.Handler) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		ctx, rh := withReason(ctx)
		resp := next.Handle(ctx, req)
		if req.DryRun != nil && *req.DryRun {
			// kubectl diff, apply --dry-run=server, GitOps previews: nothing was changed, nobody to tell.
			return resp
		}
		var typ, msg string
		switch {
		case !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusForbidden:
			typ, msg = events.AdmissionDenied, resp.Result.Message
		case resp.Allowed && len(resp.Warnings) > 0:
			typ, msg = events.AdmissionWarned, strings.Join(resp.Warnings, "; ")
		default:
			return resp
		}
		now := time.Now().UTC()
		w := &events.ObjectRef{Kind: req.Kind.Kind, Namespace: req.Namespace, Name: req.Name}
		em.emit(events.Event{
			APIVersion: events.APIVersion, ID: em.eventID(typ, w, string(rh.r), now), Type: typ, Time: now, Reason: string(rh.r), Message: msg,
			Workload: w,
			Actor:    &events.Actor{DisplayName: req.UserInfo.Username, Operation: strings.ToLower(string(req.Operation))},
			Cluster:  em.Cluster,
		})
		return resp
	})
}
