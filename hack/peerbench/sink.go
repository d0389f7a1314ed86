package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/credchain/credchain/internal/testenv"
)

// eventSink is where the webhooks may deliver events: an in-process nats-server (JetStream on)
// with a subscriber on every credchain subject, and a Slack stand-in recording posted messages.
type eventSink struct {
	srv       *server.Server
	nc        *nats.Conn
	slack     *httptest.Server
	slackFile string // holds the stand-in's webhook URL (credchain's --slack-webhook-file)

	mu    sync.Mutex
	nats  []string // message bodies, guarded by mu (written by NATS's and the HTTP server's goroutines)
	posts []string // Slack texts, guarded by mu
}

func startSink(dir string) (*eventSink, error) {
	srv, err := testenv.NATS(filepath.Join(dir, "nats"), 0)
	if err != nil {
		return nil, err
	}
	s := &eventSink{srv: srv, slackFile: filepath.Join(dir, "slack-webhook-url")}
	if s.nc, err = nats.Connect(srv.ClientURL()); err != nil {
		srv.Shutdown()
		return nil, err
	}
	if _, err := s.nc.Subscribe("credchain.>", func(m *nats.Msg) {
		s.mu.Lock()
		s.nats = append(s.nats, string(m.Data))
		s.mu.Unlock()
	}); err != nil {
		s.stop()
		return nil, err
	}
	s.slack = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.posts = append(s.posts, m.Text)
		s.mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	if err := os.WriteFile(s.slackFile, []byte(s.slack.URL+"/services/T0/B0/peerbench"), 0o600); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// counts is how many NATS messages and Slack posts so far mention name.
func (s *eventSink) counts(name string) (natsMsgs, slackPosts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.nats {
		if strings.Contains(m, name) {
			natsMsgs++
		}
	}
	for _, p := range s.posts {
		if strings.Contains(p, name) {
			slackPosts++
		}
	}
	return natsMsgs, slackPosts
}

func (s *eventSink) stop() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.slack != nil {
		s.slack.Close()
	}
	s.srv.Shutdown()
}
