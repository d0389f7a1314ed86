package auditguard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Issue 11 item 6: when lines cannot be parsed, readiness says so (detail, still ready).
func TestReadyzSaysWhenLinesCannotBeParsed(t *testing.T) {
	t.Parallel()
	g, _ := newTestGuard(t)
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		g.ServeReadyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Errorf("before the first resync: %d, want 503", code)
	}
	g.ready.Store(true)
	if code, body := get(); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthy: %d %q", code, body)
	}
	g.Ingest([]byte(`<json:object name="response"><json:string name="type">response</json:string></json:object>`))
	if code, body := get(); code != http.StatusOK || !strings.Contains(body, "format=jsonx") || !strings.Contains(body, "credchain_auditguard_lines_unparsable_total") {
		t.Errorf("after an unparsable line: %d %q", code, body)
	}
}
