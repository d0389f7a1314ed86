package events

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Outbox is a durable FIFO of events for one sink, in a bbolt bucket of the component's state store:
// an event is written here before any delivery attempt and removed only after the sink acknowledged
// it, so a sink outage or a process restart delays delivery but loses nothing.
//
// It is bounded (Limits.MaxPending, MaxPendingBytes): past the bound the oldest events move to the
// sink's dead-letter bucket, itself bounded (MaxDeadLetters, MaxDeadLetterBytes, oldest deleted), so
// an outage or a flood can never grow the state volume without limit. bbolt reuses freed pages, so
// the file stays near its high-water mark.
//
// One Outbox per bucket at a time (one Dispatcher per state store): the counters are kept in memory.
type Outbox struct {
	db           *bolt.DB
	bucket, dead []byte
	lim          Limits

	// mu serialises this outbox's writes with n, the mirror of both buckets' sizes (counted once by
	// NewOutbox), so bounds are checked without scanning. Guards n.
	mu sync.Mutex
	n  counts
}

type counts struct {
	pending, dead           int
	pendingBytes, deadBytes int64
}

// Pending is an event waiting in an outbox.
type Pending struct {
	Key   uint64
	Event Event
	// Err is set when the stored entry could not be decoded (Event is then zero): the dispatcher
	// dead-letters it instead of stopping at it.
	Err error
}

// DeadLetter is an event set aside because it could not be delivered: kept for a human to inspect
// or replay (the event is stored as it was queued), never retried by credchain.
type DeadLetter struct {
	// Key is the event's outbox key (its queue position).
	Key uint64 `json:"-"`
	// ID and Type are the event's, for listing without decoding Event.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Reason is why: DeadRejected, DeadAttempts, DeadAge, DeadOverflow or DeadCorrupt.
	Reason string `json:"reason"`
	// Error is the last delivery error (sinks' errors carry no secret data).
	Error string `json:"error,omitempty"`
	// Attempts is the number of failed deliveries counted against MaxAttempts.
	Attempts int `json:"attempts,omitempty"`
	// At is when it was set aside.
	At time.Time `json:"at"`
	// Event is the event's JSON as queued.
	Event json.RawMessage `json:"event"`
}

// NewOutbox opens (creating) the outbox and dead-letter buckets for sink, bounded by lim (zero fields:
// the defaults).
func NewOutbox(db *bolt.DB, sink string, lim Limits) (*Outbox, error) {
	lim.SetDefaults()
	o := &Outbox{db: db, bucket: []byte("outbox/" + sink), dead: []byte("deadletter/" + sink), lim: lim}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(o.bucket)
		if err != nil {
			return err
		}
		dead, err := tx.CreateBucketIfNotExists(o.dead)
		if err != nil {
			return err
		}
		_ = b.ForEach(func(_, v []byte) error { o.n.pending++; o.n.pendingBytes += int64(len(v)); return nil })
		_ = dead.ForEach(func(_, v []byte) error { o.n.dead++; o.n.deadBytes += int64(len(v)); return nil })
		// Bounds lowered since the last run apply now.
		return o.trim(tx, &o.n, time.Now(), nil)
	}); err != nil {
		return nil, fmt.Errorf("creating outbox for %s: %w", sink, err)
	}
	return o, nil
}

// Add appends an event. When the outbox is then over its bounds, the oldest events move to the
// dead-letter bucket (reason DeadOverflow) and are returned, for the caller to count and log.
func (o *Outbox) Add(e Event) ([]DeadLetter, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("internal error: encoding event: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.n
	var moved []DeadLetter
	err = o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(o.bucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
			return err
		}
		n.pending++
		n.pendingBytes += int64(len(v))
		return o.trim(tx, &n, time.Now(), &moved)
	})
	if err != nil {
		return nil, err
	}
	o.n = n
	return moved, nil
}

// trim moves the oldest pending events to the dead letters while the outbox is over its bounds.
func (o *Outbox) trim(tx *bolt.Tx, n *counts, now time.Time, moved *[]DeadLetter) error {
	c := tx.Bucket(o.bucket).Cursor()
	for n.pending > 0 && (n.pending > o.lim.MaxPending || n.pendingBytes > o.lim.MaxPendingBytes) {
		k, v := c.First()
		if k == nil {
			return fmt.Errorf("internal error: outbox %s counted %d events but holds none", o.bucket, n.pending)
		}
		dl, err := o.move(tx, n, k, v, DeadLetter{Reason: DeadOverflow, At: now})
		if err != nil {
			return err
		}
		if moved != nil {
			*moved = append(*moved, dl)
		}
	}
	return nil
}

