package events

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

// Slack posts events to an incoming webhook, merging whatever is pending into one message (as many
// as fit, see slackMaxText), at most one post per MinInterval; 429 Retry-After and 5xx are retried by
// the dispatcher from the outbox, and a message Slack refuses (another 4xx) is ErrRejected.
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
func (s *Slack) Send(ctx context.Context, e Event) error {
	_, err := s.SendBatch(ctx, []Event{e})
	return err
}

// MaxBatch implements BatchSink: a burst of up to 20 events becomes one message.
func (s *Slack) MaxBatch() int { return 20 }

// SendBatch implements BatchSink: it posts the leading events that fit in one message.
func (s *Slack) SendBatch(ctx context.Context, events []Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wait := time.Until(s.last.Add(s.interval)); wait > 0 {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
	}
	s.last = time.Now()
	msg, n := slackMessage(s.cluster, events, slackMaxText)
	if err := slackError(slack.PostWebhookCustomHTTPContext(ctx, s.url, s.client, msg)); err != nil {
		return 0, err
	}
	return n, nil
}

// slackError classifies a failed post for the dispatcher, and keeps the webhook URL (a secret:
// whoever holds it can post to the channel) out of the error, which is logged.
func slackError(err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &RetryAfterError{After: rl.RetryAfter, Err: fmt.Errorf("posting to Slack: %w", err)}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		switch {
		case sc.Code >= 500, sc.Code == http.StatusRequestTimeout, sc.Code == http.StatusTooManyRequests:
			return fmt.Errorf("posting to Slack: %w: %w", ErrUnavailable, err)
		case sc.Code == http.StatusUnauthorized, sc.Code == http.StatusForbidden, sc.Code == http.StatusNotFound, sc.Code == http.StatusGone:
			// The webhook is revoked, its channel archived or the URL wrong: every message fails
			// alike, through no fault of the event. Retried (bounded by MaxAge and the outbox's
			// size) so that what queued while someone fixes the URL is delivered after.
			return fmt.Errorf("posting to Slack: the webhook is unusable: %w: %w", ErrUnavailable, err)
		case sc.Code >= 400:
			return fmt.Errorf("posting to Slack: %w: %w", ErrRejected, err)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// *url.Error's text is "Post \"<the webhook URL>\": ..."; keep only the cause.
		return fmt.Errorf("posting to Slack: %w: %w", ErrUnavailable, ue.Err)
	}
	return fmt.Errorf("posting to Slack: %w", err)
}

// RetryAfterError asks the dispatcher to wait at least After before the next attempt. Like
// ErrUnavailable, it does not count against Limits.MaxAttempts.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.After) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// slackMaxText bounds one message's text, in bytes (at least its characters): Slack truncates text
// beyond 40,000 characters. One event's text is at most about 20,000 bytes (every value is
// shortened below, and escaping at most quintuples it), so a message always carries at least one.
const slackMaxText = 38000

// Display caps, in runes, for values shown in Slack (before escaping). The event on NATS and in the
// log keeps them whole (up to Cap's caps); Slack is for a human to see what happened and act.
const (
	slackNameRunes    = 100 // policy, role, object names, reason, cluster
	slackPathRunes    = 200 // Vault address, audit device path, an actor
	slackListRunes    = 300 // one "affected" or "would have broken" line
	slackMessageRunes = 600 // the sentence; shortened in the middle, keeping the object and the fix
	slackErrorRunes   = 300
)

// SlackMessage renders events as one message a human can act on: what happened, who and from where,
// what credchain did, what would have broken, and the next step. Every value from an event is
// escaped as Slack requires (& < >), so a name like <!channel> or <https://evil|login> is shown,
// never acted on.
func SlackMessage(cluster string, events []Event) *slack.WebhookMessage {
	msg, _ := slackMessage(cluster, events, math.MaxInt)
	return msg
}

// slackMessage renders the leading events whose text fits budget bytes (at least one) and returns
// how many it took.
func slackMessage(cluster string, events []Event, budget int) (*slack.WebhookMessage, int) {
	header := func(n int) string {
		if n < 2 {
			return ""
		}
		h := fmt.Sprintf("*credchain: %d events*", n)
		if cluster != "" {
			h += " in `" + esc(clip(cluster, slackNameRunes)) + "`"
		}
		return h + "\n\n"
	}
	var blocks []string
	size := len(header(len(events)))
	for _, e := range events {
		b := slackBlock(e)
		if len(blocks) > 0 && size+2+len(b) > budget {
			break
		}
		blocks = append(blocks, b)
		size += 2 + len(b)
	}
	text := header(len(blocks)) + strings.Join(blocks, "\n\n")
	return &slack.WebhookMessage{Username: "credchain", IconEmoji: ":link:", Text: text}, len(blocks)
}

