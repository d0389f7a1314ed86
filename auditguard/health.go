package auditguard

import (
	"fmt"
	"net/http"
	"time"
)

// unparsableRecent is how long after the last unparsable line /readyz still says so.
const unparsableRecent = 10 * time.Minute

// ServeReadyz answers /readyz: 503 until the first resync from Vault completed, then 200 — with a
// warning line when audit lines could not be parsed recently. A guard fed by a format=jsonx device
// (or a prefix it cannot skip) sees nothing while it looks healthy; the warning is readiness
// *detail*, not unreadiness: an unready guard leaves its Service's endpoints, and Vault's socket
// device would then lose the entries the guard can read too.
func (g *Guard) ServeReadyz(w http.ResponseWriter, _ *http.Request) {
	if !g.Ready() {
		http.Error(w, "initial resync from Vault not complete", http.StatusServiceUnavailable)
		return
	}
	body := "ok\n"
	if last := g.unparsableLast.Load(); last != 0 {
		if ago := g.opts.now().Sub(time.Unix(0, last)); ago < unparsableRecent {
			body += fmt.Sprintf("warning: audit lines that are no JSON audit entry arrived %s ago (a device with format=jsonx, or a prefix containing '{\"'?): the guard cannot see what they record; see credchain_auditguard_lines_unparsable_total\n",
				ago.Round(time.Second))
		}
	}
	_, _ = w.Write([]byte(body))
}
