package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

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

// evilStrings are what Slack would act on if unescaped: a mention of everyone in the channel and a
// link whose text hides its target. Pull-secret names are not validated by the API server, so they
// reach denial messages verbatim; policy, role and actor names come from audit lines.
var evilStrings = []string{"<!channel>", "<https://evil|login>"}

// TestSlackEscapesUserStrings: every user-controlled string is escaped as Slack requires (& → &amp;,
// < → &lt;, > → &gt;), wherever the renderer puts it, for the guard's and the webhook's events.
func TestSlackEscapesUserStrings(t *testing.T) {
	t.Parallel()
	for field, set := range map[string]func(e *Event, s string){
		"pull-secret name in a denial": func(e *Event, s string) {
			e.Type, e.Reason = AdmissionDenied, "unmanaged"
			e.Workload = &ObjectRef{Kind: "Deployment", Namespace: "prod", Name: "order-service"}
			e.Message = `deployment prod/order-service: spec.template.spec.imagePullSecrets[0]: Forbidden: secret "` + s + `" is not written by any ExternalSecret in namespace prod`
		},
		"workload name": func(e *Event, s string) {
			e.Type, e.Workload = AdmissionWarned, &ObjectRef{Kind: "Pod", Namespace: "prod", Name: s}
		},
		"workload namespace": func(e *Event, s string) {
			e.Type, e.Workload = AdmissionDenied, &ObjectRef{Kind: "Pod", Namespace: s, Name: "p"}
		},
		"admission reason": func(e *Event, s string) { e.Type, e.Reason = AdmissionDenied, s },
		"policy":           func(e *Event, s string) { e.Policy = s },
		"policy, restore failed": func(e *Event, s string) {
			e.Type, e.Policy = PolicyRestoreFailed, s
		},
		"policy, dangling": func(e *Event, s string) { e.Type, e.Policy = DanglingReference, s },
		"role name":        func(e *Event, s string) { e.Roles = []RoleRef{{Mount: "kubernetes", Name: s}} },
		"role mount":       func(e *Event, s string) { e.Roles = []RoleRef{{Mount: s, Name: "r"}} },
		"actor name":       func(e *Event, s string) { e.Actor.DisplayName = s },
		"actor entity":     func(e *Event, s string) { e.Actor.EntityID = s },
		"actor address":    func(e *Event, s string) { e.Actor.RemoteAddress = s },
		"message":          func(e *Event, s string) { e.Message = "policy " + s + " & more" },
		"error":            func(e *Event, s string) { e.Error = s },
		"object":           func(e *Event, s string) { e.Type, e.Object = AuditDisabled, s },
		"vault address":    func(e *Event, s string) { e.Vault = s },
		"vault namespace":  func(e *Event, s string) { e.Namespace = s },
		"event id":         func(e *Event, s string) { e.ID = s },
		"blast radius": func(e *Event, s string) {
			e.BlastRadius = &BlastRadius{Stores: []ObjectRef{{Kind: "SecretStore", Namespace: "prod", Name: s}},
				ExternalSecrets: []ObjectRef{{Kind: "ExternalSecret", Namespace: s, Name: "x"}}, Workloads: []ObjectRef{{Kind: "Deployment", Namespace: "prod", Name: s}}}
		},
		"blast radius cluster": func(e *Event, s string) {
			e.BlastRadius = &BlastRadius{Workloads: []ObjectRef{{Kind: "Deployment", Namespace: "prod", Name: "x", Cluster: s}}}
		},
	} {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			for _, evil := range evilStrings {
				e := event(1)
				e.ID = "id1"
				set(&e, evil)
				text := SlackMessage("prod-eu", []Event{e, event(2)}).Text
				if strings.Contains(text, evil) {
					t.Errorf("%q reaches Slack unescaped:\n%s", evil, text)
				}
				if strings.ContainsAny(text, "<>") {
					t.Errorf("text contains < or >, which Slack parses as a control sequence:\n%s", text)
				}
				if bare := strings.NewReplacer("&amp;", "", "&lt;", "", "&gt;", "").Replace(text); strings.Contains(bare, "&") {
					t.Errorf("text contains a bare &:\n%s", text)
				}
				escaped := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(evil)
				if !strings.Contains(text, escaped) {
					t.Errorf("the %s is not shown (want %q in the text):\n%s", field, escaped, text)
				}
			}
		})
	}
	// The cluster name is a flag, but it is rendered too.
	if text := SlackMessage("a<b>&c", []Event{event(1), event(2)}).Text; !strings.Contains(text, "a&lt;b&gt;&amp;c") {
		t.Errorf("cluster not escaped:\n%s", text)
	}
}

