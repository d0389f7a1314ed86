package events

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// SlackConfig configures the Slack sink. The incoming-webhook URL is a secret: it is read from a
// file (a mounted Secret) or the environment, never from a flag value visible in `ps`.
type SlackConfig struct {
	// WebhookURLFile holds the incoming-webhook URL.
	WebhookURLFile string
	// WebhookURLEnv names the environment variable holding it when no file is given.
	// Defaults to CREDCHAIN_SLACK_WEBHOOK_URL.
	WebhookURLEnv string
	// MinInterval between posts (Slack allows about one message per second per webhook).
	// Defaults to 1s.
	MinInterval time.Duration
	// Cluster names this installation in messages.
	Cluster string
}

// Slack posts events to an incoming webhook, merging whatever is pending into one message, at most
// one post per MinInterval; 429 Retry-After and 5xx are retried by the dispatcher from the outbox.
type Slack struct {
	url, cluster string
	interval     time.Duration
	client       *http.Client

	mu   sync.Mutex
	last time.Time
}

var _ BatchSink = (*Slack)(nil)

// ErrNoSlackURL is returned when neither the file nor the environment variable gives a URL.
var ErrNoSlackURL = errors.New("no Slack webhook URL: set --slack-webhook-file or CREDCHAIN_SLACK_WEBHOOK_URL")

// NewSlack reads the webhook URL and returns the sink.
func NewSlack(cfg SlackConfig) (*Slack, error) {
	if cfg.WebhookURLEnv == "" {
		cfg.WebhookURLEnv = "CREDCHAIN_SLACK_WEBHOOK_URL"
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = time.Second
	}
	url := os.Getenv(cfg.WebhookURLEnv)
	if cfg.WebhookURLFile != "" {
		b, err := os.ReadFile(cfg.WebhookURLFile)
		if err != nil {
			return nil, fmt.Errorf("reading Slack webhook URL: %w", err)
		}
		url = strings.TrimSpace(string(b))
	}
	if url == "" {
		return nil, ErrNoSlackURL
	}
	return &Slack{url: url, cluster: cfg.Cluster, interval: cfg.MinInterval, client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Name implements Sink.
func (s *Slack) Name() string { return "slack" }

// Send implements Sink.
func (s *Slack) Send(ctx context.Context, e Event) error { return s.SendBatch(ctx, []Event{e}) }

// MaxBatch implements BatchSink: a burst of up to 20 events becomes one message.
func (s *Slack) MaxBatch() int { return 20 }

// SendBatch implements BatchSink.
func (s *Slack) SendBatch(ctx context.Context, events []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wait := time.Until(s.last.Add(s.interval)); wait > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	s.last = time.Now()
	err := slack.PostWebhookCustomHTTPContext(ctx, s.url, s.client, SlackMessage(s.cluster, events))
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &RetryAfterError{After: rl.RetryAfter, Err: err}
	}
	if err != nil {
		return fmt.Errorf("posting to Slack: %w", err)
	}
	return nil
}

// RetryAfterError asks the dispatcher to wait at least After before the next attempt.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.After) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// SlackMessage renders events as one message a human can act on: what happened, who and from where,
// what credchain did, what would have broken, and the next step.
func SlackMessage(cluster string, events []Event) *slack.WebhookMessage {
	var b strings.Builder
	if len(events) > 1 {
		fmt.Fprintf(&b, "*credchain: %d events*", len(events))
		if cluster != "" {
			fmt.Fprintf(&b, " in `%s`", cluster)
		}
		b.WriteString("\n\n")
	}
	for i, e := range events {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "%s *%s*", icon(e.Type), e.Type)
		if e.Policy != "" {
			fmt.Fprintf(&b, " — policy `%s`", e.Policy)
		}
		if e.Object != "" {
			fmt.Fprintf(&b, " — `%s`", e.Object)
		}
		if e.Vault != "" {
			fmt.Fprintf(&b, " on %s", e.Vault)
		}
		if e.Namespace != "" {
			fmt.Fprintf(&b, " (namespace %s)", e.Namespace)
		}
		fmt.Fprintf(&b, "\n%s", e.Message)
		if e.Actor != nil {
			fmt.Fprintf(&b, "\n• *who:* %s", e.Actor.String())
		}
		if len(e.Roles) > 0 {
			parts := make([]string, len(e.Roles))
			for i, r := range e.Roles {
				parts[i] = "auth/" + r.Mount + "/role/" + r.Name
			}
			fmt.Fprintf(&b, "\n• *would have broken:* logins with %s", strings.Join(parts, ", "))
		}
		if br := e.BlastRadius; br != nil {
			for _, l := range []struct {
				what string
				refs []ObjectRef
			}{{"stores", br.Stores}, {"ExternalSecrets", br.ExternalSecrets}, {"workloads", br.Workloads}} {
				if len(l.refs) == 0 {
					continue
				}
				parts := make([]string, len(l.refs))
				for i, r := range l.refs {
					parts[i] = r.String()
				}
				fmt.Fprintf(&b, "\n• *%s affected:* %s", l.what, strings.Join(parts, ", "))
			}
		}
		if e.Error != "" {
			fmt.Fprintf(&b, "\n• *error:* %s", e.Error)
		}
		fmt.Fprintf(&b, "\n• *next:* %s", nextStep(e))
		fmt.Fprintf(&b, "\n_credchain event %s_", e.ID)
	}
	return &slack.WebhookMessage{Username: "credchain", IconEmoji: ":link:", Text: b.String()}
}

func icon(t string) string {
	switch t {
	case PolicyRestored:
		return ":white_check_mark:"
	case PolicyRestoreFailed, AuditDisabled:
		return ":rotating_light:"
	case DanglingReference:
		return ":warning:"
	}
	return ":information_source:"
}

func nextStep(e Event) string {
	switch e.Type {
	case PolicyRestored:
		return "nothing is broken; ask " + e.Actor.String() + " why the policy was deleted, and keep it in IaC so cleanups see it is in use"
	case PolicyRestoreFailed:
		return fmt.Sprintf("restore it by hand now (`vault policy write %s <file>`) — ESO syncs with these roles fail until then", e.Policy)
	case DanglingReference:
		return fmt.Sprintf("write policy `%s` or remove it from the roles", e.Policy)
	case AuditDisabled:
		return "re-enable the audit device that feeds credchain (`vault audit enable socket ...`) and find out who disabled it"
	case PolicyDeleted:
		return "nothing, unless the policy was still meant to be used"
	}
	return "see the credchain logs"
}