// slackBlock is one event's part of a message: a headline (slackHeadline), the sentence, then a
// bullet for each of reason, who, what would have broken or is affected, error and next step.
func slackBlock(e Event) string {
	var b strings.Builder
	b.WriteString(slackHeadline(e))
	fmt.Fprintf(&b, "\n%s", esc(shorten(e.Message, slackMessageRunes)))
	if e.Reason != "" {
		fmt.Fprintf(&b, "\n• *reason:* `%s`", esc(clip(e.Reason, slackNameRunes)))
	}
	if e.Actor != nil {
		fmt.Fprintf(&b, "\n• *who:* %s", esc(clip(slackWho(e), slackPathRunes)))
	}
	if r := slackRule(e); r != "" {
		fmt.Fprintf(&b, "\n• *decided by:* %s", esc(clip(r, slackPathRunes)))
	}
	b.WriteString(slackDrift(e))
	b.WriteString(slackLost(e))
	b.WriteString(slackAffected(e))
	if e.Error != "" {
		fmt.Fprintf(&b, "\n• *error:* %s", esc(clip(e.Error, slackErrorRunes)))
	}
	fmt.Fprintf(&b, "\n• *next:* %s", esc(nextStep(e)))
	for _, c := range e.Explain {
		fmt.Fprintf(&b, "\n• *diagnose:* `%s`", esc(c))
	}
	fmt.Fprintf(&b, "\n_credchain event %s_", esc(clip(e.ID, slackNameRunes)))
	return b.String()
}

// slackHeadline is a block's first line, escaped: the event's type and what it concerns (policy,
// object, workload, Vault and its namespace).
func slackHeadline(e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s *%s*", icon(e.Type), esc(clip(e.Type, slackNameRunes)))
	if e.Policy != "" {
		fmt.Fprintf(&b, " — policy `%s`", esc(clip(e.Policy, slackNameRunes)))
	}
	if e.Object != "" {
		fmt.Fprintf(&b, " — `%s`", esc(clip(e.Object, slackPathRunes)))
	}
	if w := e.Workload; w != nil {
		b.WriteString(" — ")
		if w.Kind != "" {
			b.WriteString(esc(clip(w.Kind, slackNameRunes)) + " ")
		}
		name := clip(w.Name, slackNameRunes)
		if w.Namespace != "" {
			name = clip(w.Namespace, slackNameRunes) + "/" + name
		}
		fmt.Fprintf(&b, "`%s`", esc(name))
	}
	if e.Vault != "" {
		fmt.Fprintf(&b, " on %s", esc(clip(e.Vault, slackPathRunes)))
	}
	if e.Namespace != "" {
		fmt.Fprintf(&b, " (namespace %s)", esc(clip(e.Namespace, slackPathRunes)))
	}
	return b.String()
}

// slackWho names e's actor (not nil), unescaped. For an admission event that is the Kubernetes
// user and what they tried: there is no entity or address.
func slackWho(e Event) string {
	a := e.Actor
	if e.Type == AdmissionDenied || e.Type == AdmissionWarned {
		who := a.DisplayName
		if a.Operation != "" {
			who += " (" + a.Operation + ")"
		}
		return who
	}
	who := a.String()
	if a.Source == ActorFromAuditEntry {
		who += ", as Vault's audit entry names them"
	}
	return who
}

// slackRule says, unescaped, which of the guard's rules decided (Event.Rule) and from what: ""
// for an event no rule decided.
func slackRule(e Event) string {
	origin := ""
	if p := e.SnapshotFrom; p != nil && p.Origin != "" {
		origin = " (" + p.Origin + ")"
	}
	switch e.Rule {
	case RuleIaC:
		return "the IaC's desired body" + origin
	case RuleAuthoritative:
		return "the IaC, which is authoritative (--desired-authoritative) and does not define the policy: its delete was meant"
	case RuleSnapshot:
		return snapshotRead(e)
	case RuleActiveRole:
		why := "an active role"
		if e.Active != nil {
			why += " (" + e.Active.String() + ")"
		}
		if e.Type == PolicyRestored {
			why += "; restored from " + snapshotRead(e)
		}
		return why
	case RuleInactiveRole:
		return "inactive roles only (no ESO store uses them, none logged in within the window): the delete was a cleanup"
	}
	return e.Rule
}

// snapshotRead names the guard's snapshot an event's body came from, with when it was read.
func snapshotRead(e Event) string {
	if p := e.SnapshotFrom; p != nil && !p.ReadAt.IsZero() {
		return "the guard's snapshot, read from Vault at " + p.ReadAt.UTC().Format(time.RFC3339)
	}
	return "the guard's snapshot"
}

