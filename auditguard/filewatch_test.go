package auditguard

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
