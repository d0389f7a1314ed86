package auditguard_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	vault "github.com/hashicorp/vault/api"

	"github.com/nats-io/nats.go"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

const orderServicePolicy = `path "registry-creds/creds/order-service" {
  capabilities = ["read"]
}
path "registry-creds/data/order-service" {
  capabilities = ["read"]
}
`

// recorder collects the guard's events.
type recorder struct{ events.Recorder }

func (r *recorder) wait(t testing.TB, typ, policy string, after int) events.Event {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range r.All()[after:] {
			if e.Type == typ && e.Policy == policy {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s event for %s; events: %+v", typ, policy, r.All())
	return events.Event{}
}

type env struct {
	v        *testenv.DevVault
	root     *vault.Client
	guardTok string
	stateDir string
	listen   string
	auditLog string
	events   *recorder
	natsURL  string
	kube     string
	metrics  string // --metrics-addr; "" disables
	// flapDeletes is --flap-deletes (0: the default).
	flapDeletes int
	// state is --state ("": the default, bbolt); nats needs natsURL.
	state string
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func client(t testing.TB, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	c, err := vault.NewClient(cfg)
	must(t, err)
	c.SetToken(token)
	return c
}

// setup builds the runbook's Vault: KV, the ESO policies, kubernetes auth with role
// external-secrets-operator, a cleanup-bot user with admin rights, and a token for the guard with
// only the least-privilege policy shipped in manifests/vault.
func setup(t testing.TB) *env {
	v := testenv.StartVault(t)
	root := client(t, v.Addr, v.RootToken)
	sys := root.Sys()
	must(t, sys.EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}))
	must(t, sys.EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}))
	for name, body := range map[string]string{
		"eso-order-service":   orderServicePolicy,
		"eso-payment-service": strings.ReplaceAll(orderServicePolicy, "order", "payment"),
		"old-team":            `path "secret/old-team/*" { capabilities = ["read"] }`,
		"admin":               `path "sys/*" { capabilities = ["create","read","update","delete","list","sudo"] } path "auth/*" { capabilities = ["create","read","update","delete","list"] }`,
	} {
		must(t, sys.PutPolicy(name, body))
	}
	guardPolicy, err := os.ReadFile(filepath.Join("..", "manifests", "vault", "auditguard-policy.hcl"))
	must(t, err)
	must(t, sys.PutPolicy("credchain-auditguard", string(guardPolicy)))
	_, err = root.Logical().Write("auth/kubernetes/role/external-secrets-operator", map[string]any{
		"bound_service_account_names":      "external-secrets",
		"bound_service_account_namespaces": "external-secrets",
		"policies":                         "eso-order-service,eso-payment-service",
		"ttl":                              "1h",
	})
	must(t, err)
	_, err = root.Logical().Write("auth/userpass/users/cleanup-bot", map[string]any{"password": "s3cret", "policies": "admin"})
	must(t, err)
	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"credchain-auditguard"}, DisplayName: "credchain-auditguard"})
	must(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	listen := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	return &env{v: v, root: root, guardTok: tok.Auth.ClientToken, stateDir: filepath.Join(dir, "state"),
		listen: listen, auditLog: filepath.Join(dir, "audit.log"), events: &recorder{}}
}

// startGuard runs `credchain auditguard`'s Run in-process with the least-privilege token and waits
// for /readyz. It returns a stop function.
func (e *env) startGuard(t testing.TB, files bool) func() {
	t.Helper()
	health := testenv.FreeAddrT(t)
	cfg := auditguard.Config{Listen: []string{"tcp://" + e.listen}, StateDir: e.stateDir, MetricsAddr: "0",
		HealthAddr: health, ReconcileInterval: time.Hour, FlapDeletes: e.flapDeletes}
	if e.metrics != "" {
		cfg.MetricsAddr = e.metrics
	}
	cfg.BlastRadius, cfg.Kubeconfig = e.kube != "", e.kube
	if e.natsURL != "" {
		cfg.Events.NATS = events.NATSConfig{URLs: []string{e.natsURL}, Cluster: "test", CreateStream: true}
	}
	cfg.State, cfg.StateBucket = e.state, auditguard.BucketFor(t.Name())
	if files {
		cfg.AuditFiles = []string{e.auditLog}
	}
	cfg.SetDefaults()
	must(t, cfg.Validate())
	cfg.Notifier = e.events
	return runGuard(t, cfg, client(t, e.v.Addr, e.guardTok))
}

