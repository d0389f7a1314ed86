package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// accountsConf is the NATS users of docs/scale.md, Permissions (the document quotes it verbatim).
const accountsConf = "replicas/nats-accounts.conf"

// natsRoles are the users of accountsConf, by the name in their $CREDCHAIN_<ROLE>_NKEY variable.
var natsRoles = []string{"GUARD", "WEBHOOK_EU_1", "WEBHOOK_US_1", "RELAY", "OPS"}

// TestNATSAccountsQuoted keeps docs/scale.md's snippet the file TestNATSPermissions runs.
func TestNATSAccountsQuoted(t *testing.T) {
	t.Parallel()
	conf, err := os.ReadFile(accountsConf)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "scale.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, conf) {
		t.Errorf("docs/scale.md does not quote %s verbatim: copy it into the document's snippet", accountsConf)
	}
}

// TestNATSPermissions runs the users of docs/scale.md on a real nats-server (in-process, JetStream
// on) and has each role do what its component does, through the same client calls — the event
// sink's publish (stream lookup, PubAck), key-value create, get, compare-and-set, delete, watch and
// list — and a durable consumer's fetch and ack; then the things a role must not do fail: a webhook
// writing another cluster's inventory or events, reading the guard's state or another cluster's
// inventory, changing the bucket; the relay publishing; the guard deleting a bucket.
func TestNATSPermissions(t *testing.T) {
	testenv.NeedsServer(t, "a nats-server")
	url, seeds := startAccountsServer(t)
	conns := map[string]*roleConn{}
	for _, role := range natsRoles {
		conns[role] = dialRole(t, url, filepath.Join(seeds, role+".seed"), role)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	ops := conns["OPS"]
	if _, err := ops.js.CreateStream(ctx, jetstream.StreamConfig{Name: "CREDCHAIN", Subjects: []string{"credchain.>"},
		Storage: jetstream.FileStorage, Duplicates: time.Hour}); err != nil {
		t.Fatalf("ops: nats stream add CREDCHAIN: %v", err)
	}
	if _, err := ops.js.CreateConsumer(ctx, "CREDCHAIN", jetstream.ConsumerConfig{Durable: "relay", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatalf("ops: nats consumer add CREDCHAIN relay: %v", err)
	}

	t.Run("allowed", func(t *testing.T) {
		for role, cluster := range map[string]string{"GUARD": "hub", "WEBHOOK_EU_1": "eu-1", "WEBHOOK_US_1": "us-1"} {
			conns[role].mustNot(t, "send an event", conns[role].sendEvent(ctx, url, cluster))
		}
		for role, cluster := range map[string]string{"WEBHOOK_EU_1": "eu-1", "WEBHOOK_US_1": "us-1"} {
			c := conns[role]
			inv, err := openInventory(ctx, c.js)
			c.mustNot(t, "open (or create) the inventory bucket", err)
			if inv != nil {
				_, err = inv.Put(ctx, cluster, []byte(`{"cluster":"`+cluster+`"}`))
				c.mustNot(t, "put its inventory", err)
			}
		}
		guardState(ctx, t, conns["GUARD"])
		guardInventory(ctx, t, conns["GUARD"])
		relay := conns["RELAY"]
		cons, err := relay.js.Consumer(ctx, "CREDCHAIN", "relay")
		relay.mustNot(t, "look up its consumer", err)
		if cons != nil {
			batch, err := cons.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
			relay.mustNot(t, "fetch", err)
			n := 0
			for m := range batch.Messages() {
				relay.mustNot(t, "ack "+m.Subject(), m.DoubleAck(ctx))
				n++
			}
			if n != 3 {
				t.Errorf("relay fetched %d events, want the 3 sent", n)
			}
		}
		for role, c := range conns {
			if v := c.violations(); len(v) > 0 {
				t.Errorf("%s: permission violations while doing its job (add them to %s):\n%s", role, accountsConf, strings.Join(v, "\n"))
			}
		}
	})

	t.Run("denied", func(t *testing.T) {
		short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 1500*time.Millisecond) }
		eu := conns["WEBHOOK_EU_1"]
		for name, try := range map[string]func() error{
			"eu-1 writes us-1's inventory": func() error {
				c, cancel := short()
				defer cancel()
				inv, err := eu.js.KeyValue(c, "credchain-inventory")
				if err != nil {
					return err
				}
				_, err = inv.Put(c, "us-1", []byte(`{"cluster":"forged"}`))
				return err
			},
			"eu-1 reads us-1's inventory": func() error {
				c, cancel := short()
				defer cancel()
				inv, err := eu.js.KeyValue(c, "credchain-inventory")
				if err != nil {
					return err
				}
				_, err = inv.Get(c, "us-1")
				return err
			},
			"eu-1 sends events as us-1": func() error { return eu.sendEvent(ctx, url, "us-1") },
			"eu-1 opens the guard's state": func() error {
				c, cancel := short()
				defer cancel()
				_, err := eu.js.KeyValue(c, "credchain-guard")
				return err
			},
			"eu-1 shortens the inventory TTL": func() error {
				c, cancel := short()
				defer cancel()
				_, err := eu.js.UpdateKeyValue(c, jetstream.KeyValueConfig{Bucket: "credchain-inventory", TTL: time.Second})
				return err
			},
			"the relay publishes an event": func() error {
				c, cancel := short()
				defer cancel()
				_, err := conns["RELAY"].js.Publish(c, "credchain.hub.policy.restored", []byte(`{}`))
				return err
			},
			"the guard deletes the inventory bucket": func() error {
				c, cancel := short()
				defer cancel()
				return conns["GUARD"].js.DeleteKeyValue(c, "credchain-inventory")
			},
		} {
			if err := try(); err == nil {
				t.Errorf("%s: allowed, want a permission violation", name)
			}
		}
		inv, err := conns["GUARD"].js.KeyValue(ctx, "credchain-inventory")
		if err != nil {
			t.Fatalf("guard: the inventory bucket after the denials: %v", err)
		}
		if e, err := inv.Get(ctx, "us-1"); err != nil || string(e.Value()) != `{"cluster":"us-1"}` {
			t.Errorf("us-1's inventory after eu-1's forgery: %v, %v", entryValue(e), err)
		}
	})
}

