package auditguard

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credchain/credchain/internal/events"
)

// TestFileOffsetFollowsProcessing: a guard stops (or crashes) with lines read from the file but
// still in its queue. The saved offset must not be past them, so the next guard on the same state
// reads them again; once processing has gone past them, the offset moves on.
func TestFileOffsetFollowsProcessing(t *testing.T) {
	t.Parallel()
	g, store := newTestGuard(t) // never processes: every line read stays queued
	path := filepath.Join(t.TempDir(), "vault-audit.log")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 3 {
		b.WriteString(relevantLine(i) + "\n")
	}
	lines := b.String()

	stop := tail(t, g, store, path, 5*time.Millisecond)
	waitOpened(t, store, path)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		t.Fatal(err)
	}
	waitCount(t, "lines read", func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }, 3)
	time.Sleep(50 * time.Millisecond) // a few more polls: any save after the read has happened
	stop()
	if _, off, _ := store.Offset(path); off != 0 {
		t.Fatalf("saved offset %d with all %d bytes still queued, unprocessed: a restart skips them", off, len(lines))
	}

	// The next guard, on the same state, reads them again and processes them.
	v := &memVault{policies: map[string]string{}, roles: map[string][]string{}}
	g2 := NewGuard(v, store, events.NotifierFunc(func(context.Context, events.Event) error { return nil }), nil, testr.New(t))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = g2.Run(ctx) }()
	stop = tail(t, g2, store, path, 5*time.Millisecond)
	defer stop()
	waitCount(t, "lines read after the restart", func() float64 { return testutil.ToFloat64(g2.metrics.LinesRead) }, 3)
	waitCount(t, "saved offset once processed", func() float64 { _, off, _ := store.Offset(path); return float64(off) }, float64(len(lines)))
}

// TestCheckpointDroppedWhenQueueFull: a checkpoint never blocks the file sink; with the queue full
// it is dropped, and the saved offset stays where it was (the next checkpoint covers these lines).
func TestCheckpointDroppedWhenQueueFull(t *testing.T) {
	t.Parallel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	g := NewGuard(nil, store, events.LogNotifier{Log: testr.New(t)}, nil, testr.New(t), WithQueueSize(1))
	if !g.checkpoint(fileCheckpoint{path: "a", inode: 1, offset: 10}) {
		t.Fatal("checkpoint refused by an empty queue")
	}
	if g.checkpoint(fileCheckpoint{path: "a", inode: 1, offset: 20}) {
		t.Fatal("checkpoint queued beyond the queue's bound")
	}
	g.process(t.Context(), <-g.queue)
	if ino, off, ok := store.Offset("a"); !ok || ino != 1 || off != 10 {
		t.Fatalf("offset = %d %d %v, want inode 1 offset 10", ino, off, ok)
	}
}
