package auditguard_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Guard replicas sharing their state on NATS JetStream (issue 16 item 1), as separate processes
// (the real `credchain auditguard` binary, so one can be killed -9) against the real Vault, behind
// a loopback TCP proxy standing in for the Service: Vault's socket device connects to the proxy,
// which forwards to the first replica that accepts.
type replicaEnv struct {
	*env
	bin, natsURL string
	proxy        *failoverProxy
	logs         map[string]*lockedBuffer
}

// guardReplica is one `credchain auditguard --state=nats` process.
type guardReplica struct {
	id, listen, health, metrics string
	cmd                         *exec.Cmd
}

func TestReplicas(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	e := &replicaEnv{env: setup(t), natsURL: testenv.StartNATS(t).ClientURL(), logs: map[string]*lockedBuffer{}}
	e.bin = buildCredchain(t)
	const n = 200
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("p-%03d", i)
		must(t, e.root.Sys().PutPolicy(names[i], fmt.Sprintf(`path "secret/data/%s" { capabilities = ["read"] }`, names[i])))
	}
	e.role(t, "many", names...)
	a, b := e.startReplica(t, "a"), e.startReplica(t, "b")
	waitMetric(t, a.metrics, "credchain_auditguard_leader", 1)
	e.proxy = startProxy(t, e.listen, a.listen, b.listen)
	e.enableDevices(t)
	bot := e.bot(t)
	t.Cleanup(func() {
		if t.Failed() {
			for id, l := range e.logs {
				path := filepath.Join(os.TempDir(), "credchain-TestReplicas-"+id+".log")
				if err := os.WriteFile(path, l.Bytes(), 0o600); err == nil {
					t.Logf("replica %s log: %s", id, path)
				}
			}
		}
	})

	t.Run("a snapshot written through replica a is the body replica b restores", func(t *testing.T) {
		const body = `path "registry-creds/data/shared" { capabilities = ["read"] }`
		must(t, bot.Sys().PutPolicy("shared", body))
		e.role(t, "shared", "shared")
		waitFor(t, "a's snapshot of shared", func() bool { return e.kvSnapshot(t, "shared") == body })
		e.moveConnection(t, b) // to b, which never read shared from Vault
		defer e.moveConnection(t, a)
		must(t, bot.Sys().DeletePolicy("shared"))
		e.waitPolicy(t, "shared", body)
		if got := e.restoredBy(t, "shared"); !slices.Equal(got, []string{"b"}) {
			t.Errorf("restored by %v, want b", got)
		}
	})

	t.Run("kill -9 of the replica holding Vault's connection during 200 deletes", func(t *testing.T) {
		var latencies []time.Duration
		var killedAt time.Time
		for i, p := range names {
			if i == n/2 {
				must(t, a.cmd.Process.Kill())
				killedAt = time.Now()
			}
			start := time.Now()
			must(t, bot.Sys().DeletePolicy(p))
			latencies = append(latencies, time.Since(start))
		}
		t.Logf("killed a at delete %d; Vault delete latency: %s", n/2, latencySummary(latencies, n/2))
		for _, p := range names {
			e.waitPolicy(t, p, fmt.Sprintf(`path "secret/data/%s" { capabilities = ["read"] }`, p))
		}
		t.Logf("every delete restored %s after the kill", time.Since(killedAt).Round(time.Millisecond))
		waitMetric(t, b.metrics, "credchain_auditguard_leader", 1)
		// a comes back as its container would (same state dir: its outbox delivers what it had
		// queued), then every event must be in the stream exactly once.
		e.restartReplica(t, a)
		counts := e.restoredCounts(t, names)
		byEntry, byReconcile, recovered := 0, 0, 0
		for _, ev := range e.streamEvents(t) {
			switch {
			case strings.Contains(ev.Message, "stopped before it could"):
				recovered++
			case ev.Actor == nil:
				byReconcile++
			default:
				byEntry++
			}
		}
		t.Logf("policy.restored in the stream: %d from a delete's entry, %d found by reconcile, %d reported from a dead replica's intent",
			byEntry, byReconcile, recovered)
		var missing, doubled []string
		for _, p := range names {
			switch counts[p] {
			case 1:
			case 0:
				missing = append(missing, p)
			default:
				doubled = append(doubled, p)
			}
		}
		if len(missing)+len(doubled) > 0 {
			t.Errorf("policy.restored events: missing for %v, more than one for %v", missing, doubled)
		}
	})
}

// moveConnection makes the proxy prefer to and cuts Vault's connection, then writes policies until
// Vault has reconnected to it: the first entry written to a connection whose peer has gone is lost
// in the kernel's buffer (reconcile repairs what it would have triggered), so the test waits for
// the new connection before it relies on one.
func (e *replicaEnv) moveConnection(t *testing.T, to *guardReplica) {
	t.Helper()
	e.proxy.prefer(to.listen)
	waitFor(t, "Vault's connection to replica "+to.id, func() bool {
		must(t, e.root.Sys().PutPolicy("marker", `path "x" { capabilities = ["read"] }`))
		v, err := testenv.Metric(t.Context(), "http://"+to.metrics+"/metrics", "credchain_auditguard_socket_connections")
		return err == nil && v == 1
	})
}

func buildCredchain(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "credchain")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/credchain").CombinedOutput(); err != nil {
		t.Fatalf("building credchain: %v\n%s", err, out)
	}
	return bin
}

func (e *replicaEnv) startReplica(t *testing.T, id string) *guardReplica {
	t.Helper()
	r := &guardReplica{id: id, listen: testenv.FreeAddrT(t), health: testenv.FreeAddrT(t), metrics: testenv.FreeAddrT(t)}
	e.logs[id] = &lockedBuffer{}
	e.run(t, r, filepath.Join(e.stateDir, id))
	return r
}

