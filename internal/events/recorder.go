package events

import (
	"context"
	"slices"
	"sync"
)

// Recorder is a Notifier that keeps events in memory, in order: for tests, and for embedding
// credchain where the host delivers events itself.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

var _ Notifier = (*Recorder)(nil)

// Notify implements Notifier.
func (r *Recorder) Notify(_ context.Context, e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// All returns a copy of every event so far.
func (r *Recorder) All() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Count is the number of events so far.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// OfType returns the events of one type.
func (r *Recorder) OfType(typ string) []Event {
	var out []Event
	for _, e := range r.All() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}
