package events

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/slack-go/slack"
)

// slackStandIn plays Slack's incoming webhook (Slack itself is unreachable from here): it answers
// with the scripted status codes in order, then 200, and records every request.
type slackStandIn struct {
	mu       sync.Mutex
	script   []int
	requests []slackRequest
}

type slackRequest struct {
	at     time.Time
	status int
	msg    slack.WebhookMessage
}

func (s *slackStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	status := http.StatusOK
	if len(s.script) > 0 {
		status, s.script = s.script[0], s.script[1:]
	}
	var msg slack.WebhookMessage
	_ = json.Unmarshal(body, &msg)
	s.requests = append(s.requests, slackRequest{at: time.Now(), status: status, msg: msg})
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "2")
	}
	w.WriteHeader(status)
	if status == http.StatusOK {
		_, _ = w.Write([]byte("ok"))
	}
}

func (s *slackStandIn) all() []slackRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slackRequest(nil), s.requests...)
}

func TestSlackRetriesMergesAndRateLimits(t *testing.T) {
	t.Parallel()
	standIn := &slackStandIn{script: []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway}}
	srv := httptest.NewServer(standIn)
	defer srv.Close()
	urlFile := filepath.Join(t.TempDir(), "slack-url")
	if err := os.WriteFile(urlFile, []byte(srv.URL+"/services/T0/B0/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink, err := NewSlack(SlackConfig{WebhookURLFile: urlFile, Cluster: "prod-eu"})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	defer db.Close()
	d, err := NewDispatcher(db, testr.New(t), nil, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()

	// A burst of 5 events while Slack answers 429, then 500, then 502.
	ids := map[string]bool{}
	for i := range 5 {
		e := event(i)
		e.ID = NewID()
		ids[e.ID] = true
		if err := d.Notify(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "outbox drained", func() bool { return d.workers[0].outbox.Len() == 0 })
	cancel()
	<-done

	reqs := standIn.all()
	var delivered []slackRequest
	// The limiter spaces sends, the stand-in sees arrivals: allow for how much later one request
	// can arrive than the next on a loaded machine. Without the limiter the 500 → 502 retry would
	// come after the dispatcher's 500ms backoff, well inside this.
	const slop = 250 * time.Millisecond
	for i, r := range reqs {
		if i > 0 {
			gap := r.at.Sub(reqs[i-1].at)
			if gap < time.Second-slop {
				t.Errorf("request %d came %s after the previous one; want ≥ 1s", i, gap)
			}
			if reqs[i-1].status == http.StatusTooManyRequests && gap < 2*time.Second-slop {
				t.Errorf("request %d ignored Retry-After: 2 (gap %s)", i, gap)
			}
		}
		if r.status == http.StatusOK {
			delivered = append(delivered, r)
		}
	}
	if len(reqs) < 4 {
		t.Fatalf("%d requests, want the 3 failures and a success", len(reqs))
	}
	// Every event delivered exactly once, the burst merged.
	seen := map[string]int{}
	for _, r := range delivered {
		for id := range ids {
			seen[id] += strings.Count(r.msg.Text, "credchain event "+id)
		}
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("event %s delivered %d times", id, seen[id])
		}
	}
	if len(delivered) != 1 {
		t.Errorf("burst of 5 delivered in %d messages, want 1", len(delivered))
	}
	// Field by field: what a human needs to act.
	msg := delivered[0].msg
	if msg.Username != "credchain" {
		t.Errorf("username = %q", msg.Username)
	}
	for _, want := range []string{
		"*credchain: 5 events* in `prod-eu`",
		":white_check_mark: *policy.restored* — policy `eso-svc-0` on http://127.0.0.1:8200",
		"• *who:* userpass-cleanup-bot from 10.0.4.17",
		"• *would have broken:* logins with auth/kubernetes/role/external-secrets-operator",
		"• *next:* nothing is broken; ask userpass-cleanup-bot from 10.0.4.17 why the policy was deleted",
	} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("message lacks %q:\n%s", want, msg.Text)
		}
	}
}

func TestSlackURLNeverFromFlags(t *testing.T) {
	t.Setenv("CREDCHAIN_SLACK_WEBHOOK_URL", "")
	if _, err := NewSlack(SlackConfig{}); err != ErrNoSlackURL {
		t.Fatalf("err = %v, want ErrNoSlackURL", err)
	}
	t.Setenv("CREDCHAIN_SLACK_WEBHOOK_URL", "https://hooks.slack.example/services/x")
	s, err := NewSlack(SlackConfig{})
	if err != nil || s.url != "https://hooks.slack.example/services/x" {
		t.Fatalf("NewSlack from env: %v %v", s, err)
	}
}
