package events

import (
	"os"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// DeliveryConfig is the event delivery both components configure with the same flags.
type DeliveryConfig struct {
	NATS NATSConfig
	// SlackWebhookFile holds a Slack incoming-webhook URL; CREDCHAIN_SLACK_WEBHOOK_URL works too.
	SlackWebhookFile string
}

// Enabled reports whether any sink beyond the log is configured.
func (c DeliveryConfig) Enabled() bool {
	return len(c.NATS.URLs) > 0 || c.SlackWebhookFile != "" || os.Getenv("CREDCHAIN_SLACK_WEBHOOK_URL") != ""
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
	d, err := NewDispatcher(db, log, reg, sinks...)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return d, closeAll, nil
}
