package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
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
	testenv.NeedsServer(t, "a nats-server")
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

// TestNATSMaxPayloadDoesNotBlock: an event the server refuses however often it is sent — over the
// server's max_payload ("maximum payload exceeded", refused by the client before sending) or over
// the stream's max message size (refused in the PubAck) — is dead-lettered, and the events queued
// behind it are delivered, through JetStream and through core NATS alike.
func TestNATSMaxPayloadDoesNotBlock(t *testing.T) {
	t.Parallel()
	for mode, tc := range map[string]struct {
		maxPayload   int32
		createStream bool
		stream       *jetstream.StreamConfig // created before the guard starts
		errPart      string
	}{
		"jetstream, server max_payload": {maxPayload: 2048, createStream: true, errPart: "maximum payload exceeded"},
		"core, server max_payload":      {maxPayload: 2048, errPart: "maximum payload exceeded"},
		"jetstream, stream max_msg_size": {stream: &jetstream.StreamConfig{Name: "CREDCHAIN", Subjects: []string{"credchain.>"}, MaxMsgSize: 2048},
			errPart: "message size exceeds maximum allowed"},
	} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
				MaxPayload: tc.maxPayload})
			if err != nil {
				t.Fatal(err)
			}
			go srv.Start()
			if !srv.ReadyForConnections(10 * time.Second) {
				t.Fatal("nats-server not ready")
			}
			t.Cleanup(srv.Shutdown)
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if tc.stream != nil {
				js, _ := jetstream.New(nc)
				if _, err := js.CreateStream(t.Context(), *tc.stream); err != nil {
					t.Fatal(err)
				}
			}
			sub, err := nc.SubscribeSync("credchain.test.>")
			if err != nil {
				t.Fatal(err)
			}
			g := startGuardProc(t, filepath.Join(t.TempDir(), "state.db"), srv.ClientURL(), tc.createStream)
			defer g.stop()
			for i := range 4 {
				e := event(i)
				e.ID = fmt.Sprintf("ev-%d", i)
				if i == 1 {
					e.Message = strings.Repeat("m", 3000) // over the limit even after capping
				}
				if err := g.d.Notify(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the outbox drained past the refused event", func() bool { return g.d.workers[0].outbox.Len() == 0 })
			var got []string
			if tc.createStream || tc.stream != nil {
				for _, e := range streamMessages(t, srv.ClientURL()) {
					got = append(got, e.ID)
				}
			} else {
				for len(got) < 3 {
					m, err := sub.NextMsg(20 * time.Second)
					if err != nil {
						t.Fatalf("after %v: %v", got, err)
					}
					var e Event
					if err := json.Unmarshal(m.Data, &e); err != nil {
						t.Fatal(err)
					}
					got = append(got, e.ID)
				}
			}
			if s := strings.Join(got, ","); s != "ev-0,ev-2,ev-3" {
				t.Errorf("delivered %s, want ev-0,ev-2,ev-3", s)
			}
			requireDeadLetters(t, g.d, "nats", map[string]string{"ev-1": DeadRejected}, tc.errPart)
		})
	}
}

// TestNATSErrorClasses: which NATS failures are the event's (rejected: dead-lettered at once) and
// which the server's (unavailable: retried without counting attempts).
func TestNATSErrorClasses(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		err                   error
		rejected, unavailable bool
	}{
		"max payload":          {err: nats.ErrMaxPayload, rejected: true},
		"stream max msg size":  {err: fmt.Errorf("nats: %w", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamMessageExceedsMaximum}), rejected: true},
		"timeout":              {err: nats.ErrTimeout, unavailable: true},
		"deadline":             {err: context.DeadlineExceeded, unavailable: true},
		"no stream responders": {err: jetstream.ErrNoStreamResponse, unavailable: true},
		"connection closed":    {err: nats.ErrConnectionClosed, unavailable: true},
		"other API error":      {err: fmt.Errorf("nats: %w", &jetstream.APIError{Code: 500, ErrorCode: 10077})},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := natsError(tc.err)
			if errors.Is(err, ErrRejected) != tc.rejected || errors.Is(err, ErrUnavailable) != tc.unavailable {
				t.Errorf("natsError(%v) = %v: rejected %v, unavailable %v; want %v, %v", tc.err, err,
					errors.Is(err, ErrRejected), errors.Is(err, ErrUnavailable), tc.rejected, tc.unavailable)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("natsError(%v) = %v does not wrap the cause", tc.err, err)
			}
		})
	}
}
