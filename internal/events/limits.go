package events

import (
	"errors"
	"fmt"
	"time"
)

// Sinks classify their failures with these sentinels (wrapped with %w) so the dispatcher can tell an
// event that will never be accepted from a destination that is down.
var (
	// ErrRejected: the destination refused this event and will refuse it every time (NATS "maximum
	// payload exceeded" or a stream's maximum message size; a Slack 4xx about the message). The
	// dispatcher dead-letters it at once instead of retrying it forever at the head of the outbox.
	ErrRejected = errors.New("rejected by the destination")
	// ErrUnavailable: the destination cannot take any event right now (not connected, timed out, no
	// JetStream responders, Slack 5xx or a revoked webhook). Not the event's fault: such failures do
	// not count against Limits.MaxAttempts, only against Limits.MaxAge, so an outage delays
	// delivery without dead-lettering events one after another.
	ErrUnavailable = errors.New("destination unavailable")
)

// Limits bound each sink's outbox and how long an event may fail before it is set aside in the
// sink's dead-letter bucket (Outbox.DeadLetters), so that neither one undeliverable event nor a long
// outage can stall delivery or fill the state volume. Zero fields take the defaults (SetDefaults).
type Limits struct {
	// MaxPending is the most events a sink's outbox holds; past it the oldest are dead-lettered
	// (reason "overflow"). Defaults to 10000: a day of one restore a minute, or a burst of denials
	// in a cluster-wide incident, with room to spare.
	MaxPending int
	// MaxPendingBytes is the most bytes of encoded events a sink's outbox holds, as MaxPending.
	// Defaults to 32 MiB (two sinks' outboxes and dead letters stay far below the guard's 1 GiB
	// state volume). Must be at least MaxEventBytes.
	MaxPendingBytes int64
	// MaxAttempts is how many failed deliveries of one event, other than ErrUnavailable ones, the
	// dispatcher tries before dead-lettering it (reason "attempts"). Counted since the process
	// started. Defaults to 50: with the backoff capped at 30s, about 25 minutes of failing while
	// the destination is up.
	MaxAttempts int
	// MaxAge is how long after its time an event may keep failing, for any reason, before it is
	// dead-lettered (reason "age"). Defaults to 24h: a NATS or Slack outage shorter than a day
	// loses nothing; after that the oldest events move aside and the newest are delivered first
	// when the destination returns.
	MaxAge time.Duration
	// MaxDeadLetters is the most events a sink's dead-letter bucket keeps; past it the oldest dead
	// letters are deleted (they were counted and logged when set aside). Defaults to 1000.
	MaxDeadLetters int
	// MaxDeadLetterBytes is the most bytes the dead-letter bucket keeps, as MaxDeadLetters.
	// Defaults to 8 MiB.
	MaxDeadLetterBytes int64
}

// Default limits (see Limits).
const (
	DefaultMaxPending         = 10000
	DefaultMaxPendingBytes    = 32 << 20
	DefaultMaxAttempts        = 50
	DefaultMaxAge             = 24 * time.Hour
	DefaultMaxDeadLetters     = 1000
	DefaultMaxDeadLetterBytes = 8 << 20
)

// SetDefaults fills zero fields.
func (l *Limits) SetDefaults() {
	if l.MaxPending == 0 {
		l.MaxPending = DefaultMaxPending
	}
	if l.MaxPendingBytes == 0 {
		l.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if l.MaxAttempts == 0 {
		l.MaxAttempts = DefaultMaxAttempts
	}
	if l.MaxAge == 0 {
		l.MaxAge = DefaultMaxAge
	}
	if l.MaxDeadLetters == 0 {
		l.MaxDeadLetters = DefaultMaxDeadLetters
	}
	if l.MaxDeadLetterBytes == 0 {
		l.MaxDeadLetterBytes = DefaultMaxDeadLetterBytes
	}
}

// Validate reports every limit that cannot work (after SetDefaults).
func (l Limits) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max pending events", int64(l.MaxPending)}, {"max attempts", int64(l.MaxAttempts)}, {"max dead letters", int64(l.MaxDeadLetters)},
		{"max age", int64(l.MaxAge)}, {"max dead-letter bytes", l.MaxDeadLetterBytes},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("event %s: must not be negative", f.name))
		}
	}
	if l.MaxPendingBytes < MaxEventBytes {
		errs = append(errs, fmt.Errorf("event max pending bytes %d: must be at least %d, the largest event", l.MaxPendingBytes, MaxEventBytes))
	}
	return errors.Join(errs...)
}

// Dead-letter reasons: the label values of credchain_events_dead_lettered_total.
const (
	DeadRejected = "rejected" // the sink refused the event (ErrRejected)
	DeadAttempts = "attempts" // MaxAttempts failed deliveries
	DeadAge      = "age"      // still failing MaxAge after the event's time
	DeadOverflow = "overflow" // the outbox was full (MaxPending, MaxPendingBytes)
	DeadCorrupt  = "corrupt"  // the stored entry could not be decoded
)