// TestSlackAdmissionEvents: a denial or warning in Slack says which workload, why, and what the
// webhook said (shortened, keeping its start and the fix at its end), not "see the credchain logs".
func TestSlackAdmissionEvents(t *testing.T) {
	t.Parallel()
	denial := `deployment prod/order-service: a pull secret is not backed by a synced ExternalSecret: spec.template.spec.imagePullSecrets[0]: Forbidden: secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred, which is not synced (Ready=False, SecretSyncedError: could not get secret data from provider) since 2026-11-27T08:06:27Z; ESO's last warning (UpdateFailed): ` +
		strings.Repeat("error processing spec.data[0] (key: order-service), err: Error making API request. Code: 403. ", 40) +
		`; fix the store's access to the provider, then force a resync: kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite`
	for typ, want := range map[string][]string{
		AdmissionDenied: {":no_entry: *admission.denied* — Deployment `prod/order-service`", "• *reason:* `not_synced`", "• *who:* admin (create)",
			`secret "regcred-order-service" comes from ExternalSecret prod/order-service-regcred`, "force-sync=$(date +%s) --overwrite", " … "},
		AdmissionWarned: {":warning: *admission.warned* — Deployment `prod/order-service`", "• *reason:* `not_synced`", "• *who:* admin (create)",
			`secret "regcred-order-service"`, "force-sync=$(date +%s) --overwrite"},
	} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			e := Event{APIVersion: APIVersion, ID: "7e90b51ca4698b98e4c1b214ced6b721", Type: typ, Cluster: "prod-eu", Reason: "not_synced",
				Actor:    &Actor{DisplayName: "admin", Operation: "create"},
				Workload: &ObjectRef{Kind: "Deployment", Namespace: "prod", Name: "order-service"}, Message: denial}
			text := SlackMessage("prod-eu", []Event{e}).Text
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("text lacks %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, "see the credchain logs") {
				t.Errorf("text still says \"see the credchain logs\":\n%s", text)
			}
			if n := utf8.RuneCountInString(text); n > 2000 {
				t.Errorf("text is %d characters for one admission event; want the message shortened (≤ 2000 in all)", n)
			}
		})
	}
}

