package events

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// OpenDelivery opens the outbox file at path (creating it and its directory, mode 0600/0700) and
// builds the configured sinks behind a Dispatcher that keeps its outboxes there. It is how every
// component gets its delivery: the Dispatcher owns the file, and close releases the sinks, then the
// file. A second process holding the file is an error after 2 s, not a hang.
func OpenDelivery(path string, c DeliveryConfig, log logr.Logger, reg prometheus.Registerer) (d *Dispatcher, close func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating the event outbox directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("opening event outbox %s: %w", path, err)
	}
	d, closeSinks, err := NewDelivery(db, c, log, reg)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return d, func() { closeSinks(); db.Close() }, nil
}
