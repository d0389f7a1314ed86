package auditguard

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/credchain/credchain/internal/events"
)

var (
	bucketPolicies = []byte("policies")
	bucketOffsets  = []byte("offsets")
	// bucketLogins holds each role's last login (active.go), bucketMeta the guard's own facts
	// (since when it has watched logins).
	bucketLogins = []byte("logins")
	bucketMeta   = []byte("meta")
	keyWatching  = []byte("watching-since")
)

// Snapshot is the last-known body of a policy and where it came from, so a restart doesn't forget
// what a deleted policy said.
type Snapshot struct {
	Namespace string            `json:"namespace,omitempty"`
	Name      string            `json:"name"`
	Body      string            `json:"body"`
	Meta      events.Provenance `json:"meta"`
	// Hold, when set, forbids writing Body back: the guard knows something since it read Body that
	// makes a restore wrong. It is persisted (a restarted guard's reconcile must not undo it) and
	// cleared by the next read that finds the policy in Vault (PutSnapshot), which makes the
	// snapshot current again.
	Hold *Hold `json:"hold,omitempty"`
}

// Hold is why a snapshot must not be written back, since when and because of whom.
type Hold struct {
	Reason HoldReason `json:"reason"`
	// At is when Vault logged the request that caused the hold (the guard's clock when the entry
	// had no time).
	At time.Time `json:"at"`
	// Actor made that request, as Vault logged it.
	Actor *events.Actor `json:"actor,omitempty"`
	// Deletes is, for HoldFlapping, how many deletes within the window triggered it.
	Deletes int `json:"deletes,omitempty"`
}

// HoldReason says why a snapshot is held.
type HoldReason string

const (
	// HoldSuperseded: Vault logged a write of the policy after Body was read, and the guard could
	// not read the result (deleted again first, or the read failed). Body is older than the
	// policy's last version; writing it back could revert a change such as a hardening (item 8 of
	// issue 11).
	HoldSuperseded HoldReason = "superseded"
	// HoldDeleted: a delete of the policy was accepted while no role referenced it. It was meant;
	// a role that references the policy later gets a dangling-reference event, not the deleted body
	// back (a tombstone, item 9).
	HoldDeleted HoldReason = "deleted"
	// HoldFlapping: the policy was deleted too often within the flap window (a tool fighting the
	// guard); restoring stopped until someone writes the policy again (item 10).
	HoldFlapping HoldReason = "flapping"
)

// Store persists snapshots and file offsets in one bbolt file under the state directory.
type Store struct{ db *bolt.DB }

// OpenStore opens (creating) dir/state.db. bbolt takes an exclusive lock: a second guard on the
// same state dir fails fast instead of corrupting it.
func OpenStore(dir string) (*Store, error) {
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening state store in %s: %w", dir, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPolicies, bucketOffsets, bucketLogins, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising state store: %w", err)
	}
	return &Store{db: db}, nil
}

// DB is the underlying bbolt database, shared with the event outboxes.
func (s *Store) DB() *bolt.DB { return s.db }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func policyKey(ns, name string) []byte { return []byte(ns + "\x00" + name) }

// PutSnapshot stores a snapshot read from Vault, replacing the previous one unless the body is
// unchanged: then the first sighting's metadata is kept, so "who wrote it" survives re-reads and
// the guard's own restores. Either way a hold is cleared: the policy exists and this is its body.
func (s *Store) PutSnapshot(snap Snapshot) error {
	// Most calls re-read an unchanged body (resync, the guard's own restore); check in a read
	// transaction first so they cost no fsync.
	unchanged := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		var prev Snapshot
		if old := tx.Bucket(bucketPolicies).Get(policyKey(snap.Namespace, snap.Name)); old != nil &&
			json.Unmarshal(old, &prev) == nil && prev.Body == snap.Body && prev.Hold == nil {
			unchanged = true
		}
		return nil
	})
	if unchanged {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPolicies)
		key := policyKey(snap.Namespace, snap.Name)
		snap.Hold = nil
		if old := b.Get(key); old != nil {
			var prev Snapshot
			if json.Unmarshal(old, &prev) == nil && prev.Body == snap.Body {
				if prev.Hold == nil {
					return nil
				}
				snap.Meta = prev.Meta
			}
		}
		v, err := json.Marshal(snap)
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
}

// HoldSnapshot puts a hold on a policy's snapshot, replacing any earlier one. It reports false
// when there is no snapshot: nothing could be restored anyway.
func (s *Store) HoldSnapshot(ns, name string, h Hold) (bool, error) {
	held := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPolicies)
		key := policyKey(ns, name)
		old := b.Get(key)
		if old == nil {
			return nil
		}
		var snap Snapshot
		if err := json.Unmarshal(old, &snap); err != nil {
			return err
		}
		snap.Hold, held = &h, true
		v, err := json.Marshal(snap)
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
	if err != nil {
		return false, fmt.Errorf("holding the snapshot of policy %s: %w", name, err)
	}
	return held, nil
}

// ErrNoSnapshot means the guard never saw the policy's body.
var ErrNoSnapshot = errors.New("no snapshot")

// GetSnapshot returns the last snapshot of a policy.
func (s *Store) GetSnapshot(ns, name string) (Snapshot, error) {
	var snap Snapshot
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPolicies).Get(policyKey(ns, name))
		if v == nil {
			return ErrNoSnapshot
		}
		return json.Unmarshal(v, &snap)
	})
	return snap, err
}

// SaveOffset records how far a file device has been read, with the file's identity (inode) so a
// rotated file is not resumed at the old file's offset.
func (s *Store) SaveOffset(path string, inode uint64, offset int64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 16)
		binary.BigEndian.PutUint64(v, inode)
		binary.BigEndian.PutUint64(v[8:], uint64(offset))
		return tx.Bucket(bucketOffsets).Put([]byte(path), v)
	})
}

// Offset returns the saved offset for path, ok=false when none.
func (s *Store) Offset(path string) (inode uint64, offset int64, ok bool) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOffsets).Get([]byte(path))
		if len(v) == 16 {
			inode, offset, ok = binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:])), true
		}
		return nil
	})
	return inode, offset, ok
}

func loginKey(k roleKey) []byte { return []byte(k.ns + "\x00" + k.mount + "\x00" + k.role) }

// PutLogins stores roles' last logins (active.go), in one transaction.
func (s *Store) PutLogins(logins map[roleKey]time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogins)
		for k, t := range logins {
			v, err := t.MarshalBinary()
			if err != nil {
				return err
			}
			if err := b.Put(loginKey(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Logins returns every role's stored last login.
func (s *Store) Logins() (map[roleKey]time.Time, error) {
	out := map[roleKey]time.Time{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLogins).ForEach(func(k, v []byte) error {
			parts := strings.SplitN(string(k), "\x00", 3)
			var t time.Time
			if len(parts) != 3 || t.UnmarshalBinary(v) != nil {
				return nil // not ours: skipped
			}
			out[roleKey{parts[0], parts[1], parts[2]}] = t
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading the roles' last logins: %w", err)
	}
	return out, nil
}

// WatchingSince returns when the guard first started on this state store (ok=false before).
func (s *Store) WatchingSince() (since time.Time, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyWatching); v != nil {
			ok = true
			return since.UnmarshalBinary(v)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading when the guard started watching: %w", err)
	}
	return since, ok, nil
}

// SetWatchingSince records when the guard started watching logins (its first start; a test, or
// an operator who knows the logins of a longer past, may set it earlier).
func (s *Store) SetWatchingSince(t time.Time) error {
	v, err := t.MarshalBinary()
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyWatching, v) })
}