// move deletes the pending entry k (value v) and stores it as dl in the dead letters, deleting the
// oldest dead letters past their bounds.
func (o *Outbox) move(tx *bolt.Tx, n *counts, k, v []byte, dl DeadLetter) (DeadLetter, error) {
	dl.Key = binary.BigEndian.Uint64(k)
	var head struct{ ID, Type string }
	if json.Unmarshal(v, &head) == nil {
		dl.ID, dl.Type = head.ID, head.Type
	}
	if json.Valid(v) {
		dl.Event = v
	} else { // a corrupt entry is kept as a JSON string
		dl.Event, _ = json.Marshal(string(v))
	}
	rec, err := json.Marshal(dl)
	if err != nil {
		return dl, fmt.Errorf("internal error: encoding dead letter: %w", err)
	}
	// Copy the key: bbolt's k is only valid until the bucket changes.
	key := binary.BigEndian.AppendUint64(nil, dl.Key)
	if err := tx.Bucket(o.bucket).Delete(key); err != nil {
		return dl, err
	}
	n.pending--
	n.pendingBytes -= int64(len(v))
	dead := tx.Bucket(o.dead)
	if err := dead.Put(key, rec); err != nil {
		return dl, err
	}
	n.dead++
	n.deadBytes += int64(len(rec))
	dc := dead.Cursor()
	for n.dead > 0 && (n.dead > o.lim.MaxDeadLetters || n.deadBytes > o.lim.MaxDeadLetterBytes) {
		dk, dv := dc.First()
		if dk == nil {
			break
		}
		size := len(dv)
		if err := dc.Delete(); err != nil {
			return dl, err
		}
		n.dead--
		n.deadBytes -= int64(size)
	}
	return dl, nil
}

// Peek returns up to max of the oldest events; an entry that cannot be decoded comes back with Err.
func (o *Outbox) Peek(max int) ([]Pending, error) {
	var out []Pending
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(o.bucket).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			p := Pending{Key: binary.BigEndian.Uint64(k)}
			if err := json.Unmarshal(v, &p.Event); err != nil {
				p.Event, p.Err = Event{}, fmt.Errorf("decoding outbox entry %d: %w", p.Key, err)
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// Remove deletes a delivered event. An event already moved to the dead letters meanwhile (the
// outbox overflowed while it was being sent) is left there: it was counted and logged as set aside.
func (o *Outbox) Remove(key uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.n
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(o.bucket)
		k := binary.BigEndian.AppendUint64(nil, key)
		v := b.Get(k)
		if v == nil {
			return nil
		}
		n.pending--
		n.pendingBytes -= int64(len(v))
		return b.Delete(k)
	})
	if err != nil {
		return err
	}
	o.n = n
	return nil
}

// errGone: the entry to dead-letter is no longer pending.
var errGone = errors.New("no longer pending")

// DeadLetter moves the pending event key to the dead letters with dl's reason, error and
// attempts. ok is false when it was no longer pending.
func (o *Outbox) DeadLetter(key uint64, dl DeadLetter) (_ DeadLetter, ok bool, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.n
	if dl.At.IsZero() {
		dl.At = time.Now().UTC()
	}
	err := o.db.Update(func(tx *bolt.Tx) error {
		k := binary.BigEndian.AppendUint64(nil, key)
		v := tx.Bucket(o.bucket).Get(k)
		if v == nil {
			return errGone
		}
		var err error
		dl, err = o.move(tx, &n, k, v, dl)
		return err
	})
	if errors.Is(err, errGone) {
		return dl, false, nil
	}
	if err != nil {
		return dl, false, err
	}
	o.n = n
	return dl, true, nil
}

// DeadLetters returns the dead letters, oldest first.
func (o *Outbox) DeadLetters() ([]DeadLetter, error) {
	var out []DeadLetter
	err := o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(o.dead).ForEach(func(k, v []byte) error {
			var dl DeadLetter
			if err := json.Unmarshal(v, &dl); err != nil {
				return fmt.Errorf("internal error: decoding dead letter %d: %w", binary.BigEndian.Uint64(k), err)
			}
			dl.Key = binary.BigEndian.Uint64(k)
			out = append(out, dl)
			return nil
		})
	})
	return out, err
}

// Len is the number of events waiting.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n.pending
}

// Bytes is the size of the events waiting, encoded.
func (o *Outbox) Bytes() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n.pendingBytes
}

// DeadLen is the number of dead letters kept.
func (o *Outbox) DeadLen() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n.dead
}