// slackDrift is a block's bullet, escaped, of a drift's rule changes: "" without a drift.
func slackDrift(e Event) string {
	d := e.Drift
	if d == nil {
		return ""
	}
	var parts []string
	for _, l := range []struct {
		what string
		cs   []RuleChange
	}{{"added", d.Added}, {"removed", d.Removed}, {"changed", d.Changed}} {
		for _, c := range l.cs {
			p := l.what + " `" + clip(c.Path, slackNameRunes) + "`"
			switch {
			case c.Desired == "":
				p += " (" + clip(c.Vault, slackNameRunes) + ")"
			case c.Vault == "":
				p += " (" + clip(c.Desired, slackNameRunes) + ")"
			default:
				p += " (" + clip(c.Desired, slackNameRunes) + " → " + clip(c.Vault, slackNameRunes) + ")"
			}
			parts = append(parts, p)
		}
	}
	return "\n• *drift:* " + esc(clipList(parts))
}

// slackLost is a block's bullet, escaped, of what a weakening write took from ESO: "" without.
func slackLost(e Event) string {
	if len(e.Lost) == 0 {
		return ""
	}
	parts := make([]string, len(e.Lost))
	for i, l := range e.Lost {
		es := ObjectRef{Kind: clip(l.ExternalSecret.Kind, slackNameRunes), Namespace: clip(l.ExternalSecret.Namespace, slackNameRunes),
			Name: clip(l.ExternalSecret.Name, slackNameRunes)}
		parts[i] = fmt.Sprintf("%s (%s `%s` as auth/%s/role/%s)", es, clip(l.Capability, slackNameRunes), clip(l.Path, slackNameRunes),
			clip(l.Role.Mount, slackNameRunes), clip(l.Role.Name, slackNameRunes))
	}
	return "\n• *breaks:* " + esc(clipList(parts))
}

// slackAffected is a block's bullets, escaped, of the roles whose logins would have broken and of
// the blast radius's stores, ExternalSecrets and workloads: "" when the event names none.
func slackAffected(e Event) string {
	var b strings.Builder
	if len(e.Roles) > 0 {
		parts := make([]string, len(e.Roles))
		for i, r := range e.Roles {
			parts[i] = "auth/" + clip(r.Mount, slackNameRunes) + "/role/" + clip(r.Name, slackNameRunes)
		}
		fmt.Fprintf(&b, "\n• *would have broken:* logins with %s", esc(clipList(parts)))
	}
	if br := e.BlastRadius; br != nil {
		for _, l := range []struct {
			what string
			refs []ObjectRef
		}{{"stores", br.Stores}, {"ExternalSecrets", br.ExternalSecrets}, {"workloads", br.Workloads}} {
			if len(l.refs) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n• *%s affected:* %s", l.what, esc(clipList(slackRefs(l.refs))))
		}
	}
	return b.String()
}

// slackRefs renders blast-radius refs, unescaped. Refs from several clusters' inventories name
// their cluster before the first of each run in that cluster ("[eu-1] Deployment prod/a,
// Deployment prod/b, [us-2] CronJob ops/c"): the guard lists them grouped by cluster.
func slackRefs(refs []ObjectRef) []string {
	parts := make([]string, len(refs))
	cluster := ""
	for i, r := range refs {
		parts[i] = ObjectRef{Kind: clip(r.Kind, slackNameRunes), Namespace: clip(r.Namespace, slackNameRunes), Name: clip(r.Name, slackNameRunes)}.String()
		if r.Cluster != "" && r.Cluster != cluster {
			parts[i] = "[" + clip(r.Cluster, slackNameRunes) + "] " + parts[i]
		}
		cluster = r.Cluster
	}
	return parts
}

// slackEscaper applies Slack's escaping rules for message text: these three characters only.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// esc escapes text for Slack: without it, <!channel> in a pull-secret name notifies the whole
// channel and <https://evil|login> renders a link whose target is hidden.
func esc(s string) string { return slackEscaper.Replace(s) }

// clip shortens s to n runes, the last being "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + Ellipsis
}

// shorten shortens s to about n runes by cutting its middle: a denial names the object first and
// says what to do last, and both matter to the reader.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	head, tail := n*3/5, n*2/5-3
	return string(r[:head]) + " … " + string(r[len(r)-tail:])
}

// clipList joins parts, naming how many more there are when they do not fit slackListRunes.
func clipList(parts []string) string {
	out := ""
	for i, p := range parts {
		next := out
		if i > 0 {
			next += ", "
		}
		next += p
		if utf8.RuneCountInString(next) > slackListRunes {
			if i == 0 {
				return clip(p, slackListRunes)
			}
			return fmt.Sprintf("%s and %d more", out, len(parts)-i)
		}
		out = next
	}
	return out
}

