package auditguard

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credchain/credchain/internal/events"
)

// TestFileSinkWakesOnInotify: with a poll of an hour, only inotify can make the tail read within
// the test's time: appends, rotation (rename + create, Vault still appending to the old file) and
// copytruncate are each read at once.
func TestFileSinkWakesOnInotify(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(t *testing.T, path string, f *os.File) (want float64){
		"append": func(t *testing.T, _ string, f *os.File) float64 {
			writeLines(t, f, 0, 2)
			return 2
		},
		"rotation": func(t *testing.T, path string, f *os.File) float64 {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			nf, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nf.Close() })
			writeLines(t, nf, 0, 1)
			writeLines(t, f, 1, 1) // Vault has not reopened yet
			return 2
		},
		"copytruncate": func(t *testing.T, _ string, f *os.File) float64 {
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			writeLines(t, f, 0, 1)
			return 1
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g, store := newTestGuard(t)
			path := filepath.Join(t.TempDir(), "vault-audit.log")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			stop := tail(t, g, store, path, time.Hour)
			defer stop()
			waitOpened(t, store, path)
			want := change(t, path, f)
			waitCount(t, "lines read", func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }, want)
		})
	}
}

// TestFileSinkUnwatchedDirectory: the audit file's directory does not exist when the guard starts
// (a volume mounted later), so it cannot be watched: the tail polls at PollUnwatched, and watches
// the directory once it is there.
func TestFileSinkUnwatchedDirectory(t *testing.T) {
	t.Parallel()
	g, store := newTestGuard(t)
	dir := filepath.Join(t.TempDir(), "audit")
	path := filepath.Join(dir, "vault-audit.log")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- (&FileSink{Path: path, Guard: g, Store: store, Log: testr.New(t), Poll: time.Hour, PollUnwatched: 5 * time.Millisecond}).Run(ctx)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	time.Sleep(50 * time.Millisecond) // polls find no directory
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeLines(t, f, 0, 1)
	read := func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }
	waitCount(t, "lines read by polling", read, 1)
	// Watched now: with an hour's poll, only inotify reads the next line.
	time.Sleep(20 * time.Millisecond)
	writeLines(t, f, 1, 1)
	waitCount(t, "lines read once watched", read, 2)
}

func writeLines(t *testing.T, f *os.File, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := fmt.Fprintln(f, relevantLine(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkFileTailWake measures what the file tail adds to the restore window: from one audit
// line's write(2) returning to the guard having read it (LinesRead), 500 lines one at a time, with
// inotify and the default 1s poll behind it. The baseline is the same through a SocketSink on
// loopback, in the same process. No Vault: only the readers.
func BenchmarkFileTailWake(b *testing.B) {
	line := []byte(relevantLine(0) + "\n")
	measure := func(b *testing.B, g *Guard, w io.Writer) {
		read := func() float64 { return testutil.ToFloat64(g.metrics.LinesRead) }
		var lat []time.Duration
		for b.Loop() {
			lat = lat[:0]
			for range 500 {
				want := read() + 1
				t0 := time.Now()
				if _, err := w.Write(line); err != nil {
					b.Fatal(err)
				}
				for read() < want {
					if time.Since(t0) > 10*time.Second {
						b.Fatal("line not read")
					}
					runtime.Gosched()
				}
				lat = append(lat, time.Since(t0))
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	}
	guard := func(b *testing.B) (*Guard, *Store) {
		store, err := OpenStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		return NewGuard(nil, store, events.NotifierFunc(func(context.Context, events.Event) error { return nil }), nil, logr.Discard(), WithQueueSize(1<<20)), store
	}
	b.Run("socket", func(b *testing.B) {
		g, _ := guard(b)
		l, err := Listen("tcp://127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = (&SocketSink{Listener: l, Guard: g, Log: logr.Discard()}).Run(ctx) }()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		measure(b, g, c)
	})
	b.Run("file", func(b *testing.B) {
		g, store := guard(b)
		path := filepath.Join(b.TempDir(), "vault-audit.log")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = (&FileSink{Path: path, Guard: g, Store: store, Log: logr.Discard()}).Run(ctx) }()
		for deadline := time.Now().Add(30 * time.Second); ; {
			if _, _, ok := store.Offset(path); ok {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the sink never opened the file")
			}
			time.Sleep(time.Millisecond)
		}
		measure(b, g, f)
	})
}
