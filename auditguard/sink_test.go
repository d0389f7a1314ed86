package auditguard

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credchain/credchain/internal/events"
)

func relevantLine(i int) string {
	return strings.Replace(deleteEntry, `"id":"4c1f"`, fmt.Sprintf(`"id":"req-%d"`, i), 1)
}

func newTestGuard(t *testing.T) (*Guard, *Store) {
	t.Helper()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// A nil VaultAPI: these tests never start processing, so any Vault call would panic and fail.
	return NewGuard(nil, store, events.LogNotifier{Log: testr.New(t)}, nil, testr.New(t), WithQueueSize(100000)), store
}

func waitCount(t *testing.T, what string, get func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for get() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", what, get(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSocketSinkConcurrentConnections(t *testing.T) {
	t.Parallel()
	g, _ := newTestGuard(t)
	for name, spec := range map[string]string{
		"tcp":  "tcp://127.0.0.1:0",
		"unix": "unix://" + filepath.Join(t.TempDir(), "audit.sock"),
	} {
		t.Run(name, func(t *testing.T) {
			l, err := Listen(spec)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error)
			go func() { done <- (&SocketSink{Listener: l, Guard: g, Log: testr.New(t)}).Run(ctx) }()
			before := testutil.ToFloat64(g.metrics.LinesRead)
			const nodes, lines = 3, 500 // every Vault node of an HA cluster opens its own connection
			var wg sync.WaitGroup
			for n := range nodes {
				wg.Go(func() {
					c, err := net.Dial(l.Addr().Network(), l.Addr().String())
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					for i := range lines {
						if _, err := fmt.Fprintln(c, relevantLine(n*lines+i)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			waitCount(t, "lines read", func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) - before }, nodes*lines)
			waitCount(t, "connections", func() float64 { return testutil.ToFloat64(g.metrics.Connections) }, 0)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// waitOpened waits until a FileSink started on an existing file has opened it: on a first run it
// saves the offset it starts from (the file's end) right away. Lines written before that are the
// file's history, which a first run skips.
func waitOpened(t *testing.T, store *Store, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, ok := store.Offset(path); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink never opened %s", path)
		}
		time.Sleep(time.Millisecond)
	}
}

// tail runs a FileSink on path until the returned stop, which fails the test if Run failed.
func tail(t *testing.T, g *Guard, store *Store, path string, poll time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- (&FileSink{Path: path, Guard: g, Store: store, Log: testr.New(t), Poll: poll}).Run(ctx)
	}()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestFileSinkRotatedTwice: logrotate runs twice while Vault is slow to reopen; lines Vault still
// appends to the previous file are read, and the file before that is finished before it is let go.
func TestFileSinkRotatedTwice(t *testing.T) {
	t.Parallel()
	g, store := newTestGuard(t)
	path := filepath.Join(t.TempDir(), "vault-audit.log")
	read := func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }
	line := 0
	write := func(f *os.File) {
		t.Helper()
		if _, err := fmt.Fprintln(f, relevantLine(line)); err != nil {
			t.Fatal(err)
		}
		line++
	}
	create := func() *os.File {
		t.Helper()
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a := create()
	stop := tail(t, g, store, path, 5*time.Millisecond)
	waitOpened(t, store, path)
	write(a)
	waitCount(t, "lines read from the first file", read, 1)
	for i, suffix := range []string{".1", ".2"} {
		if err := os.Rename(path, path+suffix); err != nil {
			t.Fatal(err)
		}
		write(a) // Vault has not reopened yet
		next := create()
		write(next)
		waitCount(t, "lines read after rotation "+suffix, read, float64(3+2*i))
		a = next
	}
	write(a)
	waitCount(t, "lines read", read, 6)
	stop()
}

// TestFileSinkTruncatedAndRegrown: copytruncate, and Vault writes more than had been read before
// the sink looks again; the file is read from its start, not from the old offset mid-stream.
func TestFileSinkTruncatedAndRegrown(t *testing.T) {
	t.Parallel()
	g, store := newTestGuard(t)
	path := filepath.Join(t.TempDir(), "vault-audit.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			b.WriteString(relevantLine(i) + "\n")
		}
		return b.String()
	}
	read := func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }
	stop := tail(t, g, store, path, 50*time.Millisecond)
	waitOpened(t, store, path)
	if _, err := f.WriteString(lines(0, 3)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, "lines read", read, 3)
	// Truncate and write five lines of the same length right away: the file is longer than the
	// offset already read when the sink next looks.
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(lines(3, 8)), 0); err != nil {
		t.Fatal(err)
	}
	waitCount(t, "lines read after truncation", read, 8)
	if n := testutil.ToFloat64(g.metrics.DecodeErrors); n != 0 {
		t.Errorf("%v decode errors: read from the middle of a line", n)
	}
	stop()
}

func TestFileSinkRotationTruncationResume(t *testing.T) {
	t.Parallel()
	g, store := newTestGuard(t)
	// Processing runs: the offset saved is the one processing reached (checkpoint.go).
	g.vault = &memVault{policies: map[string]string{}, roles: map[string][]string{}}
	g.notify = events.NotifierFunc(func(context.Context, events.Event) error { return nil })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = g.Run(ctx) }()
	path := filepath.Join(t.TempDir(), "vault-audit.log")
	write := func(f *os.File, from, n int) {
		for i := from; i < from+n; i++ {
			if _, err := fmt.Fprintln(f, relevantLine(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	read := func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }
	stop := tail(t, g, store, path, 5*time.Millisecond)
	waitOpened(t, store, path)

	write(f, 0, 10)
	waitCount(t, "lines read", read, 10)

	// logrotate's rename with "create": the new file exists before Vault reopens (SIGHUP), and
	// Vault keeps appending to the old one until then — after the sink has switched.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(f, 10, 2)
	nf, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	write(nf, 12, 1)
	waitCount(t, "lines read from the new file", read, 13) // the sink has switched
	write(f, 13, 3)
	f.Close()
	write(nf, 16, 6)
	waitCount(t, "lines read after rotation", read, 22)

	// copytruncate: same file, size back to zero.
	if err := nf.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := nf.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	write(nf, 22, 3)
	waitCount(t, "lines read after truncation", read, 25)

	// A partial line is not consumed until its newline arrives.
	if _, err := nf.WriteString(relevantLine(25)[:100]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if got := read(); got != 25 {
		t.Fatalf("partial line delivered: %v", got)
	}
	waitCount(t, "saved offset", func() float64 { _, off, _ := store.Offset(path); return float64(off) }, float64(3*len(relevantLine(22))+3))
	stop()

	// Restart: resume from the persisted offset, not from the start.
	if _, err := nf.WriteString(relevantLine(25)[100:] + "\n"); err != nil {
		t.Fatal(err)
	}
	write(nf, 26, 4)
	g2 := NewGuard(nil, store, events.LogNotifier{Log: testr.New(t)}, nil, testr.New(t))
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	go func() {
		_ = (&FileSink{Path: path, Guard: g2, Store: store, Log: testr.New(t), Poll: 5 * time.Millisecond}).Run(ctx2)
	}()
	waitCount(t, "lines read after restart", func() float64 { return testutil.ToFloat64(g2.metrics.LinesRead) }, 5)
	time.Sleep(30 * time.Millisecond)
	if got := testutil.ToFloat64(g2.metrics.LinesRead); got != 5 {
		t.Fatalf("after restart read %v lines, want 5", got)
	}
	// The queue holds the complete line that straddled the restart.
	for len(g2.queue) > 0 {
		q := <-g2.queue
		if q.checkpoint != nil {
			continue
		}
		if _, err := DecodeEntry(q.line); err != nil {
			t.Fatalf("queued a broken line: %v", err)
		}
	}
}

// TestFileSinkStartOffset: where tailing starts. Without a saved offset the file's existing
// entries are history, not news (replaying them would send an event for every past delete at
// install); a saved offset resumes; a file the guard has not read before is read from its start.
func TestFileSinkStartOffset(t *testing.T) {
	t.Parallel()
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			b.WriteString(relevantLine(i) + "\n")
		}
		return b.String()
	}
	tests := map[string]struct {
		before string // the file when the sink starts; "" means it does not exist yet, unless empty
		empty  bool
		saved  func(path string, inode uint64) (uint64, int64, bool)
		want   float64 // lines read, counting 2 written after the start
	}{
		"first run: existing entries skipped": {before: lines(0, 3), want: 2},
		"first run, empty file":               {empty: true, want: 2},
		"saved offset, same file: resumes": {before: lines(0, 3), want: 3,
			saved: func(_ string, inode uint64) (uint64, int64, bool) { return inode, int64(len(lines(0, 2))), true }},
		"saved offset of another file (rotated while down): read from its start": {before: lines(0, 3), want: 5,
			saved: func(_ string, inode uint64) (uint64, int64, bool) { return inode + 1, int64(len(lines(0, 2))), true }},
		"file created after the start: read from its start": {want: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g, store := newTestGuard(t)
			path := filepath.Join(t.TempDir(), "vault-audit.log")
			if tc.before != "" || tc.empty {
				if err := os.WriteFile(path, []byte(tc.before), 0o600); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if tc.saved != nil {
					inode, off, _ := tc.saved(path, inodeOf(fi))
					if err := store.SaveOffset(path, inode, off); err != nil {
						t.Fatal(err)
					}
				}
			}
			read := func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }
			stop := tail(t, g, store, path, 5*time.Millisecond)
			defer stop()
			if tc.saved == nil && tc.before == "" && !tc.empty {
				time.Sleep(200 * time.Millisecond) // the sink has looked for the file and found none
			} else {
				waitOpened(t, store, path)
			}
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(lines(100, 102)); err != nil {
				t.Fatal(err)
			}
			waitCount(t, "lines read", read, tc.want)
			time.Sleep(50 * time.Millisecond)
			if got := read(); got != tc.want {
				t.Fatalf("lines read = %v, want %v", got, tc.want)
			}
		})
	}
}
