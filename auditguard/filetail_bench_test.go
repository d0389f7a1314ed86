package auditguard_test

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// BenchmarkRestoreWindowFileTail is BenchmarkRestoreWindow in the sidecar topology: Vault has only
// a file device, and the guard reads it by tailing the file (inotify), not from a socket. It
// reports three windows:
//   - entry: from the time Vault put in the delete's response entry to the restore write returning
//     (the event's time; the root token has no entity, so no lookup comes between) — the tail's
//     wake-up and read included, which the guard's own figure cannot see;
//   - guard: from the entry arriving at the guard to the restore write returning;
//   - client: from `vault policy delete` returning to the policy being readable again.
func BenchmarkRestoreWindowFileTail(b *testing.B) {
	const deletes = 200
	e := setup(b)
	e.flapDeletes = -1 // 200 deletes in a row are a flap
	e.startGuard(b, true)
	sys := e.root.Sys()
	must(b, sys.EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": e.auditLog}}))
	var entryLat, guardLat, clientLat []float64
	for b.Loop() {
		var restored map[string]time.Time
		guardLat, clientLat, restored = e.restoreRounds(b, deletes)
		entryLat = entryWindows(b, e.auditLog, restored)
	}
	b.ReportMetric(percentile(entryLat, 50), "entry-p50-ms")
	b.ReportMetric(percentile(entryLat, 99), "entry-p99-ms")
	b.ReportMetric(percentile(guardLat, 50), "guard-p50-ms")
	b.ReportMetric(percentile(guardLat, 99), "guard-p99-ms")
	b.ReportMetric(percentile(clientLat, 50), "client-p50-ms")
	b.ReportMetric(percentile(clientLat, 99), "client-p99-ms")
}

// entryWindows reads Vault's audit log for the response entries of the restored deletes and
// returns, per delete, the milliseconds from the entry's time to the restore.
func entryWindows(b *testing.B, log string, restored map[string]time.Time) []float64 {
	b.Helper()
	f, err := os.Open(log)
	must(b, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out []float64
	for sc.Scan() {
		var entry struct {
			Type    string    `json:"type"`
			Time    time.Time `json:"time"`
			Request struct {
				ID string `json:"id"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) != nil || entry.Type != "response" {
			continue
		}
		if at, ok := restored[entry.Request.ID]; ok {
			out = append(out, float64(at.Sub(entry.Time).Microseconds())/1000)
		}
	}
	must(b, sc.Err())
	if len(out) != len(restored) {
		b.Fatalf("found %d of the %d deletes' response entries in %s", len(out), len(restored), log)
	}
	return out
}
