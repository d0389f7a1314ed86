package auditguard

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credchain/credchain/internal/events"
)

// TestLineBufferBudget: a line over the read buffer takes its buffer from the shared budget and
// gives it back once delivered; one the budget cannot pay for is skipped whole (counted apart from
// too-long lines) and reading goes on at the next line.
func TestLineBufferBudget(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300<<10)
	for name, tc := range map[string]struct {
		budget, heldByOthers int64
		want                 []int // lengths of the delivered lines
		overBudget, tooLong  int
	}{
		"fits":                        {budget: 1 << 20, want: []int{1, len(long), 1}},
		"others hold the budget":      {budget: 1 << 20, heldByOthers: 900 << 10, want: []int{1, 1}, overBudget: 1},
		"exactly what the line needs": {budget: 512 << 10, want: []int{1, len(long), 1}},
		"over --max-line is too long": {budget: 8 << 20, want: []int{1, 1}, tooLong: 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newByteBudget(tc.budget, nil)
			if !b.tryAcquire(tc.heldByOthers) {
				t.Fatal("cannot hold the others' share")
			}
			maxLine := 1 << 20
			if tc.tooLong > 0 {
				maxLine = 256 << 10
			}
			var got []int
			over, tooLong := 0, 0
			lr := lineReader{maxLine: maxLine, budget: b, line: func(l []byte) {
				got = append(got, len(l))
				if len(l) > readBufferSize && b.used.Load() == tc.heldByOthers {
					t.Error("a long line is delivered without holding budget")
				}
			}, tooLong: func() { tooLong++ }, overBudget: func() { over++ }}
			in := "a\n" + long + "\nb\n"
			n, err := lr.read(strings.NewReader(in))
			if err != nil || n != int64(len(in)) {
				t.Fatalf("read %d of %d bytes: %v", n, len(in), err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || over != tc.overBudget || tooLong != tc.tooLong {
				t.Errorf("lines %v, over budget %d, too long %d; want %v, %d, %d", got, over, tooLong, tc.want, tc.overBudget, tc.tooLong)
			}
			if u := b.used.Load(); u != tc.heldByOthers {
				t.Errorf("budget in use after the read: %d, want the others' %d", u, tc.heldByOthers)
			}
		})
	}
}

// TestQueueBytes: relevant lines past --queue-bytes are dropped (queue_bytes) even while the queue
// has slots, and what is queued is counted in the gauge and given back when processed.
func TestQueueBytes(t *testing.T) {
	t.Parallel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	g := NewGuard(nil, store, events.LogNotifier{Log: testr.New(t)}, nil, testr.New(t), WithQueueSize(1000), WithQueueBytes(64<<10))
	line := func(i int) string { // all of one length
		return strings.Replace(deleteEntry, `"id":"4c1f"`, fmt.Sprintf(`"id":"req-%06d"`, i), 1)
	}
	fit := (64 << 10) / len(line(0))
	for i := range fit + 10 {
		g.Ingest([]byte(line(i)))
	}
	if got := testutil.ToFloat64(g.metrics.LinesDropped.WithLabelValues("queue_bytes")); got != 10 {
		t.Errorf("queue_bytes drops = %v, want 10", got)
	}
	if got := testutil.ToFloat64(g.metrics.LinesDropped.WithLabelValues("queue_full")); got != 0 {
		t.Errorf("queue_full drops = %v, want 0", got)
	}
	if got, want := testutil.ToFloat64(g.metrics.QueueBytes), float64(fit*len(line(0))); got != want {
		t.Errorf("queue bytes gauge = %v, want %v", got, want)
	}
	q := <-g.queue // as Run takes it
	g.queueBytes.release(q.bytes)
	g.Ingest([]byte(line(fit + 11)))
	if got := testutil.ToFloat64(g.metrics.LinesDropped.WithLabelValues("queue_bytes")); got != 10 {
		t.Errorf("after one was taken: queue_bytes drops = %v, want still 10", got)
	}
}

// TestDisableWaitsBounded: request entries of audit device disables wait for their response
// holding their entry; past 64 waiting, or over 64 KiB (Vault's carry no body), they are dropped
// and counted instead of held.
func TestDisableWaitsBounded(t *testing.T) {
	t.Parallel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	g := NewGuard(nil, store, events.LogNotifier{Log: testr.New(t)}, nil, testr.New(t), WithAuditDisableWait(time.Hour))
	disable := func(i, size int) {
		e := &Entry{Type: "request"}
		e.Request.ID, e.Request.Path, e.Request.Operation = fmt.Sprintf("req-%d", i), "sys/audit/credchain", "delete"
		g.onAuditDisableRequest(t.Context(), e, size)
	}
	disable(0, maxDisableRequestLine+1)
	for i := range 100 {
		disable(i+1, 2<<10)
	}
	if n := len(g.pendingDisables); n != maxPendingDisables {
		t.Errorf("%d disables waiting, want %d", n, maxPendingDisables)
	}
	if got := testutil.ToFloat64(g.metrics.LinesDropped.WithLabelValues("disable_waits")); got != 1+100-maxPendingDisables {
		t.Errorf("disable_waits drops = %v, want %d", got, 1+100-maxPendingDisables)
	}
}

// TestMemoryBoundDefaults pins the arithmetic with the defaults: what the chart's 512Mi must hold
// (manifests/bounds_test.go checks the renders), with no event sink and with NATS and Slack.
func TestMemoryBoundDefaults(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		events    events.DeliveryConfig
		files     []string
		wantTotal int64
	}{
		"no sink": {wantTotal: 2*(96<<20+16*64<<10+16<<20+8192*queuedSlotBytes+2*16<<20+64*64<<10) + 64<<20},
		"NATS, Slack and a file": {events: events.DeliveryConfig{NATS: events.NATSConfig{URLs: []string{"nats://n:4222"}}, SlackWebhookFile: "/s"},
			files:     []string{"/vault/audit.log"},
			wantTotal: 2*(96<<20+18*64<<10+16<<20+8192*queuedSlotBytes+2*16<<20+2*64*256<<10+64*64<<10) + 64<<20},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := Config{Listen: []string{"tcp://0.0.0.0:9090"}, AuditFiles: tc.files, Events: tc.events}
			c.SetDefaults()
			if got := c.MemoryBound().Total; got != tc.wantTotal {
				t.Errorf("worst case %d bytes (%.1f MiB), want %d", got, float64(got)/(1<<20), tc.wantTotal)
			}
		})
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		files map[string]string // name → content; absent names are missing files
		want  int64
	}{
		"cgroup v2 limit":     {files: map[string]string{"v2": "536870912\n"}, want: 512 << 20},
		"cgroup v2 unlimited": {files: map[string]string{"v2": "max\n", "v1": "536870912\n"}},
		"cgroup v1 limit":     {files: map[string]string{"v1": "268435456\n"}, want: 256 << 20},
		"cgroup v1 unlimited": {files: map[string]string{"v1": "9223372036854771712\n"}},
		"no cgroup files":     {},
		"garbage":             {files: map[string]string{"v2": "lots"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var paths []string
			for _, n := range []string{"v2", "v1"} {
				p := filepath.Join(dir, n)
				paths = append(paths, p)
				if c, ok := tc.files[n]; ok {
					if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got := cgroupMemoryLimit(paths); got != tc.want {
				t.Errorf("limit %d, want %d", got, tc.want)
			}
		})
	}
}
