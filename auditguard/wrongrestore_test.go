package auditguard_test

import (
	"bufio"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Issue 11's wrong restores, against the real Vault.

// TestVaultUpdateThenDeleteIsNotReverted (item 8): an admin hardens eso-order-service, and it is
// deleted before the guard has read the new body back. The guard must not write its older snapshot
// back. Made deterministic: the guard reads only its socket, the file device records Vault's real
// entries of the update and the delete, and they reach the socket only after both happened.
func TestVaultUpdateThenDeleteIsNotReverted(t *testing.T) {
	e := setup(t)
	e.metrics = testenv.FreeAddrT(t)
	e.startGuard(t, false) // snapshots the current body
	must(t, e.root.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": e.auditLog}}))
	// Connected first: a connection starts a reconcile, which must find nothing missing yet.
	c, err := net.Dial("tcp", e.listen)
	must(t, err)
	defer c.Close()
	e.waitMetricAtLeast(t, "credchain_auditguard_reconciles_total", 2)
	const hardened = `path "registry-creds/data/order-service" { capabilities = ["read"] } # hardened: no creds/ any more`
	must(t, e.root.Sys().PutPolicy("eso-order-service", hardened))
	must(t, e.root.Sys().DeletePolicy("eso-order-service"))
	n := e.events.Count()
	for _, l := range responseLines(t, e.auditLog, "sys/policies/acl/eso-order-service") {
		_, err := c.Write(append(l, '\n'))
		must(t, err)
	}
	ev := e.events.wait(t, events.PolicyRestoreFailed, "eso-order-service", n)
	if ev.Reason != "superseded" || ev.Action != "none" {
		t.Errorf("event = %+v", ev)
	}
	if body := e.policy(t, "eso-order-service"); body != "" {
		t.Errorf("the pre-hardening body was written back: %q", body)
	}
}

// waitMetricAtLeast waits until the guard's metric (e.metrics must be set) reaches want.
func (e *env) waitMetricAtLeast(t *testing.T, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := testenv.Metric(t.Context(), "http://"+e.metrics+"/metrics", series)
		if err == nil && v >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (%v), want at least %v", series, v, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// responseLines returns the response entries of the audit log at path whose request path is p.
func responseLines(t *testing.T, path, p string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, `"path":"`+p+`"`) && strings.HasSuffix(l, `"type":"response"}`) {
			out = append(out, []byte(l))
		}
	}
	must(t, sc.Err())
	if len(out) == 0 {
		t.Fatalf("no response entry for %s in %s", p, path)
	}
	return out
}

// TestVaultDeletedPolicyIsNotResurrected (item 9): old-team is deleted while no role references
// it. A role written later with old-team gets a dangling-reference event; the deleted body is not
// brought back, neither by the role write nor by a reconcile (here: a guard restart).
func TestVaultDeletedPolicyIsNotResurrected(t *testing.T) {
	e := setup(t)
	stop := e.startGuard(t, true)
	e.enableDevices(t)
	n := e.events.Count()
	must(t, e.root.Sys().DeletePolicy("old-team"))
	e.events.wait(t, events.PolicyDeleted, "old-team", n)
	e.role(t, "legacy", "old-team")
	ev := e.events.wait(t, events.DanglingReference, "old-team", n)
	if ev.Actor == nil || ev.Actor.DisplayName != "token" || !strings.Contains(ev.Message, "deleted it") {
		t.Errorf("event = %+v", ev)
	}
	e.flush(t)
	stop()
	e.startGuard(t, false) // its start-up reconcile
	e.flush(t)
	if body := e.policy(t, "old-team"); body != "" {
		t.Errorf("old-team was brought back: %q", body)
	}
}
