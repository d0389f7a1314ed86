package auditguard_test

import (
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/testenv"
)

// TestFloodStaysBounded floods the real guard (auditguard.Run against a dev Vault, on its TCP audit
// socket) with twice --max-connections connections, each sending a 3 MiB line while every other
// one is mid-line, and checks the bounds hold: the extra connections are closed at once and counted,
// lines the shared --line-buffer-bytes cannot hold are skipped and counted, every buffer goes back
// when the lines end, the guard keeps reading afterwards, and the process' heap never grows by more
// than the worst case Config.MemoryBound computes (without its baseline, which was there before)
// plus slack for the test's own allocations. The heap is sampled, not timed. Without the bounds
// each connection buffers its whole line: 32 × 4 MiB live, twice that before a collection.
func TestFloodStaysBounded(t *testing.T) {
	// Not parallel: the heap is the process'.
	v := testenv.StartVault(t)
	listen := testenv.FreeAddrT(t)
	metrics := testenv.FreeAddrT(t)
	health := testenv.FreeAddrT(t)
	cfg := auditguard.Config{Listen: []string{"tcp://" + listen}, StateDir: filepath.Join(t.TempDir(), "state"),
		MetricsAddr: metrics, HealthAddr: health, ReconcileInterval: time.Hour,
		MaxConnections: 16, MaxLine: 4 << 20, LineBufferBytes: 16 << 20, QueueBytes: 1 << 20}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	defer runGuard(t, cfg, client(t, v.Addr, v.RootToken))()
	metric := func(series string) float64 {
		t.Helper()
		f, err := testenv.Metric(t.Context(), "http://"+metrics+"/metrics", series)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	// An irrelevant LIST response entry of 3 MiB, sent in two halves: no line can end before every
	// connection is holding the first half of its own. Allocated before the baseline, and once.
	body := strings.Repeat("x", 3<<20)
	first := []byte(`{"auth":{},"request":{"operation":"list","path":"sys/policies/acl"},"response":{"data":"` + body[:len(body)/2])
	second := []byte(body[len(body)/2:] + `"},"type":"response"}` + "\n")
	// The heap before, and its peak while the flood lasts.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	})

	const conns = 32
	conn := make([]net.Conn, conns)
	for i := range conn {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conn[i] = c
	}
	waitFor(t, "16 connections open and 16 refused", func() bool {
		return metric("credchain_auditguard_socket_connections") == 16 && metric("credchain_auditguard_connections_refused_total") == 16
	})
	var wg sync.WaitGroup
	for _, c := range conn {
		wg.Go(func() {
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
			_, _ = c.Write(first) // fails on the refused ones
		})
	}
	// 16 readers each wanting a 2 MiB buffer for the first half cannot all fit in 16 MiB, and no
	// line has ended: the budget fills up, and the readers it cannot pay skip their line (counted
	// when the line ends).
	waitFor(t, "the line buffer budget in use", func() bool {
		return metric("credchain_auditguard_line_buffer_bytes") >= float64(cfg.LineBufferBytes-2<<20)
	})
	if held := metric("credchain_auditguard_line_buffer_bytes"); held > float64(cfg.LineBufferBytes) {
		t.Errorf("line buffers hold %v bytes, over --line-buffer-bytes %d", held, cfg.LineBufferBytes)
	}
	wg.Wait()
	for _, c := range conn {
		wg.Go(func() { _, _ = c.Write(second) }) // fails on the refused ones
	}
	wg.Wait()
	waitFor(t, "every line buffer given back", func() bool { return metric("credchain_auditguard_line_buffer_bytes") == 0 })
	close(stop)
	sampler.Wait()

	read := metric("credchain_auditguard_lines_read_total")
	skipped := metric(`credchain_auditguard_lines_dropped_total{reason="buffer_budget"}`)
	if read+skipped != 16 || skipped == 0 {
		t.Errorf("%v long lines read and %v skipped for the budget, want 16 in all and some skipped", read, skipped)
	}
	// The guard reads on: a short line on a connection that had a long one skipped.
	if _, err := fmt.Fprintln(conn[0], `{"auth":{},"request":{"operation":"read","path":"sys/health"},"type":"response"}`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the next line read", func() bool { return metric("credchain_auditguard_lines_read_total") > read })

	bound := cfg.MemoryBound()
	const slack = 16 << 20 // the test's own: 32 connections, metric scrapes, the sampler
	grew := int64(peak.Load()) - int64(before)
	t.Logf("heap in use grew by %.1f MiB at its peak (bound without baseline %.1f MiB + %.0f MiB slack); %v long lines read, %v skipped for the budget",
		float64(grew)/(1<<20), float64(bound.Total-bound.Baseline)/(1<<20), float64(slack)/(1<<20), read, skipped)
	if grew > bound.Total-bound.Baseline+slack {
		t.Errorf("heap in use grew by %d bytes, over the bound %d + %d", grew, bound.Total-bound.Baseline, slack)
	}
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
