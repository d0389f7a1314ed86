package auditguard

import "time"

// State is what the guard keeps across restarts, and with replicas shares between them: policy
// snapshots with their holds (tombstones, superseded, flapping), the file devices' offsets, the
// roles' last logins and since when the guard has watched them. Two implementations: Store, one
// bbolt file on the pod's volume (the single-replica default), and KVState, a NATS JetStream
// key-value bucket every replica reads and writes (--state=nats, kvstate.go).
//
// Every method is safe from any goroutine. An error means the state could not be read or written
// (a full disk, NATS unreachable): the guard logs it and goes on with what it has in memory.
type State interface {
	// PutSnapshot stores a policy body read from Vault. An unchanged body keeps the first
	// sighting's metadata; either way a hold is cleared (the policy exists and this is its body).
	PutSnapshot(snap Snapshot) error
	// HoldSnapshot holds a policy's snapshot; false when there is no snapshot to hold.
	HoldSnapshot(ns, name string, h Hold) (bool, error)
	// GetSnapshot returns a policy's snapshot, ErrNoSnapshot when there is none.
	GetSnapshot(ns, name string) (Snapshot, error)
	// SaveOffset and Offset keep how far a file device has been read. Files are local to a
	// replica: a shared state keeps each replica's offsets apart.
	SaveOffset(path string, inode uint64, offset int64) error
	Offset(path string) (inode uint64, offset int64, ok bool)
	// PutLogins stores roles' last logins; a shared state keeps the later of two replicas' times.
	PutLogins(logins map[roleKey]time.Time) error
	// Logins returns every role's stored last login.
	Logins() (map[roleKey]time.Time, error)
	// WatchingSince and SetWatchingSince are when the guard first started watching logins.
	WatchingSince() (since time.Time, ok bool, err error)
	SetWatchingSince(t time.Time) error
	Close() error
}

// intentStore keeps the restores in flight (intent.go), one per policy. Only the shared state
// (KVState) is one: in state.db each intent would cost an fsync before the restore's write.
type intentStore interface {
	PutIntent(in Intent) error
	DeleteIntent(ns, name string) error
	Intents() ([]Intent, error)
}

var (
	_ State       = (*Store)(nil)
	_ State       = (*KVState)(nil)
	_ intentStore = (*KVState)(nil)
)
