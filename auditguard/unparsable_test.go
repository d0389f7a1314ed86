package auditguard

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestUnparsableLinesAreCounted (issue 11 item 6): lines that are no JSON audit entry at all — an
// audit device with format=jsonx, a prefix containing `{"` — are counted (and logged), not
// silently dropped by the pre-filter while the guard looks healthy.
func TestUnparsableLinesAreCounted(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		line       string
		unparsable bool
	}{
		"json entry":          {line: deleteEntry},
		"prefixed json entry": {line: "vault-audit: " + deleteEntry},
		"irrelevant entry":    {line: authLine("update", "auth/kubernetes/login")},
		"jsonx entry": {line: `<json:object name="response"><json:object name="auth"><json:string name="display_name">root</json:string></json:object><json:string name="type">response</json:string></json:object>`,
			unparsable: true},
		"text": {line: "hello", unparsable: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g, _ := newTestGuard(t)
			g.Ingest([]byte(tc.line))
			want := 0.0
			if tc.unparsable {
				want = 1
			}
			if got := testutil.ToFloat64(g.metrics.LinesUnparsable); got != want {
				t.Errorf("unparsable lines = %v, want %v", got, want)
			}
		})
	}
}

// TestJSONXStreamIsNotBuffered: format=jsonx writes no newlines at all; the reader reports the
// stream at its first 64 KiB instead of buffering it up to the line limit.
func TestJSONXStreamIsNotBuffered(t *testing.T) {
	t.Parallel()
	xml := strings.Repeat(`<json:object name="request"><json:string name="path">sys/policies/acl/x</json:string></json:object>`, 5000)
	var lines, notEntry, tooLong int
	n, err := readLines(strings.NewReader(xml+"\n"+deleteEntry+"\n"), DefaultMaxLine, func([]byte) { lines++ },
		func() { tooLong++ }, func() { notEntry++ })
	if err != nil || lines != 1 || notEntry != 1 || tooLong != 0 || n != int64(len(xml)+len(deleteEntry)+2) {
		t.Errorf("lines %d, notEntry %d, tooLong %d, consumed %d (%v)", lines, notEntry, tooLong, n, err)
	}
}