func icon(t string) string {
	switch t {
	case PolicyRestored:
		return ":white_check_mark:"
	case PolicyRestoreFailed, AuditDisabled, AuditGuardOnly, AuthMountDisabled, AuthMountMoved:
		return ":rotating_light:"
	case PolicyWeakened:
		return ":rotating_light:"
	case DanglingReference, AdmissionWarned, AuthMountUnreadable, PolicyDrifted, DesiredStateInvalid:
		return ":warning:"
	case AdmissionDenied:
		return ":no_entry:"
	}
	return ":information_source:"
}

// nextStep is the advice for e, unescaped (SlackMessage escapes it, with the names it contains).
func nextStep(e Event) string {
	policy := clip(e.Policy, slackNameRunes)
	switch e.Type {
	case PolicyRestored:
		return "nothing is broken; ask " + clip(e.Actor.String(), slackPathRunes) + " why the policy was deleted, and keep it in IaC so cleanups see it is in use"
	case PolicyRestoreFailed:
		switch e.Reason {
		case "flapping":
			return fmt.Sprintf("find what keeps deleting policy `%s` (an IaC run or a reconciler): the guard stopped restoring it; writing it again resumes guarding", policy)
		case "superseded":
			return fmt.Sprintf("the guard will not write back an older body of `%s` than Vault last logged: write the intended body (`vault policy write %s <file>`)", policy, policy)
		}
		return fmt.Sprintf("restore it by hand now (`vault policy write %s <file>`) — ESO syncs with these roles fail until then", policy)
	case DanglingReference:
		if e.Rule == RuleAuthoritative {
			return fmt.Sprintf("remove policy `%s` from the roles (the IaC no longer defines it), or define it in the IaC again", policy)
		}
		return fmt.Sprintf("write policy `%s` or remove it from the roles", policy)
	case PolicyDrifted:
		if e.Action == "corrected" {
			return fmt.Sprintf("nothing is broken: credchain wrote the IaC's body of `%s` back; change the policy in the IaC, not in Vault", policy)
		}
		return fmt.Sprintf("change `%s` in the IaC if the new rules are wanted, else write the IaC's body back (or run the guard with --correct-drift)", policy)
	case PolicyWeakened:
		switch {
		case e.Action == "corrected":
			return fmt.Sprintf("nothing is broken: credchain wrote the IaC's body of `%s` back; change the policy in the IaC, not in Vault", policy)
		case e.Reason == "desired_body":
			return fmt.Sprintf("the IaC's own body of `%s` takes this away: fix `%s` in the IaC and apply it, or move the ExternalSecrets named here to paths it grants", policy, policy)
		case e.Rule == RuleIaC:
			return fmt.Sprintf("write the IaC's body of `%s` back (or run the guard with --correct-drift); change it in the IaC if the new rules are wanted", policy)
		}
		return fmt.Sprintf("give back what the ExternalSecrets named here need (`vault policy write %s <file>`): their next sync fails until then; keep the policy in IaC (--desired-policies) so the guard can correct it", policy)
	case DesiredStateInvalid:
		return "fix the file and line the error names: until the directory loads, credchain acts on the last desired state that did"
	case AuditDisabled:
		return "find out who disabled it and re-enable it with its original options — first make sure a file audit device is enabled too: never leave credchain's socket as Vault's only audit device (a stalled socket then stalls Vault)"
	case AuditGuardOnly:
		return "enable a file audit device now (`vault audit enable file file_path=/vault/audit/audit.log`), before anything else: while only socket devices record, Vault refuses requests whenever credchain is down or unreachable"
	case AuthMountDisabled:
		return "enable the mount again at the same path, configure it and write the roles named here with their policies; the ESO stores using them sync again once they can log in"
	case AuthMountMoved:
		return "point the ESO stores using the old path at the new one (`auth.kubernetes.mountPath`), or move the mount back (`vault auth move`)"
	case AuthMountUnreadable:
		return "grant the guard list on the mount's role path and read on its roles (manifests/vault/auditguard-policy.hcl); until then deletes of policies only its roles reference are not restored"
	case PolicyDeleted:
		return "nothing, unless something credchain does not check still grants the policy (another auth method, an identity group, a token role): the message names the Kubernetes auth mounts it checked"
	case AdmissionDenied:
		return "fix what the message names, then retry the change (the full message is in the event on NATS and in the webhook's log)"
	case AdmissionWarned:
		return "nothing was blocked; fix what the message names before it becomes a denial (the full message is in the event on NATS and in the webhook's log)"
	}
	return "see the credchain logs"
}
