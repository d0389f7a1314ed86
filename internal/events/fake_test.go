package events

import (
	"context"
	"sync"
)

// fakeSink is a hand-written Sink for the dispatcher's tests: it answers each event with fail(e)
// (nil fail: always acknowledge) and records every event it acknowledged, in order.
type fakeSink struct {
	name string
	fail func(Event) error

	mu    sync.Mutex
	acked []Event
	tries int
}

var _ Sink = (*fakeSink)(nil)

func (s *fakeSink) Name() string { return s.name }

func (s *fakeSink) Send(_ context.Context, e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	if s.fail != nil {
		if err := s.fail(e); err != nil {
			return err
		}
	}
	s.acked = append(s.acked, e)
	return nil
}

// ackedPolicies is the Policy of every acknowledged event, in order.
func (s *fakeSink) ackedPolicies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.acked))
	for i, e := range s.acked {
		out[i] = e.Policy
	}
	return out
}

func (s *fakeSink) all() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.acked...)
}

// runDispatcher runs d until the test ends.
func runDispatcher(t interface {
	Context() context.Context
	Cleanup(func())
}, d *Dispatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}
