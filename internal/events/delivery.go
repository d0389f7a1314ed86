package events

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// DeliveryConfig is the event delivery both components configure with the same flags.
type DeliveryConfig struct {
	NATS NATSConfig
	// SlackWebhookFile holds a Slack incoming-webhook URL; CREDCHAIN_SLACK_WEBHOOK_URL works too.
	SlackWebhookFile string
	// Limits bound each sink's outbox and dead letters and how long an event may fail (see
	// Limits for each default).
	Limits Limits
}

// SetDefaults fills zero fields: the cluster name defaults to "default", the limits to theirs.
func (c *DeliveryConfig) SetDefaults() {
	if c.NATS.Cluster == "" {
		c.NATS.Cluster = "default"
	}
	c.Limits.SetDefaults()
}

// Validate reports every invalid field, for both components' flags.
func (c *DeliveryConfig) Validate() error {
	var errs []error
	if strings.ContainsAny(c.NATS.Cluster, ".*> \t") {
		errs = append(errs, fmt.Errorf("--cluster %q: must be one NATS subject token (no dots, wildcards or spaces)", c.NATS.Cluster))
	}
	if c.NATS.CredsFile != "" && c.NATS.NkeySeedFile != "" {
		errs = append(errs, errors.New("--nats-creds and --nats-nkey-seed: give one"))
	}
	lim := c.Limits
	lim.SetDefaults()
	if err := lim.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Enabled reports whether any sink beyond the log is configured.
func (c DeliveryConfig) Enabled() bool { return c.Sinks() > 0 }

// Sinks is how many sinks beyond the log are configured (NATS, Slack), each with its own outbox
// and dead letters: what the state volume and memory bounds scale with.
func (c DeliveryConfig) Sinks() int {
	n := 0
	if len(c.NATS.URLs) > 0 {
		n++
	}
	if c.SlackWebhookFile != "" || os.Getenv("CREDCHAIN_SLACK_WEBHOOK_URL") != "" {
		n++
	}
	return n
}

// NewDelivery builds the configured sinks behind a Dispatcher whose outboxes live in db. The
// returned close func releases the sinks' connections.
func NewDelivery(db *bolt.DB, c DeliveryConfig, log logr.Logger, reg prometheus.Registerer) (*Dispatcher, func(), error) {
	var sinks []Sink
	closeAll := func() {
		for _, s := range sinks {
			if n, ok := s.(*NATS); ok {
				n.Close()
			}
		}
	}
	if len(c.NATS.URLs) > 0 {
		n, err := NewNATS(c.NATS, log.WithName("nats"))
		if err != nil {
			return nil, nil, err
		}
		sinks = append(sinks, n)
	}
	if c.SlackWebhookFile != "" || os.Getenv("CREDCHAIN_SLACK_WEBHOOK_URL") != "" {
		s, err := NewSlack(SlackConfig{WebhookURLFile: c.SlackWebhookFile, Cluster: c.NATS.Cluster})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		sinks = append(sinks, s)
	}
	d, err := NewDispatcherWithLimits(db, log, reg, c.Limits, sinks...)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return d, closeAll, nil
}
