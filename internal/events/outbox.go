package events

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Outbox is a durable FIFO of events for one sink, in a bbolt bucket of the component's state store:
// an event is written here before any delivery attempt and removed only after the sink acknowledged
// it, so a sink outage or a process restart delays delivery but loses nothing.
type Outbox struct {
	db     *bolt.DB
	bucket []byte
}

// Pending is an event waiting in an outbox.
type Pending struct {
	Key   uint64
	Event Event
}

// NewOutbox opens (creating) the outbox bucket for sink.
func NewOutbox(db *bolt.DB, sink string) (*Outbox, error) {
	o := &Outbox{db: db, bucket: []byte("outbox/" + sink)}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(o.bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("creating outbox for %s: %w", sink, err)
	}
	return o, nil
}

// Add appends an event.
func (o *Outbox) Add(e Event) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("internal error: encoding event: %w", err)
	}
	return o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(o.bucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
	})
}

// Peek returns up to max of the oldest events.
func (o *Outbox) Peek(max int) ([]Pending, error) {
	var out []Pending
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(o.bucket).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			var p Pending
			p.Key = binary.BigEndian.Uint64(k)
			if err := json.Unmarshal(v, &p.Event); err != nil {
				return fmt.Errorf("internal error: decoding outbox entry %d: %w", p.Key, err)
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// Remove deletes a delivered event.
func (o *Outbox) Remove(key uint64) error {
	return o.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(o.bucket).Delete(binary.BigEndian.AppendUint64(nil, key))
	})
}

// Len is the number of events waiting.
func (o *Outbox) Len() int {
	n := 0
	_ = o.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(o.bucket).Stats().KeyN
		return nil
	})
	return n
}
