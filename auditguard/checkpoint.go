package auditguard

import "time"

// fileCheckpoint is how far a file sink has read one audit file. It is queued behind the lines
// read up to offset and saved when the processing goroutine reaches it: the queue is FIFO, so by
// then every line before offset has been processed. A guard that stops or crashes with lines still
// queued resumes before them, where saving the offset when the lines were read skipped them for
// good.
//
// Delivery is at least once: lines processed after the last saved checkpoint are read, and acted
// on, again after an unclean stop (at most about checkpointEvery of them, plus the queue's lag).
// An audit line is only a hint re-checked against Vault, so a replayed delete finds the policy in
// place and changes nothing; it can repeat a policy.deleted event.
type fileCheckpoint struct {
	path   string
	inode  uint64
	offset int64
}

// checkpointEvery spaces a file's checkpoints. Each saved checkpoint is one bbolt transaction (an
// fsync) on the processing goroutine, where a delete queued behind it waits for it; one per drain
// would be one per Vault request when inotify wakes the tail on every write.
const checkpointEvery = time.Second

// checkpoint queues c behind the lines already queued and reports whether it was. It never
// blocks. A checkpoint refused by a full queue is fine: lines are being dropped then anyway
// (credchain_auditguard_lines_dropped_total{reason="queue_full"}), and the file sink's next
// checkpoint covers the same lines and more.
func (g *Guard) checkpoint(c fileCheckpoint) bool {
	select {
	case g.queue <- work{kind: workCheckpoint, checkpoint: &c, arrived: g.opts.now()}:
		return true
	default:
		return false
	}
}

// saveCheckpoint persists a checkpoint the processing goroutine has reached.
func (g *Guard) saveCheckpoint(c *fileCheckpoint) {
	if err := g.store.SaveOffset(c.path, c.inode, c.offset); err != nil {
		g.log.Error(err, "saving audit file offset", "path", c.path)
	}
}