// guardState is what the guard does with its state and lease buckets.
func guardState(ctx context.Context, t *testing.T, g *roleConn) {
	t.Helper()
	state, err := g.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "credchain-guard", History: 1, Storage: jetstream.FileStorage})
	g.mustNot(t, "create its state bucket", err)
	lease, err := g.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "credchain-guard-leader", History: 1, TTL: 15 * time.Second})
	g.mustNot(t, "create its lease bucket", err)
	if state == nil || lease == nil {
		return
	}
	w, err := state.WatchAll(ctx)
	g.mustNot(t, "watch its state", err)
	rev, err := state.Create(ctx, "snap.a", []byte("v1"))
	g.mustNot(t, "create a key", err)
	_, err = state.Update(ctx, "snap.a", []byte("v2"), rev)
	g.mustNot(t, "compare-and-set a key", err)
	e, err := state.Get(ctx, "snap.a")
	g.mustNot(t, "get a key", err)
	if err == nil && string(e.Value()) != "v2" {
		t.Errorf("guard: snap.a = %q, want v2", e.Value())
	}
	_, err = state.Put(ctx, "login.b", []byte("x"))
	g.mustNot(t, "put a key", err)
	g.mustNot(t, "delete a key", state.Delete(ctx, "login.b"))
	keys, err := state.ListKeys(ctx)
	g.mustNot(t, "list keys", err)
	if keys != nil {
		for range keys.Keys() {
		}
	}
	if w != nil {
		select {
		case <-w.Updates():
		case <-ctx.Done():
			t.Error("guard: no update on its watch")
		}
		g.mustNot(t, "stop its watch", w.Stop())
	}
	rev, err = lease.Create(ctx, "leader", []byte("guard-0"))
	g.mustNot(t, "take the lease", err)
	_, err = lease.Update(ctx, "leader", []byte("guard-0"), rev)
	g.mustNot(t, "renew the lease", err)
	lw, err := lease.Watch(ctx, "leader")
	g.mustNot(t, "watch the lease", err)
	if lw != nil {
		g.mustNot(t, "stop watching the lease", lw.Stop())
	}
}

