package events

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MoveOutboxes moves every sink's outbox and dead letters from a component's state store (where
// credchain's audit guard kept them before OpenDelivery gave every component its own file) into
// the outbox file at path, so an upgrade delivers what was still pending. It copies first and
// deletes after: a crash between the two leaves the copy in place, and the next call, finding the
// bucket at path already, only deletes the old one — nothing is lost or delivered twice. It does
// nothing when from holds no outbox.
func MoveOutboxes(from *bolt.DB, path string) (moved int, err error) {
	var names [][]byte
	if err := from.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if bytes.HasPrefix(name, []byte("outbox/")) || bytes.HasPrefix(name, []byte("deadletter/")) {
				names = append(names, bytes.Clone(name))
			}
			return nil
		})
	}); err != nil || len(names) == 0 {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, fmt.Errorf("creating the event outbox directory: %w", err)
	}
	to, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("opening event outbox %s: %w", path, err)
	}
	defer to.Close()
	if err := from.View(func(src *bolt.Tx) error {
		return to.Update(func(dst *bolt.Tx) error {
			for _, name := range names {
				if dst.Bucket(name) != nil {
					continue // copied by an earlier, interrupted move
				}
				b, err := dst.CreateBucket(name)
				if err != nil {
					return err
				}
				if err := src.Bucket(name).ForEach(func(k, v []byte) error {
					moved++
					return b.Put(k, v)
				}); err != nil {
					return err
				}
			}
			return nil
		})
	}); err != nil {
		return 0, fmt.Errorf("moving event outboxes to %s: %w", path, err)
	}
	if err := from.Update(func(tx *bolt.Tx) error {
		for _, name := range names {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return moved, fmt.Errorf("removing the moved event outboxes: %w", err)
	}
	return moved, nil
}
