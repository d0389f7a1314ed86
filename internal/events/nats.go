package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSConfig configures the NATS sink.
type NATSConfig struct {
	// URLs of the NATS servers (comma-separated in one string works too).
	URLs []string
	// CredsFile is a NATS credentials file (JWT + seed).
	CredsFile string
	// NkeySeedFile is an nkey seed file (an alternative to CredsFile).
	NkeySeedFile string
	// CAFile, CertFile, KeyFile configure TLS (server CA; client certificate for mTLS).
	CAFile, CertFile, KeyFile string
	// Cluster names this installation in subjects: credchain.<cluster>.<event type>. Defaults to "default".
	Cluster string
	// CreateStream creates (or updates) the stream Stream covering credchain.> when none covers our
	// subjects. Off by default: streams are usually owned by whoever runs NATS.
	CreateStream bool
	// Stream is the stream name CreateStream uses. Defaults to "CREDCHAIN".
	Stream string
}

// NATS publishes events to credchain.<cluster>.<type>. When a JetStream stream covers the subject
// it publishes with the event ID as Nats-Msg-Id and succeeds only on the PubAck (the stream drops a
// re-sent duplicate within its duplicate window); otherwise it is a core publish confirmed by
// Flush — at-least-once, since a flush that times out is retried.
type NATS struct {
	cfg NATSConfig
	nc  *nats.Conn
	js  jetstream.JetStream
	log logr.Logger

	mu      sync.Mutex
	covered map[string]bool // subject → a stream covers it (cached until an error)
}

var _ Sink = (*NATS)(nil)

// NewNATS connects (retrying in the background if the servers are down: events wait in the outbox).
func NewNATS(cfg NATSConfig, log logr.Logger) (*NATS, error) {
	if cfg.Cluster == "" {
		cfg.Cluster = "default"
	}
	if cfg.Stream == "" {
		cfg.Stream = "CREDCHAIN"
	}
	nc, err := Dial(cfg, "credchain")
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats jetstream: %w", err)
	}
	return &NATS{cfg: cfg, nc: nc, js: js, log: log, covered: map[string]bool{}}, nil
}

// Dial connects to cfg's NATS servers as name (the connection name the servers show), with cfg's
// credentials and TLS, retrying in the background when they are down and reconnecting forever:
// the events' NATS sink, the guard's shared state and the cluster inventories each hold one
// connection (each may use its own NATS user).
func Dial(cfg NATSConfig, name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond)}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NkeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	return nc, nil
}

// Name implements Sink.
func (n *NATS) Name() string { return "nats" }

// Close drains nothing (the outbox holds what is pending) and closes the connection.
func (n *NATS) Close() { n.nc.Close() }

// Subject is where an event of type t goes.
func (n *NATS) Subject(t string) string { return "credchain." + n.cfg.Cluster + "." + t }

// Send implements Sink.
func (n *NATS) Send(ctx context.Context, e Event) error {
	if !n.nc.IsConnected() {
		// Publishing now would only buffer in the client; the outbox is the buffer.
		return fmt.Errorf("nats: %w: %w", ErrUnavailable, nats.ErrConnectionClosed)
	}
	subj := n.Subject(e.Type)
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("internal error: encoding event: %w", err)
	}
	covered, err := n.streamCovers(ctx, subj)
	if err != nil {
		return natsError(err)
	}
	if covered {
		if _, err := n.js.Publish(ctx, subj, data, jetstream.WithMsgID(e.ID)); err != nil {
			n.forget(subj)
			return fmt.Errorf("nats jetstream publish of %d bytes: %w", len(data), natsError(err))
		}
		return nil
	}
	if err := n.nc.Publish(subj, data); err != nil {
		return fmt.Errorf("nats publish of %d bytes: %w", len(data), natsError(err))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	if err := n.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("nats flush: %w", natsError(err))
	}
	return nil
}

// natsError classifies a NATS failure for the dispatcher: an event over the server's max_payload
// (which the client checks before sending, against the size the server announced) or over the
// stream's max message size is refused every time (ErrRejected); a lost connection, a timeout or
// missing JetStream responders is the server's state, not the event's (ErrUnavailable).
func natsError(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrMaxPayload),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum:
		return fmt.Errorf("%w: %w", ErrRejected, err)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrReconnectBufExceeded):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func (n *NATS) forget(subj string) {
	n.mu.Lock()
	delete(n.covered, subj)
	n.mu.Unlock()
}

func (n *NATS) streamCovers(ctx context.Context, subj string) (bool, error) {
	n.mu.Lock()
	c, ok := n.covered[subj]
	n.mu.Unlock()
	if ok {
		return c, nil
	}
	_, err := n.js.StreamNameBySubject(ctx, subj)
	switch {
	case err == nil:
		c = true
	case errors.Is(err, jetstream.ErrStreamNotFound) && n.cfg.CreateStream:
		if _, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: n.cfg.Stream, Subjects: []string{"credchain.>"}, Storage: jetstream.FileStorage,
			// Long enough to cover a retry after a lost PubAck during an outage.
			Duplicates: time.Hour,
		}); err != nil {
			return false, fmt.Errorf("nats: creating stream %s: %w", n.cfg.Stream, err)
		}
		n.log.Info("created NATS stream", "stream", n.cfg.Stream, "subjects", "credchain.>")
		c = true
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		c = false
	default:
		return false, fmt.Errorf("nats: looking up stream for %s: %w", subj, err)
	}
	n.mu.Lock()
	n.covered[subj] = c
	n.mu.Unlock()
	return c, nil
}