// guardInventory is what the guard does with every cluster's inventory: get and watch.
func guardInventory(ctx context.Context, t *testing.T, g *roleConn) {
	t.Helper()
	inv, err := g.js.KeyValue(ctx, "credchain-inventory")
	g.mustNot(t, "open the inventory bucket", err)
	if inv == nil {
		return
	}
	e, err := inv.Get(ctx, "eu-1")
	g.mustNot(t, "get eu-1's inventory", err)
	if err == nil && string(e.Value()) != `{"cluster":"eu-1"}` {
		t.Errorf("guard: eu-1's inventory = %q", e.Value())
	}
	w, err := inv.WatchAll(ctx)
	g.mustNot(t, "watch the inventories", err)
	if w == nil {
		return
	}
	defer w.Stop()
	seen := map[string]bool{}
	for u := range w.Updates() {
		if u == nil {
			break // the initial values are in
		}
		seen[u.Key()] = true
	}
	if !seen["eu-1"] || !seen["us-1"] {
		t.Errorf("guard: watching the inventories saw %v, want eu-1 and us-1", seen)
	}
}

// openInventory is the least-privilege open a webhook needs: the bucket's info, and a create only
// when it is missing (a create-or-update would try an update first, which a webhook may not do).
func openInventory(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, "credchain-inventory")
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "credchain-inventory", History: 1, TTL: time.Minute})
		if errors.Is(err, jetstream.ErrBucketExists) {
			return js.KeyValue(ctx, "credchain-inventory") // another cluster's webhook created it in between
		}
	}
	return kv, err
}

func entryValue(e jetstream.KeyValueEntry) string {
	if e == nil {
		return "<none>"
	}
	return string(e.Value())
}

// startAccountsServer runs accountsConf on an in-process nats-server with JetStream, the users'
// public keys defined as variables before it, and returns its URL and the directory of the seeds
// (ROLE.seed).
func startAccountsServer(t *testing.T) (url, seedDir string) {
	t.Helper()
	conf, err := os.ReadFile(accountsConf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var vars strings.Builder
	for _, role := range natsRoles {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		if err := os.WriteFile(filepath.Join(dir, role+".seed"), seed, 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&vars, "CREDCHAIN_%s_NKEY: %q\n", role, pub)
	}
	path := filepath.Join(dir, "nats-server.conf")
	full := fmt.Sprintf("%slisten: \"127.0.0.1:-1\"\njetstream {store_dir: %q}\n%s", vars.String(), filepath.Join(dir, "js"), conf)
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server rejects %s: %v", accountsConf, err)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready after 10s")
	}
	return srv.ClientURL(), dir
}

// roleConn is one role's connection, as credchain dials it (events.Dial with --nats-nkey-seed),
// with the permission violations the server reported to it.
type roleConn struct {
	role string
	seed string
	nc   *nats.Conn
	js   jetstream.JetStream

	mu   sync.Mutex // guards errs, appended by the connection's callback goroutine
	errs []string
}

func dialRole(t *testing.T, url, seed, role string) *roleConn {
	t.Helper()
	c := &roleConn{role: role, seed: seed}
	nc, err := events.Dial(events.NATSConfig{URLs: []string{url}, NkeySeedFile: c.seed}, "credchain-test-"+strings.ToLower(role))
	if err != nil {
		t.Fatalf("%s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.errs = append(c.errs, err.Error())
		c.mu.Unlock()
	})
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	c.nc = nc
	return c
}

func (c *roleConn) violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

func (c *roleConn) mustNot(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: cannot %s: %v", c.role, what, err)
	}
}

// sendEvent publishes one event through the real NATS sink as installation cluster, on a connection
// of its own (the sink owns and closes it), within 3s. The sink connects in the background, and
// reports unavailable until it has: it is retried, as the outbox would.
func (c *roleConn) sendEvent(ctx context.Context, url, cluster string) error {
	sink, err := events.NewNATS(events.NATSConfig{URLs: []string{url}, NkeySeedFile: c.seed, Cluster: cluster}, logr.Discard())
	if err != nil {
		return err
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	e := events.Event{ID: fmt.Sprintf("%s-%d", cluster, time.Now().UnixNano()), Type: "policy.restored"}
	for {
		err := sink.Send(ctx, e)
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
