package auditguard

import "time"

// SetBlastSyncWarn lets tests shorten how long NewBlast waits before saying it is still waiting.
func SetBlastSyncWarn(d time.Duration) (restore func()) {
	old := blastSyncWarn
	blastSyncWarn = d
	return func() { blastSyncWarn = old }
}
