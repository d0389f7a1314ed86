package auditguard

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/credchain/credchain/internal/events"
)

// corpus is a real Vault 1.21.4 audit log (hack/gencorpus): ESO-style KV reads, logins, token
// renewals, policy and role writes, reads and deletes.
func corpus(b *testing.B) (all, irrelevant, relevant [][]byte) {
	b.Helper()
	f, err := os.Open("testdata/audit-corpus.jsonl.gz")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := slices.Clone(sc.Bytes())
		all = append(all, line)
		if Relevant(line) {
			relevant = append(relevant, line)
		} else {
			irrelevant = append(irrelevant, line)
		}
	}
	if len(relevant) == 0 || len(irrelevant) == 0 {
		b.Fatal("corpus lacks relevant or irrelevant lines")
	}
	return all, irrelevant, relevant
}

func joinLines(lines [][]byte) []byte {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// BenchmarkIngest measures the read loop on one goroutine over the real corpus:
//   - baseline: ReadLines alone, delivering lines to a no-op (the floor any reader pays);
//   - irrelevant: ReadLines + Guard.Ingest over irrelevant entries (count, pre-filter, drop);
//   - relevant: ReadLines + pre-filter + full decode + classification of relevant entries
//     (everything but the Vault calls a few of them lead to).
func BenchmarkIngest(b *testing.B) {
	_, irrelevant, relevant := corpus(b)
	irr, rel := joinLines(irrelevant), joinLines(relevant)
	report := func(b *testing.B, lines int, start time.Time) {
		b.ReportMetric(float64(lines*b.N)/time.Since(start).Seconds(), "lines/s")
	}
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(int64(len(irr)))
		start := time.Now()
		for b.Loop() {
			if _, err := ReadLines(bytes.NewReader(irr), DefaultMaxLine, func([]byte) {}, nil); err != nil {
				b.Fatal(err)
			}
		}
		report(b, len(irrelevant), start)
	})
	b.Run("irrelevant", func(b *testing.B) {
		g := NewGuard(nil, nil, nil, nil, logr.Discard())
		b.SetBytes(int64(len(irr)))
		start := time.Now()
		for b.Loop() {
			if _, err := ReadLines(bytes.NewReader(irr), DefaultMaxLine, g.Ingest, nil); err != nil {
				b.Fatal(err)
			}
		}
		report(b, len(irrelevant), start)
		if len(g.queue) != 0 {
			b.Fatalf("%d irrelevant lines were queued", len(g.queue))
		}
	})
	b.Run("relevant", func(b *testing.B) {
		b.SetBytes(int64(len(rel)))
		kinds := 0
		start := time.Now()
		for b.Loop() {
			if _, err := ReadLines(bytes.NewReader(rel), DefaultMaxLine, func(l []byte) {
				if !Relevant(l) {
					b.Fatal("pre-filter")
				}
				e, err := DecodeEntry(l)
				if err != nil {
					b.Fatal(err)
				}
				if k, _ := Classify(e.Request.Path); k != KindIrrelevant {
					kinds++
				}
			}, nil); err != nil {
				b.Fatal(err)
			}
		}
		report(b, len(relevant), start)
		if kinds == 0 {
			b.Fatal("no relevant entry classified")
		}
	})
}

// memVault is an in-memory VaultAPI for benchmarks that must not measure network round trips.
type memVault struct {
	mu       sync.Mutex
	policies map[string]string
	roles    map[string][]string
}

func (m *memVault) KubernetesMounts(context.Context, string) ([]string, error) {
	return []string{"kubernetes"}, nil
}

func (m *memVault) ListRoles(context.Context, string, string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for r := range m.roles {
		out = append(out, r)
	}
	return out, nil
}

func (m *memVault) RolePolicies(_ context.Context, _, _, role string) ([]string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.roles[role]
	return p, ok, nil
}

func (m *memVault) ListPolicies(context.Context, string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for p := range m.policies {
		out = append(out, p)
	}
	return out, nil
}

func (m *memVault) ReadPolicy(_ context.Context, _, name string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.policies[name]
	return p, ok, nil
}

func (m *memVault) EntityAuthMounts(context.Context, string, string) ([]string, error) {
	return []string{"auth/userpass/"}, nil
}

func (m *memVault) WritePolicy(_ context.Context, _, name, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policies[name] = body
	return nil
}

// BenchmarkSocketStall measures what Vault feels: the time of each line's socket write (Vault writes
// one entry per write and serializes requests on it) while the guard ingests and processes a burst
// of the real corpus. The baseline is the same writer against a reader that discards everything,
// in the same process.
func BenchmarkSocketStall(b *testing.B) {
	all, _, _ := corpus(b)
	measure := func(b *testing.B, serve func(net.Listener)) []time.Duration {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		go serve(l)
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		var lat []time.Duration
		for b.Loop() {
			for _, line := range all {
				buf := append(slices.Clip(line), '\n')
				t0 := time.Now()
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
		}
		return lat
	}
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1e3, "max-µs")
	}
	b.Run("baseline-discard", func(b *testing.B) {
		report(b, measure(b, func(l net.Listener) {
			c, err := l.Accept()
			if err == nil {
				_, _ = io.Copy(io.Discard, c)
			}
		}))
	})
	b.Run("guard", func(b *testing.B) {
		store, err := OpenStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		mv := &memVault{policies: map[string]string{}, roles: map[string][]string{}}
		for i := range 20 {
			mv.policies["eso-service-"+string(rune('a'+i))] = "path \"x\" {}"
		}
		g := NewGuard(mv, store, events.NotifierFunc(func(context.Context, events.Event) error { return nil }), nil, logr.Discard())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = g.Run(ctx) }()
		report(b, measure(b, func(l net.Listener) {
			_ = (&SocketSink{Listener: l, Guard: g, Log: logr.Discard()}).Run(ctx)
		}))
	})
}

func (m *memVault) ListNamespaces(context.Context) ([]string, error) { return nil, nil }

func (m *memVault) Standby(context.Context) (bool, error) { return false, nil }
