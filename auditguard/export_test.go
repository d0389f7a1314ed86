package auditguard

import (
	"strings"
	"time"
)

// SetBlastSyncWarn lets tests shorten how long NewBlast waits before saying it is still waiting.
func SetBlastSyncWarn(d time.Duration) (restore func()) {
	old := blastSyncWarn
	blastSyncWarn = d
	return func() { blastSyncWarn = old }
}

// BucketFor makes a test's name a key-value bucket name of its own (letters, digits and '_').
func BucketFor(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}
