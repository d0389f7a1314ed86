package events

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	bolt "go.etcd.io/bbolt"
)

// TestOutboxBoundedByDefault: with a sink that never answers, the outbox stops growing at its
// default bound (10,000 events) instead of filling the state volume.
func TestOutboxBoundedByDefault(t *testing.T) {
	t.Parallel()
	// NoSync: 10,001 fsyncs would take the shared machine a minute; durability is not tested here.
	db, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := NewDispatcher(db, logr.Discard(), nil, &fakeSink{name: "down"}) // never Run: nothing is delivered
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_001 {
		e := event(i)
		e.ID = fmt.Sprint(i)
		if err := d.Notify(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.workers[0].outbox.Len(); n != 10_000 {
		t.Fatalf("outbox holds %d events, want the default bound of 10000", n)
	}
	first, err := d.workers[0].outbox.Peek(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].Event.ID != "1" {
		t.Fatalf("oldest pending = %+v, want event 1 (event 0, the oldest, set aside)", first)
	}
}