// runGuard runs auditguard.Run in-process with cfg (defaulted and validated; HealthAddr set) and
// waits up to 60s for its /readyz. The returned stop ends it and reports Run's error; it also runs
// at cleanup.
func runGuard(t testing.TB, cfg auditguard.Config, c *vault.Client) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- auditguard.Run(ctx, cfg, c, testr.NewWithInterface(t, testr.Options{})) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("auditguard.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.HealthAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("guard not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvents waits up to 30s for an event of type typ among those recorded after the first n, and
// returns a function listing them (called again later, it sees any that came since).
func (e *env) waitEvents(t testing.TB, n int, typ string) func() []events.Event {
	t.Helper()
	of := func() []events.Event {
		var out []events.Event
		for _, ev := range e.events.All()[n:] {
			if ev.Type == typ {
				out = append(out, ev)
			}
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(of()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %s event: %+v", typ, e.events.All()[n:])
		}
		time.Sleep(10 * time.Millisecond)
	}
	return of
}

func (e *env) policy(t testing.TB, name string) string {
	t.Helper()
	body, err := e.root.Sys().GetPolicy(name)
	must(t, err)
	return body
}

func (e *env) waitPolicy(t testing.TB, name, want string) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		if e.policy(t, name) == want {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("policy %s not restored; now %q", name, e.policy(t, name))
	return 0
}

func TestGuardAgainstVault(t *testing.T) {
	e := setup(t)
	// An in-process nats-server with JetStream: the guard publishes every event there too.
	ns := testenv.StartNATS(t)
	e.natsURL = ns.ClientURL()
	nc, err := nats.Connect(e.natsURL)
	must(t, err)
	defer nc.Close()
	natsMsgs, err := nc.SubscribeSync("credchain.test.>")
	must(t, err)
	stop := e.startGuard(t, true)
	sys := e.root.Sys()
	// The file device first: Vault must never depend on the guard alone.
	must(t, sys.EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": e.auditLog}}))
	must(t, sys.EnableAuditWithOptions("guard", &vault.EnableAuditOptions{Type: "socket",
		Options: map[string]string{"address": e.listen, "socket_type": "tcp"}}))

	bot := client(t, e.v.Addr, "")
	secret, err := bot.Logical().Write("auth/userpass/login/cleanup-bot", map[string]any{"password": "s3cret"})
	must(t, err)
	bot.SetToken(secret.Auth.ClientToken)

	t.Run("referenced policy deleted is restored with the same body", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		window := e.waitPolicy(t, "eso-order-service", orderServicePolicy)
		ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
		if ev.Actor == nil || ev.Actor.DisplayName != "userpass-cleanup-bot" || ev.Actor.EntityID == "" || ev.Actor.RemoteAddress != "127.0.0.1" ||
			ev.Actor.Metadata["username"] != "cleanup-bot" || ev.Actor.AuthMount != "auth/userpass/" {
			t.Errorf("actor = %+v", ev.Actor)
		}
		if !slices.Equal(ev.Roles, []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}}) {
			t.Errorf("roles = %+v", ev.Roles)
		}
		if ev.APIVersion != events.APIVersion || ev.RestoreLatencyMS <= 0 || ev.SnapshotFrom == nil || ev.Vault != e.v.Addr {
			t.Errorf("event = %+v", ev)
		}
		t.Logf("deleted → readable again in %s; guard restore latency %.3f ms", window, ev.RestoreLatencyMS)
		m, err := natsMsgs.NextMsg(30 * time.Second)
		must(t, err)
		var got events.Event
		must(t, json.Unmarshal(m.Data, &got))
		if m.Subject != "credchain.test.policy.restored" || got.ID == "" || got.Policy != "eso-order-service" ||
			got.Actor == nil || got.Actor.DisplayName != "userpass-cleanup-bot" || len(got.Roles) != 1 {
			t.Errorf("NATS message on %s: %+v", m.Subject, got)
		}
	})

	t.Run("legacy sys/policy path and upper-case names", func(t *testing.T) {
		for _, path := range []string{"sys/policy/eso-order-service", "sys/policies/acl/ESO-ORDER-SERVICE"} {
			n := e.events.Count()
			_, err := bot.Logical().Delete(path)
			must(t, err)
			e.waitPolicy(t, "eso-order-service", orderServicePolicy)
			e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
		}
	})

	t.Run("unreferenced policy stays deleted", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("old-team"))
		ev := e.events.wait(t, events.PolicyDeleted, "old-team", n)
		if ev.Action != "recorded" || ev.Actor.DisplayName != "userpass-cleanup-bot" {
			t.Errorf("event = %+v", ev)
		}
		if body := e.policy(t, "old-team"); body != "" {
			t.Errorf("old-team was restored: %q", body)
		}
	})

	t.Run("a denied delete changes nothing and triggers nothing", func(t *testing.T) {
		n := e.events.Count()
		guard := client(t, e.v.Addr, e.guardTok)
		if err := guard.Sys().DeletePolicy("eso-payment-service"); err == nil {
			t.Fatal("the guard's token could delete a policy")
		}
		// Flush the pipeline with an observable event, then check nothing came before it.
		must(t, bot.Sys().PutPolicy("marker", `path "x" { capabilities = ["read"] }`))
		must(t, bot.Sys().DeletePolicy("marker"))
		e.events.wait(t, events.PolicyDeleted, "marker", n)
		if got := e.events.All()[n:]; len(got) != 1 {
			t.Errorf("events = %+v, want only the marker's", got)
		}
	})

	t.Run("role drops the policy, then its delete sticks", func(t *testing.T) {
		_, err := e.root.Logical().Write("auth/kubernetes/role/external-secrets-operator", map[string]any{
			"bound_service_account_names": "external-secrets", "bound_service_account_namespaces": "external-secrets",
			"policies": "eso-payment-service", "ttl": "1h",
		})
		must(t, err)
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		e.events.wait(t, events.PolicyDeleted, "eso-order-service", n)
		if body := e.policy(t, "eso-order-service"); body != "" {
			t.Errorf("restored although no role references it: %q", body)
		}
	})

	t.Run("a kubernetes mount enabled while the guard runs: its roles are guarded", func(t *testing.T) {
		// The guard caches the kubernetes mounts; the mount's own audit entry must refresh that cache.
		must(t, sys.EnableAuthWithOptions("k8s-payments", &vault.EnableAuthOptions{Type: "kubernetes"}))
		must(t, e.root.Sys().PutPolicy("team-payments", `path "registry-creds/data/payments" { capabilities = ["read"] }`))
		_, err := e.root.Logical().Write("auth/k8s-payments/role/payments", map[string]any{
			"bound_service_account_names": "payments", "bound_service_account_namespaces": "payments", "policies": "team-payments",
		})
		must(t, err)
		// The guard snapshots a policy by reading it back after its write; wait until it has caught
		// up (a marker's delete is reported) so the delete below does not race that read.
		n := e.events.Count()
		must(t, bot.Sys().PutPolicy("marker", `path "x" { capabilities = ["read"] }`))
		must(t, bot.Sys().DeletePolicy("marker"))
		e.events.wait(t, events.PolicyDeleted, "marker", n)
		n = e.events.Count()
		must(t, bot.Sys().DeletePolicy("team-payments"))
		e.waitPolicy(t, "team-payments", `path "registry-creds/data/payments" { capabilities = ["read"] }`)
		ev := e.events.wait(t, events.PolicyRestored, "team-payments", n)
		if !slices.Equal(ev.Roles, []events.RoleRef{{Mount: "k8s-payments", Name: "payments"}}) {
			t.Errorf("roles = %+v", ev.Roles)
		}
	})

	outer := t // the restarted guard must outlive this subtest
	t.Run("deleted while the guard is down: reconcile restores it on restart", func(t *testing.T) {
		stop()
		must(t, e.root.Sys().DeletePolicy("eso-payment-service"))
		if body := e.policy(t, "eso-payment-service"); body != "" {
			t.Fatalf("still there: %q", body)
		}
		n := e.events.Count()
		e.startGuard(outer, false)
		e.waitPolicy(t, "eso-payment-service", strings.ReplaceAll(orderServicePolicy, "order", "payment"))
		ev := e.events.wait(t, events.PolicyRestored, "eso-payment-service", n)
		if ev.Actor != nil || !strings.Contains(ev.Message, "reconcile") {
			t.Errorf("event = %+v", ev)
		}
	})

	t.Run("role referencing a missing policy without snapshot is a dangling reference", func(t *testing.T) {
		n := e.events.Count()
		_, err := e.root.Logical().Write("auth/kubernetes/role/inventory", map[string]any{
			"bound_service_account_names": "inventory", "bound_service_account_namespaces": "prod",
			"token_policies": "eso-inventory-service", "ttl": "1h",
		})
		must(t, err)
		ev := e.events.wait(t, events.DanglingReference, "eso-inventory-service", n)
		if !slices.Equal(ev.Roles, []events.RoleRef{{Mount: "kubernetes", Name: "inventory"}}) {
			t.Errorf("roles = %+v", ev.Roles)
		}
		if e.policy(t, "eso-inventory-service") != "" {
			t.Error("a policy was invented")
		}
	})

	t.Run("disabling the audit device is reported", func(t *testing.T) {
		n := e.events.Count()
		must(t, e.root.Sys().DisableAudit("file"))
		deadline := time.Now().Add(30 * time.Second)
		for {
			var found bool
			for _, ev := range e.events.All()[n:] {
				found = found || (ev.Type == events.AuditDisabled && ev.Object == "sys/audit/file" && ev.Actor.DisplayName == "token" && ev.Actor.RemoteAddress == "127.0.0.1")
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no audit.device_disabled event: %+v", e.events.All()[n:])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("disabling the guard's own device is reported once, from the request entry", func(t *testing.T) {
		// The guard now reads only its socket (restarted without --audit-file above), and the file
		// device is gone: Vault stops writing to the device it disables before logging the
		// response, so the guard receives the request entry and nothing after it.
		n := e.events.Count()
		must(t, e.root.Sys().DisableAudit("guard"))
		disabled := e.waitEvents(t, n, events.AuditDisabled)
		time.Sleep(2 * time.Second) // room for a duplicate
		got := disabled()
		if len(got) != 1 {
			t.Fatalf("audit.device_disabled events = %+v, want one", got)
		}
		if ev := got[0]; ev.Object != "sys/audit/guard" || ev.Actor == nil || ev.Actor.DisplayName != "token" ||
			ev.Actor.RemoteAddress != "127.0.0.1" || !strings.Contains(ev.Message, "not seen") {
			t.Errorf("event = %+v", ev)
		}
	})
	// One real event per type for docs/events.md (CREDCHAIN_EVENTS_OUT).
	seen := map[string]bool{}
	for _, ev := range e.events.All() {
		if !seen[ev.Type] {
			seen[ev.Type] = true
			testenv.WriteExample(t, ev)
		}
	}
}

// BenchmarkRestoreWindow deletes a referenced policy 200 times against the real dev Vault (file and
// socket devices enabled, guard on its least-privilege token) and reports two windows:
//   - guard: from the delete's response entry arriving at the guard to the restore write returning;
//   - client: from `vault policy delete` returning to the policy being readable again.
//
// Three guards, one after the other in this process (compare their ratios): the single-replica
// default (state.db, events logged), the same with events to an in-process JetStream, and the
// state shared in a JetStream key-value bucket (--state=nats, issue 16), whose restore path adds a
// snapshot read and the restore intent's write and delete on NATS.
func BenchmarkRestoreWindow(b *testing.B) {
	for _, v := range []struct{ name, state string }{{"state=bbolt", ""}, {"state=bbolt,events=nats", ""}, {"state=nats", auditguard.StateNATS}} {
		b.Run(v.name, func(b *testing.B) {
			const deletes = 200
			e := setup(b)
			if v.name != "state=bbolt" {
				e.natsURL = testenv.StartNATS(b).ClientURL()
			}
			e.state = v.state
			e.flapDeletes = -1 // 200 deletes in a row are a flap
			e.startGuard(b, true)
			sys := e.root.Sys()
			must(b, sys.EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": e.auditLog}}))
			must(b, sys.EnableAuditWithOptions("guard", &vault.EnableAuditOptions{Type: "socket",
				Options: map[string]string{"address": e.listen, "socket_type": "tcp"}}))
			var guardLat, clientLat []float64
			for b.Loop() {
				guardLat, clientLat, _ = e.restoreRounds(b, deletes)
			}
			b.ReportMetric(percentile(guardLat, 50), "guard-p50-ms")
			b.ReportMetric(percentile(guardLat, 99), "guard-p99-ms")
			b.ReportMetric(percentile(clientLat, 50), "client-p50-ms")
			b.ReportMetric(percentile(clientLat, 99), "client-p99-ms")
		})
	}
}

// restoreRounds deletes eso-order-service n times, each time waiting for the guard to restore it,
// and returns the guard's restore latencies and the client's (delete returned → readable again), in
// ms, and when each delete's restore event was sent, by the delete's request ID.
func (e *env) restoreRounds(b *testing.B, n int) (guardLat, clientLat []float64, restored map[string]time.Time) {
	restored = map[string]time.Time{}
	for range n {
		seen := e.events.Count()
		must(b, e.root.Sys().DeletePolicy("eso-order-service"))
		deleted := time.Now()
		for e.policy(b, "eso-order-service") != orderServicePolicy {
			if time.Since(deleted) > 10*time.Second {
				b.Fatal("not restored")
			}
		}
		clientLat = append(clientLat, float64(time.Since(deleted).Microseconds())/1000)
		ev := e.events.wait(b, events.PolicyRestored, "eso-order-service", seen)
		if ev.Actor == nil {
			// Restored by the reconcile the socket's first connection queues, which found the
			// policy missing before the delete's entry arrived: no entry, no guard window.
			continue
		}
		guardLat = append(guardLat, ev.RestoreLatencyMS)
		restored[ev.Actor.RequestID] = ev.Time
	}
	return guardLat, clientLat, restored
}

// TestRecreatedPolicyIsNotOverwritten: `vault policy delete p && vault policy write p new.hcl`
// while the guard's queue is behind. Made deterministic against the real Vault: the guard snapshots
// the old body at start, the policy is rewritten where the guard cannot see it (no audit device
// feeds it yet), and only then does the delete's response entry reach its socket. The new body
// must survive.
func TestRecreatedPolicyIsNotOverwritten(t *testing.T) {
	e := setup(t)
	e.startGuard(t, false)
	const newBody = `path "registry-creds/data/order-service-v2" { capabilities = ["read"] }`
	must(t, e.root.Sys().PutPolicy("eso-order-service", newBody))
	c, err := net.Dial("tcp", e.listen)
	must(t, err)
	defer c.Close()
	n := e.events.Count()
	_, err = c.Write([]byte(`{"auth":{"display_name":"userpass-cleanup-bot","policies":["admin"]},"request":{"id":"9a1b","operation":"delete","namespace":{"id":"root"},"path":"sys/policies/acl/eso-order-service","remote_address":"127.0.0.1"},"time":"2026-11-27T10:02:00.123456Z","type":"response"}` + "\n"))
	must(t, err)
	ev := e.events.wait(t, events.PolicyDeleted, "eso-order-service", n)
	if ev.Action != "recorded" || ev.Actor.DisplayName != "userpass-cleanup-bot" || len(ev.Roles) != 1 {
		t.Errorf("event = %+v", ev)
	}
	if got := e.policy(t, "eso-order-service"); got != newBody {
		t.Errorf("policy = %q, want the re-created body", got)
	}
}

// TestMixedCaseRoleNames: Vault's Kubernetes auth plugin lower-cases role names, and the resync's
// LIST returns them so; a write or delete through a mixed-case path must update that index entry.
// Otherwise the stale "eso-role" entry still references the policies the role dropped, and their
// deletes are undone.
func TestMixedCaseRoleNames(t *testing.T) {
	e := setup(t)
	sys := e.root.Sys()
	role := func(name, policies string) {
		t.Helper()
		_, err := e.root.Logical().Write("auth/kubernetes/role/"+name, map[string]any{
			"bound_service_account_names": "eso", "bound_service_account_namespaces": "eso", "token_policies": policies,
		})
		must(t, err)
	}
	for _, p := range []string{"team-updated", "team-deleted"} {
		must(t, sys.PutPolicy(p, `path "secret/`+p+`/*" { capabilities = ["read"] }`))
	}
	role("ESO-Updated", "team-updated")
	role("ESO-Deleted", "team-deleted")
	e.startGuard(t, false) // the startup resync indexes eso-updated and eso-deleted
	must(t, sys.EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": e.auditLog}}))
	must(t, sys.EnableAuditWithOptions("guard", &vault.EnableAuditOptions{Type: "socket",
		Options: map[string]string{"address": e.listen, "socket_type": "tcp"}}))

	role("ESO-Updated", "default")
	_, err := e.root.Logical().Delete("auth/kubernetes/role/ESO-Deleted")
	must(t, err)
	for _, p := range []string{"team-updated", "team-deleted"} {
		n := e.events.Count()
		must(t, sys.DeletePolicy(p))
		ev := e.events.wait(t, events.PolicyDeleted, p, n)
		if len(ev.Roles) != 0 || ev.Action != "recorded" {
			t.Errorf("%s: event = %+v", p, ev)
		}
		if body := e.policy(t, p); body != "" {
			t.Errorf("%s restored although no role references it any more: %q", p, body)
		}
	}
}
