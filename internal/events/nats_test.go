package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"

	"github.com/credchain/credchain/internal/testenv"
)

// startNATS runs a real nats-server in-process with JetStream storing in dir; port 0 picks one.
func startNATS(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	s, err := testenv.NATS(dir, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// guardProc is the guard's delivery half: a state db, the NATS sink and the dispatcher.
type guardProc struct {
	db     *bolt.DB
	sink   *NATS
	d      *Dispatcher
	cancel context.CancelFunc
	done   chan struct{}
}

func startGuardProc(t testing.TB, dbPath, url string, create bool) *guardProc {
	t.Helper()
	g := &guardProc{db: openDB(t, dbPath), done: make(chan struct{})}
	var err error
	if g.sink, err = NewNATS(NATSConfig{URLs: []string{url}, Cluster: "test", CreateStream: create}, testr.NewWithInterface(t, testr.Options{})); err != nil {
		t.Fatal(err)
	}
	if g.d, err = NewDispatcher(g.db, testr.NewWithInterface(t, testr.Options{}), nil, g.sink); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.d.Run(ctx); close(g.done) }()
	return g
}

func (g *guardProc) stop() {
	g.cancel()
	<-g.done
	g.sink.Close()
	_ = g.db.Close()
}

func event(i int) Event {
	return Event{APIVersion: APIVersion, Type: PolicyRestored, Time: time.Now().UTC(), Vault: "http://127.0.0.1:8200",
		Policy: fmt.Sprintf("eso-svc-%d", i), Actor: &Actor{DisplayName: "userpass-cleanup-bot", RemoteAddress: "10.0.4.17"},
		Roles: []RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}}, Action: "restored", Message: "m"}
}

func streamMessages(t testing.TB, url string) []Event {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "CREDCHAIN")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // created with the first event
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "credchain.test.policy.restored" || m.Header.Get(jetstream.MsgIDHeader) == "" {
			t.Errorf("message %d: subject %s, msg id %q", seq, m.Subject, m.Header.Get(jetstream.MsgIDHeader))
		}
		var e Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.ID != m.Header.Get(jetstream.MsgIDHeader) {
			t.Errorf("event id %s != Nats-Msg-Id %s", e.ID, m.Header.Get(jetstream.MsgIDHeader))
		}
		out = append(out, e)
	}
	return out
}

func waitFor(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNATSOutageAndRestart: events published during a NATS outage, with the publishing process
// restarted in between, all arrive exactly once when NATS comes back.
func TestNATSOutageAndRestart(t *testing.T) {
	natsDir, stateDir := t.TempDir(), t.TempDir()
	srv := startNATS(t, natsDir, 0)
	url := srv.ClientURL()
	g := startGuardProc(t, filepath.Join(stateDir, "state.db"), url, true)

	var sent []string
	notify := func(g *guardProc, i int) {
		e := event(i)
		e.ID = NewID()
		sent = append(sent, e.ID)
		if err := g.d.Notify(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		notify(g, i)
	}
	// Acknowledged and removed from the outbox, so the outage below starts from a clean slate.
	waitFor(t, "3 events in the stream", func() bool {
		return len(streamMessages(t, url)) == 3 && g.d.workers[0].outbox.Len() == 0
	})
	got := streamMessages(t, url)[0]
	if got.APIVersion != APIVersion || got.Type != PolicyRestored || got.Policy != "eso-svc-0" || got.Actor.DisplayName != "userpass-cleanup-bot" ||
		len(got.Roles) != 1 || got.Roles[0].Name != "external-secrets-operator" {
		t.Errorf("event = %+v", got)
	}

	// Outage.
	tcpPort := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	for i := 3; i < 7; i++ {
		notify(g, i)
	}
	time.Sleep(300 * time.Millisecond) // let the dispatcher fail at least once
	if n := g.d.workers[0].outbox.Len(); n != 4 {
		t.Fatalf("outbox holds %d events during the outage, want 4", n)
	}
	// The guard restarts while NATS is still down.
	g.stop()
	g = startGuardProc(t, filepath.Join(stateDir, "state.db"), url, true)
	defer g.stop()
	notify(g, 7)
	if n := g.d.workers[0].outbox.Len(); n != 5 {
		t.Fatalf("outbox holds %d events after the restart, want 5", n)
	}

	// NATS comes back on the same port with the same store.
	startNATS(t, natsDir, tcpPort)
	waitFor(t, "8 events in the stream", func() bool {
		return g.d.workers[0].outbox.Len() == 0 && len(streamMessages(t, url)) >= 8
	})
	time.Sleep(200 * time.Millisecond)
	var ids []string
	for _, e := range streamMessages(t, url) {
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	slices.Sort(sent)
	if !slices.Equal(ids, sent) {
		t.Fatalf("stream holds %d events %v, want exactly the %d sent %v", len(ids), ids, len(sent), sent)
	}
}

// TestNATSCorePublish: without a stream covering the subject, events go out as core publishes
// confirmed by Flush.
func TestNATSCorePublish(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("credchain.test.>")
	if err != nil {
		t.Fatal(err)
	}
	g := startGuardProc(t, filepath.Join(t.TempDir(), "state.db"), srv.ClientURL(), false)
	defer g.stop()
	if err := g.d.Notify(context.Background(), event(1)); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var e Event
	if err := json.Unmarshal(m.Data, &e); err != nil {
		t.Fatal(err)
	}
	if m.Subject != "credchain.test.policy.restored" || e.Policy != "eso-svc-1" || e.ID == "" {
		t.Errorf("got %s %+v", m.Subject, e)
	}
}
