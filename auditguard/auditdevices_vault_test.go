package auditguard_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Issue 11 item 17 against the real Vault: the guard must never become Vault's only audit device.

const socketOnlyGauge = "credchain_auditguard_audit_devices_socket_only"

// waitGauge waits up to 30s for series to be exactly want.
func (e *env) waitGauge(t *testing.T, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := testenv.Metric(t.Context(), "http://"+e.metrics+"/metrics", series)
		if err == nil && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (%v), want %v", series, v, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestVaultGuardPolicyListsAuditDevicesOnly: listing sys/audit needs read and sudo; the shipped
// policy grants them on that exact path, which lets the guard's token list the devices and neither
// enable nor disable one.
func TestVaultGuardPolicyListsAuditDevicesOnly(t *testing.T) {
	e := setup(t)
	e.startGuard(t, false) // Vault connects to the socket when the device is enabled
	e.enableDevices(t)
	guard := client(t, e.v.Addr, e.guardTok).Sys()
	devs, err := guard.ListAudit()
	must(t, err)
	if len(devs) != 2 || devs["guard/"] == nil || devs["guard/"].Type != "socket" {
		t.Errorf("devices = %+v", devs)
	}
	forbidden := func(what string, err error) {
		t.Helper()
		var re *vault.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("%s with the guard's token: %v, want 403", what, err)
		}
	}
	forbidden("enabling a device", guard.EnableAuditWithOptions("mine", &vault.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": "discard"}}))
	forbidden("disabling a device", guard.DisableAudit("file"))
	forbidden("disabling a device (trailing slash)", guard.DisableAudit("file/"))

	// Without sudo the listing is refused: what a policy missing the stanza gets.
	must(t, e.root.Sys().PutPolicy("list-audit-no-sudo", `path "sys/audit" { capabilities = ["read", "list"] }`))
	tok, err := e.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"list-audit-no-sudo"}})
	must(t, err)
	_, err = client(t, e.v.Addr, tok.Auth.ClientToken).Sys().ListAudit()
	forbidden("listing devices without sudo", err)
}

// TestVaultOnlySocketDevicesAreReported: with the file device and the guard's socket enabled all is
// well (gauge 0); once the file device is disabled, the guard's socket is Vault's only device and
// audit.guard_only_device is sent once (gauge 1). Stopping the guard then stops Vault: the request
// is refused because no device can record it — which is what the event warns of.
func TestVaultOnlySocketDevicesAreReported(t *testing.T) {
	e := setup(t)
	e.metrics = testenv.FreeAddrT(t)
	stop := e.startGuard(t, false)
	e.enableDevices(t)
	e.flush(t) // the enables' entries were checked
	e.waitGauge(t, socketOnlyGauge, 0)
	if got := e.events.OfType(events.AuditGuardOnly); len(got) != 0 {
		t.Fatalf("events = %+v, want none with a file device enabled", got)
	}

	n := e.events.Count()
	must(t, e.root.Sys().DisableAudit("file"))
	ev := e.waitEvents(t, n, events.AuditGuardOnly)()[0]
	if ev.Object != "sys/audit" || !strings.Contains(ev.Message, "socket device (guard/ → "+e.listen+")") ||
		!strings.Contains(ev.Message, "enable a file audit device now") {
		t.Errorf("event = %+v", ev)
	}
	testenv.WriteExample(t, ev) // for docs/events.md
	e.waitGauge(t, socketOnlyGauge, 1)
	e.flush(t)
	if got := e.events.OfType(events.AuditGuardOnly); len(got) != 1 {
		t.Errorf("%s events = %+v, want one", events.AuditGuardOnly, got)
	}

	// What the event warns of, measured: the guard stops, and Vault refuses requests.
	stop()
	for i := range 3 {
		start := time.Now()
		_, err := e.root.Sys().ListPolicies()
		t.Logf("request %d with only the socket device and the guard stopped: %s: %v", i+1, time.Since(start), err)
		if err == nil {
			t.Error("Vault served a request no audit device could record")
		}
	}
}

// TestVaultOnlySocketDevicesUnknownWithoutPermission: a guard token whose policy lacks the
// sys/audit stanza cannot tell; the gauge says -1 (unknown), not 0 (all is well), and no event
// claims either way.
func TestVaultOnlySocketDevicesUnknownWithoutPermission(t *testing.T) {
	e := setup(t)
	body := e.policy(t, "credchain-auditguard")
	i := strings.Index(body, `path "sys/audit" {`)
	if i < 0 {
		t.Fatal("the shipped policy has no sys/audit stanza")
	}
	j := strings.Index(body[i:], "}")
	must(t, e.root.Sys().PutPolicy("credchain-auditguard", body[:i]+body[i+j+1:]))
	e.metrics = testenv.FreeAddrT(t)
	e.startGuard(t, false)
	e.enableDevices(t)
	must(t, e.root.Sys().DisableAudit("file"))
	e.flush(t)
	e.waitGauge(t, socketOnlyGauge, -1)
	if got := e.events.OfType(events.AuditGuardOnly); len(got) != 0 {
		t.Errorf("events = %+v, want none: the guard cannot tell", got)
	}
}