func (e *replicaEnv) restartReplica(t *testing.T, r *guardReplica) {
	t.Helper()
	_ = r.cmd.Wait()
	e.run(t, r, filepath.Join(e.stateDir, r.id))
}

func (e *replicaEnv) run(t *testing.T, r *guardReplica, stateDir string) {
	t.Helper()
	cmd := exec.Command(e.bin, "auditguard", "--listen", "tcp://"+r.listen, "--state=nats", "--nats-url", e.natsURL,
		"--nats-create-stream", "--cluster", "test", "--replica-id", r.id, "--state-dir", stateDir, "--leader-ttl", "3s",
		"--reconcile-interval", "2s", "--health-addr", r.health, "--metrics-addr", r.metrics, "--active-window", "0")
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+e.v.Addr, "VAULT_TOKEN="+e.guardTok)
	cmd.Stdout, cmd.Stderr = e.logs[r.id], e.logs[r.id]
	must(t, cmd.Start())
	r.cmd = cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "replica "+r.id+" ready", func() bool {
		resp, err := http.Get("http://" + r.health + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// lockedBuffer is a replica's log: written by its process's output copiers, read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes is a copy of what was written so far.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// kvSnapshot reads a root-namespace policy's body from the shared state bucket, "" when absent.
func (e *replicaEnv) kvSnapshot(t *testing.T, name string) string {
	t.Helper()
	kv := e.bucket(t, "credchain-guard")
	entry, err := kv.Get(t.Context(), "snap."+b64key("", name))
	if err != nil {
		return ""
	}
	var snap struct{ Body string }
	must(t, json.Unmarshal(entry.Value(), &snap))
	return snap.Body
}

func (e *replicaEnv) bucket(t *testing.T, name string) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(e.natsURL)
	must(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	must(t, err)
	kv, err := js.KeyValue(t.Context(), name)
	must(t, err)
	return kv
}

// streamEvents returns every policy.restored event in the CREDCHAIN stream.
func (e *replicaEnv) streamEvents(t *testing.T) []events.Event {
	t.Helper()
	nc, err := nats.Connect(e.natsURL)
	must(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	must(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "CREDCHAIN", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"credchain.test.policy.restored"}})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // no event published yet: the first publish creates it
	}
	must(t, err)
	info, err := c.Info(ctx)
	must(t, err)
	var out []events.Event
	for pending := info.NumPending; pending > 0; pending-- {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			break
		}
		must(t, err)
		var ev events.Event
		must(t, json.Unmarshal(m.Data(), &ev))
		out = append(out, ev)
	}
	return out
}

// restoredBy names the replicas whose restore of policy is in the stream (from their logs: the
// event does not say which replica sent it).
func (e *replicaEnv) restoredBy(t *testing.T, policy string) []string {
	t.Helper()
	waitFor(t, "the restore event of "+policy, func() bool {
		return slices.ContainsFunc(e.streamEvents(t), func(ev events.Event) bool { return ev.Policy == policy })
	})
	var by []string
	for id, l := range e.logs {
		for line := range bytes.Lines(l.Bytes()) {
			if bytes.Contains(line, []byte(`"policy":"`+policy+`"`)) && bytes.Contains(line, []byte(`"type":"policy.restored"`)) {
				by = append(by, id)
				break
			}
		}
	}
	sort.Strings(by)
	return by
}

// restoredCounts waits (up to 60s) until the stream holds a policy.restored event for every one
// of names, then counts them per policy.
func (e *replicaEnv) restoredCounts(t *testing.T, names []string) map[string]int {
	t.Helper()
	var counts map[string]int
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts = map[string]int{}
		for _, ev := range e.streamEvents(t) {
			counts[ev.Policy]++
		}
		all := true
		for _, p := range names {
			all = all && counts[p] > 0
		}
		if all || time.Now().After(deadline) {
			return counts
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// latencySummary is p50, p99 and max of ds, and the max of the 20 around index at (the failover).
func latencySummary(ds []time.Duration, at int) string {
	around := slices.Max(ds[max(0, at-2):min(len(ds), at+18)])
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("p50 %s, p99 %s, max %s; max of the 20 deletes from the kill on %s",
		s[len(s)/2].Round(time.Microsecond), s[len(s)*99/100].Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond),
		around.Round(time.Microsecond))
}

// failoverProxy accepts Vault's audit connections on addr and forwards each to the first backend,
// in preference order, that accepts: the Service in front of the replicas, minus load balancing.
type failoverProxy struct {
	l  net.Listener
	mu sync.Mutex
	// backends are the replicas' addresses, the preferred first; conns the open pairs.
	backends []string
	conns    []net.Conn
}

func startProxy(t *testing.T, addr string, backends ...string) *failoverProxy {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	must(t, err)
	p := &failoverProxy{l: l, backends: backends}
	t.Cleanup(func() { l.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *failoverProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *failoverProxy) forward(c net.Conn) {
	p.mu.Lock()
	backends := slices.Clone(p.backends)
	p.mu.Unlock()
	var up net.Conn
	for _, b := range backends {
		if u, err := net.DialTimeout("tcp", b, time.Second); err == nil {
			up = u
			break
		}
	}
	if up == nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, up)
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
}

// prefer makes backend the first choice and cuts the open connections: Vault reconnects, to it.
func (p *failoverProxy) prefer(backend string) {
	p.mu.Lock()
	i := slices.Index(p.backends, backend)
	p.backends = append([]string{backend}, slices.Delete(slices.Clone(p.backends), i, i+1)...)
	p.mu.Unlock()
	p.cut()
}

func (p *failoverProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// b64key is the shared state's key encoding of a name (base64url, no padding, parts joined by NUL).
func b64key(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}
