package events

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"
)

// requireDeadLetters checks sink's dead letters are exactly want (event ID → reason), each error
// containing errPart, and that the metric counted each reason.
func requireDeadLetters(t *testing.T, d *Dispatcher, sink string, want map[string]string, errPart string) {
	t.Helper()
	var w *worker
	for _, x := range d.workers {
		if x.sink.Name() == sink {
			w = x
		}
	}
	dls, err := w.outbox.DeadLetters()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, dl := range dls {
		got[dl.ID] = dl.Reason
		if !strings.Contains(dl.Error, errPart) {
			t.Errorf("dead letter %s: error %q, want it to contain %q", dl.ID, dl.Error, errPart)
		}
		if !strings.Contains(string(dl.Event), `"id":"`+dl.ID+`"`) {
			t.Errorf("dead letter %s does not keep its event: %s", dl.ID, dl.Event)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dead letters = %v, want %v", got, want)
	}
	perReason := map[string]int{}
	for _, r := range want {
		perReason[r]++
	}
	for _, r := range deadReasons {
		if n := testutil.ToFloat64(d.metrics.deadLettered.WithLabelValues(sink, r)); int(n) != perReason[r] {
			t.Errorf("credchain_events_dead_lettered_total{sink=%q,reason=%q} = %v, want %d", sink, r, n, perReason[r])
		}
	}
	if n := testutil.ToFloat64(d.metrics.deadLetters.WithLabelValues(sink)); int(n) != len(want) {
		t.Errorf("credchain_events_dead_letters{sink=%q} = %v, want %d", sink, n, len(want))
	}
}

// newTestDispatcher is a dispatcher over a fresh state store with fast backoff, run until the end
// of the test.
func newTestDispatcher(t *testing.T, lim Limits, sinks ...Sink) *Dispatcher {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	t.Cleanup(func() { _ = db.Close() })
	d, err := NewDispatcherWithLimits(db, testr.New(t), nil, lim, sinks...)
	if err != nil {
		t.Fatal(err)
	}
	d.minBackoff, d.maxBackoff = time.Millisecond, 5*time.Millisecond
	return d
}

// TestFailingEventsAreSetAside: an event that keeps failing is dead-lettered after MaxAttempts
// failures, or MaxAge after its time, and the events behind it are delivered; failures that are
// the destination's state (ErrUnavailable, Retry-After) never count as attempts.
func TestFailingEventsAreSetAside(t *testing.T) {
	t.Parallel()
	old := time.Now().Add(-25 * time.Hour)
	for name, tc := range map[string]struct {
		// fail answers the event with policy p on its n-th try (from 1).
		fail  func(p string, n int) error
		time  map[string]time.Time // event times other than now
		want  map[string]string    // dead letters: event ID → reason
		acked string               // policies delivered, in order
	}{
		"an event failing while the sink is up: MaxAttempts": {
			fail: func(p string, _ int) error {
				if p == "eso-svc-1" {
					return errors.New("nats: unexpected stream error")
				}
				return nil
			},
			want: map[string]string{"e1": DeadAttempts}, acked: "eso-svc-0,eso-svc-2,eso-svc-3",
		},
		"an outage shorter than MaxAge: retried past MaxAttempts, nothing lost": {
			fail: func(_ string, n int) error {
				if n <= 8 {
					return fmt.Errorf("nats: %w: connection closed", ErrUnavailable)
				}
				return nil
			},
			acked: "eso-svc-0,eso-svc-1,eso-svc-2,eso-svc-3",
		},
		"rate limited past MaxAttempts: nothing lost": {
			fail: func(_ string, n int) error {
				if n <= 8 {
					return &RetryAfterError{After: time.Millisecond, Err: errors.New("slack rate limit exceeded")}
				}
				return nil
			},
			acked: "eso-svc-0,eso-svc-1,eso-svc-2,eso-svc-3",
		},
		"events older than MaxAge during an outage: MaxAge": {
			fail: func(p string, n int) error {
				if n <= 3 {
					return fmt.Errorf("nats: %w: connection closed", ErrUnavailable)
				}
				return nil
			},
			time: map[string]time.Time{"e0": old, "e1": old},
			want: map[string]string{"e0": DeadAge, "e1": DeadAge}, acked: "eso-svc-2,eso-svc-3",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tries := map[string]int{}
			sink := &fakeSink{name: "fake", fail: func(e Event) error { // called under the sink's lock
				tries[e.Policy]++
				return tc.fail(e.Policy, tries[e.Policy])
			}}
			d := newTestDispatcher(t, Limits{MaxAttempts: 3, MaxAge: 24 * time.Hour}, sink)
			for i := range 4 {
				e := event(i)
				e.ID = fmt.Sprintf("e%d", i)
				if at, ok := tc.time[e.ID]; ok {
					e.Time = at
				}
				if err := d.Notify(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			runDispatcher(t, d)
			waitFor(t, "the outbox drained", func() bool { return d.workers[0].outbox.Len() == 0 })
			if got := strings.Join(sink.ackedPolicies(), ","); got != tc.acked {
				t.Errorf("delivered %s, want %s", got, tc.acked)
			}
			if tc.want == nil {
				tc.want = map[string]string{}
			}
			requireDeadLetters(t, d, "fake", tc.want, "")
		})
	}
}

// TestOutboxBounds: past MaxPending events or MaxPendingBytes the oldest pending events are
// dead-lettered (reason overflow, counted); past MaxDeadLetters the oldest dead letters go.
func TestOutboxBounds(t *testing.T) {
	t.Parallel()
	size := func() int64 { // one test event, encoded as the outbox stores it
		e := event(0)
		e.ID, e.Time = "e0", time.Now().UTC()
		b, _ := json.Marshal(e)
		return int64(len(b))
	}()
	for name, tc := range map[string]struct {
		lim         Limits
		pending     []string // IDs left pending, oldest first
		deadLetters []string // IDs kept as dead letters, oldest first
	}{
		"MaxPending":     {lim: Limits{MaxPending: 3}, pending: []string{"e3", "e4", "e5"}, deadLetters: []string{"e0", "e1", "e2"}},
		"MaxDeadLetters": {lim: Limits{MaxPending: 2, MaxDeadLetters: 2}, pending: []string{"e4", "e5"}, deadLetters: []string{"e2", "e3"}},
		"MaxDeadLetterBytes": {lim: Limits{MaxPending: 1, MaxDeadLetterBytes: 3 * (size + 200)},
			pending: []string{"e5"}, deadLetters: []string{"e2", "e3", "e4"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newTestDispatcher(t, tc.lim, &fakeSink{name: "down"}) // never run: nothing delivered
			for i := range 6 {
				e := event(i)
				e.ID = fmt.Sprintf("e%d", i)
				if err := d.Notify(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			o := d.workers[0].outbox
			ps, err := o.Peek(100)
			if err != nil {
				t.Fatal(err)
			}
			var pending []string
			for _, p := range ps {
				pending = append(pending, p.Event.ID)
			}
			if !slices.Equal(pending, tc.pending) {
				t.Errorf("pending %v, want %v", pending, tc.pending)
			}
			dls, err := o.DeadLetters()
			if err != nil {
				t.Fatal(err)
			}
			var dead []string
			for _, dl := range dls {
				dead = append(dead, dl.ID)
				if dl.Reason != DeadOverflow {
					t.Errorf("dead letter %s: reason %q, want %q", dl.ID, dl.Reason, DeadOverflow)
				}
			}
			if !slices.Equal(dead, tc.deadLetters) {
				t.Errorf("dead letters %v, want %v", dead, tc.deadLetters)
			}
			if n := int(testutil.ToFloat64(d.metrics.deadLettered.WithLabelValues("down", DeadOverflow))); n != 6-len(tc.pending) {
				t.Errorf("dead_lettered_total{reason=overflow} = %d, want %d", n, 6-len(tc.pending))
			}
			if n := testutil.ToFloat64(d.metrics.pending.WithLabelValues("down")); int(n) != len(tc.pending) {
				t.Errorf("credchain_events_pending = %v, want %d", n, len(tc.pending))
			}
			if b := testutil.ToFloat64(d.metrics.pendingBytes.WithLabelValues("down")); int64(b) != o.Bytes() || o.Bytes() > d.limits.MaxPendingBytes {
				t.Errorf("credchain_events_pending_bytes = %v, outbox %d bytes, bound %d", b, o.Bytes(), d.limits.MaxPendingBytes)
			}
		})
	}
}

// TestOutboxBytesBound: events of MaxEventBytes each fill MaxPendingBytes long before MaxPending.
func TestOutboxBytesBound(t *testing.T) {
	t.Parallel()
	d := newTestDispatcher(t, Limits{MaxPendingBytes: 2 * MaxEventBytes}, &fakeSink{name: "down"})
	for i := range 5 {
		e := event(i)
		e.ID = fmt.Sprintf("e%d", i)
		e.Message = strings.Repeat("\x00", MaxMessageBytes) // 24 KiB encoded
		e.BlastRadius = &BlastRadius{Workloads: make([]ObjectRef, MaxListEntries)}
		for j := range e.BlastRadius.Workloads {
			e.BlastRadius.Workloads[j] = ObjectRef{Kind: "Deployment", Namespace: strings.Repeat("\x00", 200), Name: strings.Repeat("\x00", 200)}
		}
		if err := d.Notify(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	o := d.workers[0].outbox
	if o.Bytes() > 2*MaxEventBytes || o.Len() == 0 || o.Len() >= 5 {
		t.Fatalf("outbox holds %d events, %d bytes; want fewer than 5 within %d bytes", o.Len(), o.Bytes(), 2*MaxEventBytes)
	}
	if n := testutil.ToFloat64(d.metrics.deadLettered.WithLabelValues("down", DeadOverflow)); int(n)+o.Len() != 5 {
		t.Errorf("%v dead-lettered + %d pending, want 5", n, o.Len())
	}
}

// TestCorruptEntryIsSetAside: an outbox entry that does not decode (written by a future version,
// or damaged) is dead-lettered instead of stopping delivery at it.
func TestCorruptEntryIsSetAside(t *testing.T) {
	t.Parallel()
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	defer db.Close()
	o, err := NewOutbox(db, "fake", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Add(event(0)); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(o.bucket)
		seq, _ := b.NextSequence()
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(`{"id": 7`))
	}); err != nil {
		t.Fatal(err)
	}
	// A restart finds the entry.
	sink := &fakeSink{name: "fake"}
	d, err := NewDispatcher(db, testr.New(t), nil, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Notify(t.Context(), event(2)); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	waitFor(t, "the outbox drained", func() bool { return d.workers[0].outbox.Len() == 0 })
	if got := strings.Join(sink.ackedPolicies(), ","); got != "eso-svc-0,eso-svc-2" {
		t.Errorf("delivered %s", got)
	}
	if n := testutil.ToFloat64(d.metrics.deadLettered.WithLabelValues("fake", DeadCorrupt)); n != 1 {
		t.Errorf("dead_lettered_total{reason=corrupt} = %v, want 1", n)
	}
}

// TestLimitsValidate: limits that cannot work are refused before start, all at once.
func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		lim  Limits
		want string
	}{
		"defaults":  {},
		"negative":  {lim: Limits{MaxPending: -1, MaxAge: -time.Second}, want: "event max pending events: must not be negative\nevent max age: must not be negative"},
		"too small": {lim: Limits{MaxPendingBytes: 1024}, want: "event max pending bytes 1024: must be at least 262144, the largest event"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := DeliveryConfig{Limits: tc.lim}
			c.SetDefaults()
			err := c.Validate()
			if got := fmt.Sprint(err); (err != nil || tc.want != "") && got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
	var lim Limits
	lim.SetDefaults()
	if lim != (Limits{MaxPending: 10000, MaxPendingBytes: 32 << 20, MaxAttempts: 50, MaxAge: 24 * time.Hour, MaxDeadLetters: 1000, MaxDeadLetterBytes: 8 << 20}) {
		t.Errorf("defaults = %+v", lim)
	}
}
