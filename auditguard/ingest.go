package auditguard

import "io"

// ingester is all a sink may ask of the guard: read a source's lines into the queue within the
// guard's bounds, account for socket connections, and queue a file's progress. The sinks run on
// their own goroutines; everything here is safe from any of them, and nothing here blocks Vault.
type ingester interface {
	// readLines reads r's lines into the queue (--max-line, --line-buffer-bytes, the pre-filter)
	// and returns the bytes consumed.
	readLines(r io.Reader) (int64, error)
	// openConnection takes one of --max-connections' slots for a new socket connection (false:
	// refused and counted; close it at once, max says the limit) and asks for a reconcile: entries
	// may have been lost while the Vault node was away. Each one opened is closed with
	// closeConnection.
	openConnection() (ok bool, max int64)
	closeConnection()
	// checkpoint queues a file sink's progress behind the lines read so far (checkpoint.go).
	checkpoint(c fileCheckpoint) bool
}

var _ ingester = (*Guard)(nil)

func (g *Guard) openConnection() (bool, int64) {
	if !g.connSlots.tryAcquire(1) {
		g.metrics.ConnectionsRefused.Inc()
		return false, g.connSlots.max
	}
	g.metrics.Connections.Inc()
	g.Reconnected()
	return true, g.connSlots.max
}

// OpenConnections is how many Vault socket connections the guard holds now (the replica
// heartbeat's). Safe from any goroutine.
func (g *Guard) OpenConnections() int64 { return g.connSlots.used.Load() }

func (g *Guard) closeConnection() {
	g.metrics.Connections.Dec()
	g.connSlots.release(1)
}
