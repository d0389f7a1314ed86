package events

import (
	"path/filepath"
	"slices"
	"testing"
)

// An upgraded guard moves what was pending in its state store's outboxes into its own outbox
// file: nothing pending is lost, nothing is moved twice.
func TestMoveOutboxes(t *testing.T) {
	dir := t.TempDir()
	state := openDB(t, filepath.Join(dir, "state.db"))
	defer state.Close()
	var want []string
	for sink, n := range map[string]int{"nats": 2, "slack": 1} {
		o, err := NewOutbox(state, sink, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			e := event(i)
			e.ID = sink + "-" + e.Policy
			want = append(want, e.ID)
			if _, err := o.Add(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	path := filepath.Join(dir, "events.db")
	moved, err := MoveOutboxes(state, path)
	if err != nil || moved != 3 {
		t.Fatalf("moved %d, %v; want 3", moved, err)
	}
	if again, err := MoveOutboxes(state, path); err != nil || again != 0 {
		t.Errorf("second move: %d, %v; want nothing", again, err)
	}
	out := openDB(t, path)
	defer out.Close()
	var got []string
	for _, sink := range []string{"nats", "slack"} {
		o, err := NewOutbox(out, sink, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		pending, err := o.Peek(10)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pending {
			got = append(got, p.Event.ID)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("pending after the move: %q, want %q", got, want)
	}
	if o, err := NewOutbox(state, "nats", Limits{}); err != nil || o.Len() != 0 {
		t.Errorf("the state store still holds %d events (%v)", o.Len(), err)
	}
}
