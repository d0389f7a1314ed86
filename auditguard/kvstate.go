package auditguard

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KVState is the guard's State in a NATS JetStream key-value bucket (--state=nats), shared by every
// replica: a snapshot written through one is the body another restores. JetStream replicates the
// bucket (--state-replicas) with its own consensus, so the guard needs none.
//
// Keys: snap.<b64(ns\0name)>, login.<b64(ns\0mount\0role)>, offset.<replica>.<b64(path)>,
// meta.watching-since (b64: base64url without padding, because a policy name may hold characters
// a key may not). Every read-modify-write is a compare-and-set on the key's revision, retried on
// conflict, so two replicas never lose each other's hold or later login.
//
// Reads go to the server, never to a local copy: a restore must write the body the last writer
// left, whichever replica that was. That costs one round trip per snapshot read on the restore
// path (docs/benchmarks.md: restore window with KV-backed state vs bbolt).
type KVState struct {
	nc      *nats.Conn
	kv      jetstream.KeyValue
	replica string
	timeout time.Duration
}

// DefaultStateBucket is --state-bucket's default.
const DefaultStateBucket = "credchain-guard"

// kvOpTimeout bounds one key-value operation: NATS down must not stall the processing goroutine
// for longer than the guard's reconnect logic needs to notice.
const kvOpTimeout = 5 * time.Second

// kvCASAttempts bounds the compare-and-set retries of one update: each conflict means another
// replica wrote the key in between, and a handful of replicas cannot conflict forever.
const kvCASAttempts = 16

// OpenKVState creates (or updates) bucket with replicas copies and returns the state on it.
// replica names this guard's offsets. nc stays owned by the caller until Close, which closes it.
func OpenKVState(ctx context.Context, nc *nats.Conn, bucket string, replicas int, replica string) (*KVState, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("nats jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Replicas: replicas,
		Storage: jetstream.FileStorage, Description: "credchain auditguard state: policy snapshots, holds, logins (docs/scale.md)"})
	if err != nil {
		return nil, fmt.Errorf("opening the state bucket %s on NATS: %w", bucket, err)
	}
	// A replicated bucket answers once its stream has elected a leader: wait for that here rather
	// than fail the first restore.
	for {
		_, err := kv.Get(ctx, kvWatchingKey)
		if err == nil || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the state bucket %s on NATS does not answer: %w", bucket, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &KVState{nc: nc, kv: kv, replica: replica, timeout: kvOpTimeout}, nil
}

func b64(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

func snapKey(ns, name string) string { return "snap." + b64(ns, name) }

func kvLoginKey(k roleKey) string { return "login." + b64(k.ns, k.mount, k.role) }

func (s *KVState) offsetKey(path string) string { return "offset." + b64(s.replica) + "." + b64(path) }

const kvWatchingKey = "meta.watching-since"

func (s *KVState) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// get returns key's value and revision; found is false when the key does not exist.
func (s *KVState) get(key string) (value []byte, rev uint64, found bool, err error) {
	ctx, cancel := s.ctx()
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return nil, 0, false, nil
	case err != nil:
		return nil, 0, false, err
	}
	return e.Value(), e.Revision(), true, nil
}

// update is a compare-and-set loop: next gets key's current value (nil, false when absent) and
// returns the value to write, or write=false to leave the key alone.
func (s *KVState) update(key string, next func(old []byte, found bool) (value []byte, write bool, err error)) error {
	for attempt := range kvCASAttempts {
		if attempt > 0 {
			// Jittered so that replicas which conflicted do not conflict again in step.
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 7))))
		}
		old, rev, found, err := s.get(key)
		if errors.Is(err, nats.ErrNoResponders) {
			continue // the bucket's stream is electing a leader (a NATS node restarted, a new bucket)
		}
		if err != nil {
			return err
		}
		v, write, err := next(old, found)
		if err != nil || !write {
			return err
		}
		ctx, cancel := s.ctx()
		if found {
			_, err = s.kv.Update(ctx, key, v, rev)
		} else {
			_, err = s.kv.Create(ctx, key, v)
		}
		cancel()
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, nats.ErrNoResponders) {
			continue // another replica wrote it in between (or the stream is electing a leader): read again
		}
		return err
	}
	return fmt.Errorf("updating %s: %d attempts in a row met another replica's write or no stream leader", key, kvCASAttempts)
}

// PutSnapshot implements State.
func (s *KVState) PutSnapshot(snap Snapshot) error {
	snap.Hold = nil
	err := s.update(snapKey(snap.Namespace, snap.Name), func(old []byte, found bool) ([]byte, bool, error) {
		next := snap
		var prev Snapshot
		if found && json.Unmarshal(old, &prev) == nil && prev.Body == snap.Body {
			if prev.Hold == nil {
				return nil, false, nil // the common re-read: nothing to write
			}
			next.Meta = prev.Meta
		}
		v, err := json.Marshal(next)
		return v, true, err
	})
	if err != nil {
		return fmt.Errorf("storing the snapshot of policy %s: %w", snap.Name, err)
	}
	return nil
}

