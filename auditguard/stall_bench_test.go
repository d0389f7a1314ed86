package auditguard_test

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/testenv"
)

// BenchmarkVaultAuditStall measures what the guard's state costs Vault: the latency of one audited
// request (a KV v2 write as the root token: two audit entries, request and response) against a
// real `vault server -dev`, for the two topologies, each failure mode against the healthy case of
// its topology measured in the same process.
//
// socket: Vault has a file device and a socket device pointing at the guard, as the issue measured.
// Vault writes a test message when a socket device is enabled and refuses one it cannot write, so
// each failure starts from a stand-in guard that reads (standIn) and fails after the warm-up, as a
// real guard fails after it has been working:
//   - healthy: the real guard (startGuard) reads the socket;
//   - stopped: a SIGSTOPped guard: its connections stay open and unread, new ones are accepted by
//     the kernel and never read; its 4 KiB receive buffer keeps the bytes it takes small, so the
//     buffers fill after Vault's send buffer (autotuned, up to net.ipv4.tcp_wmem's 4 MiB);
//   - refused: nothing listens any more (a guard that is gone and has left the endpoints);
//   - blackholed: SYNs go unanswered (a node that vanished while the Service keeps its endpoint):
//     the port gets a socket listening with backlog 0 whose accept queue is kept full, so Linux
//     drops every further SYN, as a DROP rule would; no root and no iptables needed;
//   - the stopped and blackholed cases again with write_timeout=250ms, the value docs/install.md
//     gives where the socket stays.
//
// file: Vault has only the file device; the guard tails it (the sidecar topology, docs/install.md).
//   - healthy: the guard tails the file;
//   - guard-down: the guard is stopped. Vault opens no connection in this topology, so a guard that
//     is stopped, gone or unreachable are the same case to Vault.
//
// Why blackholed costs 8s (Vault 1.21, internal/observability/event/sink_socket.go): for each
// entry the socket sink's Process writes; with no connection, write first dials, with
// write_timeout as the dial timeout (2s by default, audit/backend_socket.go); on failure it
// reconnects once — a second dial, another 2s — and retries the write. That is 4s per entry, and
// Vault waits for every device's pipeline (eventlogger's graph waits for all of them, within the
// audit broker's 10s context) before answering, twice per request: 8s. A stopped guard's full
// buffers make one write wait write_timeout (the write deadline), then the reconnect succeeds (the
// kernel accepts for a stopped process) and the retry goes through: one stall of write_timeout
// each time the new connection's buffers fill. A refused dial fails at once, twice.
func BenchmarkVaultAuditStall(b *testing.B) {
	// Requests per case: a blackholed request costs seconds; a stopped guard stalls Vault once its
	// connection's buffers are full, after a number of requests that depends on Vault's send buffer
	// (autotuned up to net.ipv4.tcp_wmem's 4 MiB), so that case runs until it has stalled 3 times.
	const many, blackholed, stalls, maxStopped = 200, 3, 3, 20000
	healthy := map[string][]time.Duration{} // per topology, for the ratios
	report := func(b *testing.B, topology string, lat []time.Duration) {
		b.Helper()
		p50, p99 := percentile(lat, 50), percentile(lat, 99)
		b.ReportMetric(float64(len(lat)), "requests")
		b.ReportMetric(ms(p50), "p50-ms")
		b.ReportMetric(ms(p99), "p99-ms")
		b.ReportMetric(ms(slices.Max(lat)), "max-ms")
		b.ReportMetric(float64(countStalls(lat)), "stalls>100ms")
		if base, ok := healthy[topology]; ok {
			b.ReportMetric(float64(p50)/float64(percentile(base, 50)), "p50-x-healthy")
			b.ReportMetric(float64(p99)/float64(percentile(base, 99)), "p99-x-healthy")
		}
	}
	// socket runs Vault with a file device and a socket device to a stand-in guard, which is
	// healthy when the device is enabled (Vault sends a test message then, and refuses a device it
	// cannot write) and fails before the requests are timed.
	socket := func(b *testing.B, fail func(*standIn, testing.TB), writeTimeout string, n, untilStalls int) []time.Duration {
		v := testenv.StartVault(b)
		root := client(b, v.Addr, v.RootToken)
		g := newStandIn(b)
		return auditedRequests(b, root, b.TempDir()+"/audit.log", g.addr, writeTimeout, func() { fail(g, b) }, n, untilStalls)
	}
	b.Run("socket/healthy", func(b *testing.B) {
		e := setup(b)
		e.startGuard(b, false)
		lat := auditedRequests(b, e.root, b.TempDir()+"/audit.log", e.listen, "", nil, many, 0)
		healthy["socket"] = lat
		report(b, "socket", lat)
	})
	b.Run("socket/stopped", func(b *testing.B) {
		report(b, "socket", socket(b, (*standIn).stop, "", maxStopped, stalls))
	})
	b.Run("socket/refused", func(b *testing.B) {
		report(b, "socket", socket(b, (*standIn).refuse, "", many, 0))
	})
	b.Run("socket/blackholed", func(b *testing.B) {
		report(b, "socket", socket(b, (*standIn).blackhole, "", blackholed, 0))
	})
	b.Run("socket/stopped,write_timeout=250ms", func(b *testing.B) {
		report(b, "socket", socket(b, (*standIn).stop, "250ms", maxStopped, stalls))
	})
	b.Run("socket/blackholed,write_timeout=250ms", func(b *testing.B) {
		report(b, "socket", socket(b, (*standIn).blackhole, "250ms", 10, 0))
	})
	// file: one Vault, the guard started and stopped in turn, 4 rounds of 50 requests each way, so
	// that load from elsewhere on a shared machine falls on both cases alike.
	b.Run("file/healthy,guard-down", func(b *testing.B) {
		e := setup(b)
		stop := e.startGuard(b, true)
		fileRequests(b, e.root, e.auditLog, true, 20) // enables the file device; warm-up
		stop()
		var up, down []time.Duration
		for b.Loop() {
			up, down = up[:0], down[:0]
			for range 4 {
				stop := e.startGuard(b, true)
				up = append(up, fileRequests(b, e.root, e.auditLog, false, many/4)...)
				stop()
				down = append(down, fileRequests(b, e.root, e.auditLog, false, many/4)...)
			}
		}
		healthy["file"] = up
		p50, p99, d50, d99 := percentile(up, 50), percentile(up, 99), percentile(down, 50), percentile(down, 99)
		b.ReportMetric(ms(p50), "healthy-p50-ms")
		b.ReportMetric(ms(p99), "healthy-p99-ms")
		b.ReportMetric(ms(d50), "down-p50-ms")
		b.ReportMetric(ms(d99), "down-p99-ms")
		b.ReportMetric(ms(slices.Max(down)), "down-max-ms")
		b.ReportMetric(float64(d50)/float64(p50), "down-p50-x-healthy")
		b.ReportMetric(float64(d99)/float64(p99), "down-p99-x-healthy")
	})
}

