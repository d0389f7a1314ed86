package webhook

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Two replicas must name the same denial the same way, so the JetStream stream (Nats-Msg-Id) keeps
// one; anything that makes it a different denial must give a different ID.
func TestEventIDAcrossReplicas(t *testing.T) {
	a := &EventEmitter{Cluster: "prod-eu", Window: 10 * time.Minute}
	b := &EventEmitter{Cluster: "prod-eu", Window: 10 * time.Minute}
	w := &events.ObjectRef{Kind: "Deployment", Namespace: "prod", Name: "order-service"}
	at := time.Date(2026, 11, 27, 9, 1, 0, 0, time.UTC)
	base := a.eventID(events.AdmissionDenied, w, "NotSynced", at)
	if got := b.eventID(events.AdmissionDenied, w, "NotSynced", at.Add(3*time.Minute)); got != base {
		t.Fatalf("replica b, same denial 3m later in the same window: ID %s, want %s", got, base)
	}
	for name, id := range map[string]string{
		"other workload":  a.eventID(events.AdmissionDenied, &events.ObjectRef{Kind: "Deployment", Namespace: "prod", Name: "payment"}, "NotSynced", at),
		"other reason":    a.eventID(events.AdmissionDenied, w, "Unmanaged", at),
		"other type":      a.eventID(events.AdmissionWarned, w, "NotSynced", at),
		"next window":     a.eventID(events.AdmissionDenied, w, "NotSynced", at.Add(10*time.Minute)),
		"other cluster":   (&EventEmitter{Cluster: "prod-us", Window: 10 * time.Minute}).eventID(events.AdmissionDenied, w, "NotSynced", at),
		"other namespace": a.eventID(events.AdmissionDenied, &events.ObjectRef{Kind: "Deployment", Namespace: "staging", Name: "order-service"}, "NotSynced", at),
	} {
		if id == base {
			t.Errorf("%s: same ID %s as the original denial", name, id)
		}
		if len(id) != 32 {
			t.Errorf("%s: ID %q is not 32 hex characters", name, id)
		}
	}
}

// sinkNotifier delivers straight to a sink (no outbox), enough to see what the stream keeps, and
// counts the publishes NATS acknowledged.
type sinkNotifier struct {
	*events.NATS
	acked *atomic.Int32
}

func (s sinkNotifier) Notify(ctx context.Context, e events.Event) error {
	err := s.Send(ctx, e)
	if err == nil {
		s.acked.Add(1)
	}
	return err
}

// TestReplicasDenialIsOneStreamMessage: two webhook replicas deny the same rollout; each reports
// it (their dedup is local), and the JetStream stream keeps one message.
func TestReplicasDenialIsOneStreamMessage(t *testing.T) {
	srv := testenv.StartNATS(t)
	deny := func(context.Context, admission.Request) Result {
		msg := "secret \"regcred-order-service\" comes from ExternalSecret prod/order-service-regcred, which is not synced"
		return Result{Response: admission.Denied(msg), Outcome: OutcomeDenied, Reason: ReasonNotSynced, Message: msg}
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Namespace: "prod", Name: "order-service", Operation: admissionv1.Update,
	}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var acked atomic.Int32
	for replica := range 2 {
		sink, err := events.NewNATS(events.NATSConfig{URLs: []string{srv.ClientURL()}, Cluster: "prod-eu", CreateStream: true}, logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		// A window of a century: both replicas' denials fall in one window period even when the
		// test runs across a 10-minute boundary of the wall clock (the default window's periods).
		em := &EventEmitter{Notifier: sinkNotifier{sink, &acked}, Cluster: "prod-eu", Log: logr.Discard(), Window: 100 * 365 * 24 * time.Hour}
		go func() { _ = em.Run(ctx) }()
		h := WithEvents(em, deny)
		for range 3 { // retries of the same rollout: deduplicated by the replica itself
			if resp := h(ctx, req).Response; resp.Allowed {
				t.Fatalf("replica %d admitted", replica)
			}
		}
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for acked.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := acked.Load(); n != 2 {
		t.Fatalf("%d publishes acknowledged, want one per replica (each deduplicates only its own retries)", n)
	}
	st, err := js.Stream(ctx, "CREDCHAIN")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs := info.State.Msgs
	if msgs != 1 {
		t.Fatalf("stream holds %d admission events for one denial seen by two replicas, want 1", msgs)
	}
}

// TestDryRunIsNotAnEvent: a server-side dry run is answered like the real request but reported to nobody.
func TestDryRunIsNotAnEvent(t *testing.T) {
	rec := &events.Recorder{}
	em := &EventEmitter{Notifier: rec, Log: logr.Discard()}
	go func() { _ = em.Run(t.Context()) }()
	deny := func(context.Context, admission.Request) Result {
		return Result{Response: admission.Denied("not synced"), Outcome: OutcomeDenied, Reason: ReasonNotSynced, Message: "not synced"}
	}
	h := WithEvents(em, deny)
	for name, tc := range map[string]struct {
		dryRun *bool
		events int
	}{
		"server-side dry run": {dryRun: ptr.To(true), events: 0},
		"real update":         {dryRun: ptr.To(false), events: 1},
	} {
		n := len(rec.All())
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{DryRun: tc.dryRun, Namespace: "prod", Name: name,
			Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Operation: admissionv1.Update}}
		if resp := h(t.Context(), req).Response; resp.Allowed {
			t.Fatalf("%s: admitted", name)
		}
		deadline := time.Now().Add(30 * time.Second)
		for len(rec.All())-n < tc.events && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // an event that should not come has had its chance
		if got := len(rec.All()) - n; got != tc.events {
			t.Errorf("%s: %d events, want %d", name, got, tc.events)
		}
	}
}