// HoldSnapshot implements State.
func (s *KVState) HoldSnapshot(ns, name string, h Hold) (bool, error) {
	held := false
	err := s.update(snapKey(ns, name), func(old []byte, found bool) ([]byte, bool, error) {
		if !found {
			return nil, false, nil
		}
		var snap Snapshot
		if err := json.Unmarshal(old, &snap); err != nil {
			return nil, false, err
		}
		snap.Hold, held = &h, true
		v, err := json.Marshal(snap)
		return v, true, err
	})
	if err != nil {
		return false, fmt.Errorf("holding the snapshot of policy %s: %w", name, err)
	}
	return held, nil
}

// GetSnapshot implements State.
func (s *KVState) GetSnapshot(ns, name string) (Snapshot, error) {
	var snap Snapshot
	v, _, found, err := s.get(snapKey(ns, name))
	switch {
	case err != nil:
		return snap, fmt.Errorf("reading the snapshot of policy %s: %w", name, err)
	case !found:
		return snap, ErrNoSnapshot
	}
	return snap, json.Unmarshal(v, &snap)
}

// SaveOffset implements State, under this replica's own key.
func (s *KVState) SaveOffset(path string, inode uint64, offset int64) error {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, inode)
	binary.BigEndian.PutUint64(v[8:], uint64(offset))
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.kv.Put(ctx, s.offsetKey(path), v)
	return err
}

// Offset implements State.
func (s *KVState) Offset(path string) (inode uint64, offset int64, ok bool) {
	v, _, found, err := s.get(s.offsetKey(path))
	if err != nil || !found || len(v) != 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:])), true
}

// PutLogins implements State: each role's later time wins, whichever replica saw it.
func (s *KVState) PutLogins(logins map[roleKey]time.Time) error {
	var errs []error
	for k, t := range logins {
		err := s.update(kvLoginKey(k), func(old []byte, found bool) ([]byte, bool, error) {
			var prev time.Time
			if found && prev.UnmarshalBinary(old) == nil && !t.After(prev) {
				return nil, false, nil
			}
			v, err := t.MarshalBinary()
			return v, true, err
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storing the roles' last logins: %w", err)
	}
	return nil
}

// Logins implements State.
func (s *KVState) Logins() (map[roleKey]time.Time, error) {
	out := map[roleKey]time.Time{}
	err := s.each("login.>", func(key string, v []byte) {
		if k, ok := parseLoginKey(key); ok {
			var t time.Time
			if t.UnmarshalBinary(v) == nil {
				out[k] = t
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading the roles' last logins: %w", err)
	}
	return out, nil
}

func parseLoginKey(key string) (roleKey, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(key, "login."))
	parts := strings.SplitN(string(raw), "\x00", 3)
	if err != nil || len(parts) != 3 {
		return roleKey{}, false // not ours: skipped
	}
	return roleKey{parts[0], parts[1], parts[2]}, true
}

// WatchingSince implements State.
func (s *KVState) WatchingSince() (since time.Time, ok bool, err error) {
	v, _, found, err := s.get(kvWatchingKey)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("reading when the guard started watching: %w", err)
		}
		return time.Time{}, false, err
	}
	return since, true, since.UnmarshalBinary(v)
}

// SetWatchingSince implements State.
func (s *KVState) SetWatchingSince(t time.Time) error {
	v, err := t.MarshalBinary()
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err = s.kv.Put(ctx, kvWatchingKey, v)
	return err
}

// Close closes the NATS connection.
func (s *KVState) Close() error {
	s.nc.Close()
	return nil
}

func intentKey(ns, name string) string { return "intent." + b64(ns, name) }

// PutIntent implements State.
func (s *KVState) PutIntent(in Intent) error {
	v, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err = s.kv.Put(ctx, intentKey(in.Event.Namespace, in.Event.Policy), v)
	return err
}

// DeleteIntent implements State.
func (s *KVState) DeleteIntent(ns, name string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.kv.Delete(ctx, intentKey(ns, name))
}

// Intents implements State, with one watch as Logins.
func (s *KVState) Intents() ([]Intent, error) {
	var out []Intent
	err := s.each("intent.>", func(_ string, v []byte) {
		var in Intent
		if json.Unmarshal(v, &in) == nil {
			out = append(out, in)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading restore intents: %w", err)
	}
	return out, nil
}

// each calls fn with every current key and value matching filter: one watch delivers them all,
// instead of a get per key.
func (s *KVState) each(filter string, fn func(key string, value []byte)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := s.kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			return nil // every current value delivered
		}
		fn(e.Key(), e.Value())
	}
	return ctx.Err()
}