// fileRequests times n KV writes with the file device at path (enabled first when enable is set).
func fileRequests(b *testing.B, root *vault.Client, path string, enable bool, n int) []time.Duration {
	b.Helper()
	if enable {
		must(b, root.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": path}}))
	}
	kv := root.KVv2("secret")
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		_, err := kv.Put(context.Background(), "stall", map[string]any{"n": i})
		must(b, err)
		lat = append(lat, time.Since(t0))
	}
	return lat
}

// auditedRequests enables Vault's audit devices — a file device writing path and, when target is
// set, a socket device to target with writeTimeout ("" for Vault's default) — warms up, calls
// fail (when set), then times n KV writes, or fewer once untilStalls of them took over 100 ms.
func auditedRequests(b *testing.B, root *vault.Client, path, target, writeTimeout string, fail func(), n, untilStalls int) []time.Duration {
	b.Helper()
	sys := root.Sys()
	must(b, sys.EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": path}}))
	if target != "" {
		opts := map[string]string{"address": target, "socket_type": "tcp"}
		if writeTimeout != "" {
			opts["write_timeout"] = writeTimeout
		}
		must(b, sys.EnableAuditWithOptions("guard", &vault.EnableAuditOptions{Type: "socket", Options: opts}))
	}
	kv := root.KVv2("secret")
	write := func(i int) time.Duration {
		t0 := time.Now()
		_, err := kv.Put(context.Background(), "stall", map[string]any{"n": i})
		must(b, err)
		return time.Since(t0)
	}
	for i := range 20 { // warm-up: connections, the KV mount's first writes
		write(i)
	}
	if fail != nil {
		fail()
	}
	var lat []time.Duration
	for b.Loop() {
		lat = lat[:0]
		for i := range n {
			lat = append(lat, write(i))
			if untilStalls > 0 && countStalls(lat) >= untilStalls {
				break
			}
		}
	}
	return lat
}

func countStalls(lat []time.Duration) int {
	n := 0
	for _, l := range lat {
		if l > 100*time.Millisecond {
			n++
		}
	}
	return n
}

// standIn is a guard's socket as Vault sees it: healthy (it reads and discards) until one of its
// failure methods is called.
type standIn struct {
	addr   string
	l      net.Listener
	paused chan struct{} // closed: stop reading
	mu     sync.Mutex
	conns  []net.Conn
}

// newStandIn listens with a 4 KiB receive buffer (inherited by accepted connections), so that
// once it stops reading the kernel's buffers fill after Vault's send buffer rather than after
// megabytes more on this side.
func newStandIn(t testing.TB) *standIn {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	must(t, err)
	g := &standIn{addr: l.Addr().String(), l: l, paused: make(chan struct{})}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.conns = append(g.conns, c)
			g.mu.Unlock()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					select {
					case <-g.paused:
						return // keep the connection open, unread
					default:
					}
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(g.close)
	return g
}

func (g *standIn) close() {
	g.l.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// stop is a SIGSTOPped guard: connections stay open and are no longer read; new ones are still
// accepted (the kernel does that for a stopped process) and never read.
func (g *standIn) stop(testing.TB) {
	close(g.paused)
	// A reader blocked in Read gets the next write and then sees paused: at most one more read.
}

// refuse is a guard that is gone and whose address has left the Service's endpoints: its
// connections are closed and nothing listens any more, so a dial is refused.
func (g *standIn) refuse(testing.TB) { g.close() }

// blackhole is a guard whose node vanished while the Service kept its endpoint: the connections
// are gone and SYNs to the address go unanswered. Its port gets a socket listening with backlog
// 0 whose accept queue (one connection) is filled and never accepted: Linux drops a SYN to a
// listener whose accept queue is full, so a dial hangs until its timeout, as with a DROP rule.
func (g *standIn) blackhole(t testing.TB) {
	t.Helper()
	g.close()
	ap, err := netip.ParseAddrPort(g.addr)
	must(t, err)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	must(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	must(t, syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1))
	must(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}))
	must(t, syscall.Listen(fd, 0))
	for filled := false; !filled; {
		c, err := net.DialTimeout("tcp", g.addr, 200*time.Millisecond)
		if err != nil {
			filled = true // this SYN was dropped: the queue is full
			continue
		}
		t.Cleanup(func() { c.Close() })
	}
}

// percentile is the p-th percentile of v (latencies as durations or as ms).
func percentile[T cmp.Ordered](v []T, p int) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)*p/100, len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