// TestSlackErrorsHideWebhookURL: the webhook URL is a secret (anyone holding it can post to the
// channel); a failed post's error, which the dispatcher logs, must not contain it.
func TestSlackErrorsHideWebhookURL(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T0/B0/s3cr3t-token"
	srv.Close() // connection refused from here on
	urlFile := filepath.Join(t.TempDir(), "slack-url")
	if err := os.WriteFile(urlFile, []byte(url), 0o600); err != nil {
		t.Fatal(err)
	}
	sink, err := NewSlack(SlackConfig{WebhookURLFile: urlFile, MinInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = sink.Send(t.Context(), event(1))
	if err == nil {
		t.Fatal("post to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t-token") || strings.Contains(err.Error(), "/services/") {
		t.Fatalf("error reveals the webhook URL: %v", err)
	}
}

// TestSlackRejectedEventDoesNotBlock: Slack refuses (400) any message carrying one poisoned event;
// the merged message is refused, so its events are retried one by one: the poisoned one is
// dead-lettered and the rest, and everything after, are delivered.
func TestSlackRejectedEventDoesNotBlock(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var delivered []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg slack.WebhookMessage
		_ = json.NewDecoder(r.Body).Decode(&msg)
		if strings.Contains(msg.Text, "poison") {
			http.Error(w, "invalid_blocks", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, l := range strings.Split(msg.Text, "\n") {
			if id, ok := strings.CutPrefix(l, "_credchain event "); ok {
				delivered = append(delivered, strings.TrimSuffix(id, "_"))
			}
		}
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	urlFile := filepath.Join(t.TempDir(), "slack-url")
	if err := os.WriteFile(urlFile, []byte(srv.URL+"/services/T0/B0/x"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink, err := NewSlack(SlackConfig{WebhookURLFile: urlFile, MinInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	defer db.Close()
	d, err := NewDispatcher(db, testr.New(t), nil, sink)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"ev-0", "ev-1", "ev-poison", "ev-3"} {
		e := event(i)
		e.ID = id
		if err := d.Notify(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	runDispatcher(t, d)
	waitFor(t, "the outbox drained past the rejected event", func() bool { return d.workers[0].outbox.Len() == 0 })
	mu.Lock()
	got := strings.Join(delivered, ",")
	mu.Unlock()
	if got != "ev-0,ev-1,ev-3" {
		t.Errorf("delivered %s, want ev-0,ev-1,ev-3", got)
	}
	requireDeadLetters(t, d, "slack", map[string]string{"ev-poison": DeadRejected}, "400 Bad Request")
}

// TestSlackErrorClasses: which answers mean Slack refuses this message (rejected: the event is
// dead-lettered) and which mean it takes none now (unavailable, Retry-After: retried, not counted).
// A revoked webhook (401, 403, 404, 410) fails every message alike, so it is not the event's fault.
func TestSlackErrorClasses(t *testing.T) {
	t.Parallel()
	type class int
	const (
		rejected class = iota
		unavailable
		retryAfter
	)
	for name, tc := range map[string]struct {
		status     int
		retryAfter string
		want       class
	}{
		"400 invalid_payload":     {status: 400, want: rejected},
		"413 too large":           {status: 413, want: rejected},
		"422":                     {status: 422, want: rejected},
		"429 with Retry-After":    {status: 429, retryAfter: "3", want: retryAfter},
		"429 without Retry-After": {status: 429, want: unavailable},
		"408":                     {status: 408, want: unavailable},
		"401":                     {status: 401, want: unavailable},
		"403 invalid_token":       {status: 403, want: unavailable},
		"404 no_service":          {status: 404, want: unavailable},
		"410 channel_is_archived": {status: 410, want: unavailable},
		"500":                     {status: 500, want: unavailable},
		"503":                     {status: 503, want: unavailable},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			urlFile := filepath.Join(t.TempDir(), "slack-url")
			if err := os.WriteFile(urlFile, []byte(srv.URL+"/services/T0/B0/x"), 0o600); err != nil {
				t.Fatal(err)
			}
			sink, err := NewSlack(SlackConfig{WebhookURLFile: urlFile, MinInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			err = sink.Send(t.Context(), event(1))
			var ra *RetryAfterError
			got := map[bool]class{true: rejected}[errors.Is(err, ErrRejected)]
			switch {
			case errors.As(err, &ra):
				got = retryAfter
			case errors.Is(err, ErrUnavailable):
				got = unavailable
			case !errors.Is(err, ErrRejected):
				t.Fatalf("Send() = %v: neither rejected, unavailable nor retry-after", err)
			}
			if got != tc.want {
				t.Errorf("Send() = %v: class %d, want %d", err, got, tc.want)
			}
		})
	}
}

// TestSlackMessagesFitSlack: a burst of long events is split over messages that each stay under
// Slack's 40,000-character limit (slackMaxText), every event delivered once.
func TestSlackMessagesFitSlack(t *testing.T) {
	t.Parallel()
	standIn := &slackStandIn{}
	srv := httptest.NewServer(standIn)
	defer srv.Close()
	urlFile := filepath.Join(t.TempDir(), "slack-url")
	if err := os.WriteFile(urlFile, []byte(srv.URL+"/services/T0/B0/x"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink, err := NewSlack(SlackConfig{WebhookURLFile: urlFile, MinInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	defer db.Close()
	d, err := NewDispatcher(db, testr.New(t), nil, sink)
	if err != nil {
		t.Fatal(err)
	}
	worst := strings.Repeat("<&>", 2000)
	for i := range 20 {
		e := event(i)
		e.ID = fmt.Sprintf("ev-%02d", i)
		e.Policy, e.Object, e.Vault, e.Message, e.Error = worst, worst, worst, worst, worst
		e.Actor.DisplayName = worst
		e.Roles = []RoleRef{{Mount: worst, Name: worst}, {Mount: "k", Name: worst}}
		e.BlastRadius = &BlastRadius{Stores: []ObjectRef{{Kind: worst, Name: worst}}, ExternalSecrets: []ObjectRef{{Kind: "ExternalSecret", Namespace: worst, Name: worst}},
			Workloads: []ObjectRef{{Kind: "Deployment", Namespace: worst, Name: worst}}}
		if err := d.Notify(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	runDispatcher(t, d)
	waitFor(t, "the outbox drained", func() bool { return d.workers[0].outbox.Len() == 0 })
	seen := map[string]int{}
	reqs := standIn.all()
	for _, r := range reqs {
		if n := utf8.RuneCountInString(r.msg.Text); n > 40000 || len(r.msg.Text) > slackMaxText {
			t.Errorf("message of %d characters, %d bytes; Slack truncates past 40,000 characters", n, len(r.msg.Text))
		}
		for i := range 20 {
			seen[fmt.Sprintf("ev-%02d", i)] += strings.Count(r.msg.Text, fmt.Sprintf("credchain event ev-%02d_", i))
		}
	}
	for i := range 20 {
		if id := fmt.Sprintf("ev-%02d", i); seen[id] != 1 {
			t.Errorf("event %s delivered %d times", id, seen[id])
		}
	}
	if len(reqs) < 2 || len(reqs) > 20 {
		t.Errorf("%d messages for 20 long events, want them merged, several per message", len(reqs))
	}
}

// TestNextStepAdvice: the advice never tells the operator to leave credchain's socket as Vault's only
// audit device (issue 11 item 17), and a flapping policy is not "restore it by hand".
func TestNextStepAdvice(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		e       Event
		want    string
		mustNot string
	}{
		"audit device disabled": {e: Event{Type: AuditDisabled}, want: "file audit device", mustNot: "`vault audit enable socket ...`"},
		"only socket devices":   {e: Event{Type: AuditGuardOnly}, want: "enable a file audit device now", mustNot: "socket address="},
		"policy deleted, no Kubernetes auth role references it": {e: Event{Type: PolicyDeleted, Policy: "ci-deploy"},
			want: "something credchain does not check still grants the policy (another auth method, an identity group, a token role)"},
		"auth mount disabled": {e: Event{Type: AuthMountDisabled, Object: "auth/kubernetes"}, want: "write the roles named here"},
		"auth mount moved":    {e: Event{Type: AuthMountMoved, Object: "auth/kubernetes"}, want: "mountPath"},
		"restore withheld: flapping": {e: Event{Type: PolicyRestoreFailed, Policy: "eso-order-service", Reason: "flapping"},
			want: "find what keeps deleting", mustNot: "restore it by hand now"},
		"restore failed":        {e: Event{Type: PolicyRestoreFailed, Policy: "eso-order-service"}, want: "restore it by hand now"},
		"drift reported":        {e: Event{Type: PolicyDrifted, Policy: "eso-order-service", Action: "none"}, want: "--correct-drift", mustNot: "nothing is broken"},
		"drift corrected":       {e: Event{Type: PolicyDrifted, Policy: "eso-order-service", Action: "corrected"}, want: "change the policy in the IaC, not in Vault"},
		"desired state invalid": {e: Event{Type: DesiredStateInvalid}, want: "fix the file and line"},
		"weakened, no desired state": {e: Event{Type: PolicyWeakened, Policy: "eso-order-service", Rule: RuleSnapshot, Action: "none"},
			want: "give back what the ExternalSecrets named here need", mustNot: "nothing is broken"},
		"weakened, drift corrected": {e: Event{Type: PolicyWeakened, Policy: "eso-order-service", Rule: RuleIaC, Reason: "drift", Action: "corrected"},
			want: "nothing is broken: credchain wrote the IaC's body", mustNot: "give back"},
		"weakened by drift, reported": {e: Event{Type: PolicyWeakened, Policy: "eso-order-service", Rule: RuleIaC, Reason: "drift", Action: "none"},
			want: "--correct-drift", mustNot: "nothing is broken"},
		"weakened by the IaC itself": {e: Event{Type: PolicyWeakened, Policy: "eso-order-service", Rule: RuleIaC, Reason: "desired_body", Action: "none"},
			want: "fix `eso-order-service` in the IaC", mustNot: "nothing is broken"},
		"dangling, the IaC authoritative": {e: Event{Type: DanglingReference, Policy: "eso-order-service", Rule: RuleAuthoritative},
			want: "the IaC no longer defines it", mustNot: "write policy"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := nextStep(tc.e)
			if !strings.Contains(got, tc.want) || (tc.mustNot != "" && strings.Contains(got, tc.mustNot)) {
				t.Errorf("nextStep = %q, want it to contain %q and not %q", got, tc.want, tc.mustNot)
			}
		})
	}
}

// TestSlackSaysWhichRuleDecided (issue 15 item 4): a restore, a drift and a dangling reference say
// which rule decided and from what; a drift lists its rules, escaped.
func TestSlackSaysWhichRuleDecided(t *testing.T) {
	t.Parallel()
	readAt := time.Date(2026, 12, 1, 10, 2, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		e    Event
		want []string
	}{
		"restored from the IaC": {e: Event{Type: PolicyRestored, Policy: "eso-order-service", Rule: RuleIaC,
			SnapshotFrom: &Provenance{Source: RuleIaC, Origin: "vault_policy.eso_order_service (infra/main.tf:12)"}},
			want: []string{"• *decided by:* the IaC's desired body (vault_policy.eso_order_service (infra/main.tf:12))"}},
		"restored from the snapshot": {e: Event{Type: PolicyRestored, Policy: "eso-order-service", Rule: RuleSnapshot,
			SnapshotFrom: &Provenance{Source: "resync", ReadAt: readAt}},
			want: []string{"• *decided by:* the guard's snapshot, read from Vault at 2026-12-01T10:02:00Z"}},
		"restored: an ESO store uses the role": {e: Event{Type: PolicyRestored, Policy: "eso-order-service", Rule: RuleActiveRole,
			SnapshotFrom: &Provenance{Source: "resync", ReadAt: readAt},
			Active:       &ActiveRole{Role: RoleRef{Mount: "kubernetes", Name: "eso"}, Why: ActiveByStore, Store: "SecretStore prod/vault-backend"}},
			want: []string{"• *decided by:* an active role (auth/kubernetes/role/eso is active: ESO store SecretStore prod/vault-backend logs in with it); restored from the guard's snapshot, read from Vault at 2026-12-01T10:02:00Z"}},
		"restored: the role logged in": {e: Event{Type: PolicyRestored, Policy: "eso-order-service", Rule: RuleActiveRole,
			Active: &ActiveRole{Role: RoleRef{Mount: "kubernetes", Name: "eso"}, Why: ActiveByLogin, LastLogin: &readAt}},
			want: []string{"• *decided by:* an active role (auth/kubernetes/role/eso is active: it last logged in at 2026-12-01T10:02:00Z); restored from the guard's snapshot"}},
		"left deleted: only inactive roles": {e: Event{Type: PolicyDeleted, Policy: "eso-order-service", Rule: RuleInactiveRole},
			want: []string{"• *decided by:* inactive roles only (no ESO store uses them, none logged in within the window): the delete was a cleanup"}},
		"left deleted: the IaC is authoritative": {e: Event{Type: DanglingReference, Policy: "eso-order-service", Rule: RuleAuthoritative},
			want: []string{"• *decided by:* the IaC, which is authoritative (--desired-authoritative)"}},
		"drifted": {e: Event{Type: PolicyDrifted, Policy: "eso-order-service", Rule: RuleIaC, Action: "corrected",
			SnapshotFrom: &Provenance{Source: RuleIaC, Origin: "policies/eso-order-service.hcl"},
			Drift: &Drift{Added: []RuleChange{{Path: "<!channel>/*", Vault: "update"}},
				Changed: []RuleChange{{Path: "registry-creds/data/order-service", Desired: "read", Vault: "none"}}}},
			want: []string{"• *decided by:* the IaC's desired body (policies/eso-order-service.hcl)",
				"• *drift:* added `&lt;!channel&gt;/*` (update), changed `registry-creds/data/order-service` (read → none)"}},
		"weakened": {e: Event{Type: PolicyWeakened, Policy: "eso-order-service", Rule: RuleSnapshot,
			SnapshotFrom: &Provenance{Source: "resync", ReadAt: readAt},
			Lost: []LostAccess{{ExternalSecret: ObjectRef{Kind: "ExternalSecret", Namespace: "prod", Name: "<!channel>"},
				Role: RoleRef{Mount: "kubernetes", Name: "external-secrets-operator"}, Path: "registry-creds/data/order-service", Capability: "read"}}},
			want: []string{"• *decided by:* the guard's snapshot, read from Vault at 2026-12-01T10:02:00Z",
				"• *breaks:* ExternalSecret prod/&lt;!channel&gt; (read `registry-creds/data/order-service` as auth/kubernetes/role/external-secrets-operator)"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			text := SlackMessage("", []Event{tc.e}).Text
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("message lacks %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, "<!channel>") {
				t.Errorf("unescaped:\n%s", text)
			}
		})
	}
}

// TestSlackNamesBlastRadiusClusters: a blast radius gathered from several clusters' inventories
// says which cluster each object is in, once per run of objects in the same cluster, so "14
// workloads in 3 clusters" reads as such; a single-cluster radius (no cluster set) reads as before.
func TestSlackNamesBlastRadiusClusters(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		workloads []ObjectRef
		want      string
	}{
		"two clusters": {
			workloads: []ObjectRef{{Kind: "Deployment", Namespace: "prod", Name: "a", Cluster: "eu-1"},
				{Kind: "Deployment", Namespace: "prod", Name: "b", Cluster: "eu-1"}, {Kind: "CronJob", Namespace: "ops", Name: "c", Cluster: "us-2"}},
			want: "\n• *workloads affected:* [eu-1] Deployment prod/a, Deployment prod/b, [us-2] CronJob ops/c\n",
		},
		"no cluster": {
			workloads: []ObjectRef{{Kind: "Deployment", Namespace: "prod", Name: "a"}},
			want:      "\n• *workloads affected:* Deployment prod/a\n",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := event(1)
			e.BlastRadius = &BlastRadius{Workloads: tc.workloads}
			if text := SlackMessage("", []Event{e}).Text; !strings.Contains(text, tc.want) {
				t.Errorf("want %q in:\n%s", tc.want, text)
			}
		})
	}
}
