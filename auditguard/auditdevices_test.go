package auditguard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	vault "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credchain/credchain/internal/events"
)

// AuditDevices: the fakes' Vault has the recommended pair, a file device and the guard's socket.
func (m *memVault) AuditDevices(context.Context) ([]AuditDevice, error) {
	return []AuditDevice{{Path: "credchain/", Type: "socket", Address: "credchain-auditguard:9090"}, {Path: "file/", Type: "file"}}, nil
}

// devicesVault lists the audit devices it is given, or fails with err.
type devicesVault struct {
	memVault
	devices []AuditDevice
	err     error
}

func (d *devicesVault) AuditDevices(context.Context) ([]AuditDevice, error) { return d.devices, d.err }

var (
	guardSocket = AuditDevice{Path: "credchain/", Type: "socket", Address: "credchain-auditguard.credchain-system.svc:9090"}
	siemSocket  = AuditDevice{Path: "siem/", Type: "socket", Address: "siem.example:6514"}
	fileDevice  = AuditDevice{Path: "file/", Type: "file"}
	syslog      = AuditDevice{Path: "syslog/", Type: "syslog"}
	denied      = fmt.Errorf("listing audit devices: %w", &vault.ResponseError{StatusCode: 403, Errors: []string{"permission denied"}})
)

// TestAuditDevicesSocketOnly (issue 11 item 17): each check of Vault's audit devices sets the gauge;
// Vault's getting into a state where only socket devices record is reported once, and again after
// it got out of it; a check the guard's token may not make says -1, never 0.
func TestAuditDevicesSocketOnly(t *testing.T) {
	t.Parallel()
	type check struct {
		devices []AuditDevice
		err     error
	}
	for name, tc := range map[string]struct {
		checks []check
		gauge  float64
		events int    // audit.guard_only_device events
		names  string // a substring of the last event's message
	}{
		"file and the guard's socket":     {checks: []check{{devices: []AuditDevice{guardSocket, fileDevice}}}, gauge: 0},
		"syslog and the guard's socket":   {checks: []check{{devices: []AuditDevice{guardSocket, syslog}}}, gauge: 0},
		"no device at all":                {checks: []check{{}}, gauge: 0},
		"only the guard's socket":         {checks: []check{{devices: []AuditDevice{guardSocket}}}, gauge: 1, events: 1, names: "credchain/ → credchain-auditguard.credchain-system.svc:9090"},
		"the guard's and a SIEM's socket": {checks: []check{{devices: []AuditDevice{guardSocket, siemSocket}}}, gauge: 1, events: 1, names: "credchain/ → credchain-auditguard.credchain-system.svc:9090, siem/ → siem.example:6514"},
		"reported once while it lasts": {checks: []check{{devices: []AuditDevice{guardSocket}}, {devices: []AuditDevice{guardSocket}}, {devices: []AuditDevice{guardSocket}}},
			gauge: 1, events: 1},
		"the file device disabled after a start with both": {checks: []check{{devices: []AuditDevice{guardSocket, fileDevice}}, {devices: []AuditDevice{guardSocket}}},
			gauge: 1, events: 1},
		"again after a file device came back in between": {checks: []check{{devices: []AuditDevice{guardSocket}}, {devices: []AuditDevice{guardSocket, fileDevice}}, {devices: []AuditDevice{guardSocket}}},
			gauge: 1, events: 2},
		"a failing check in between is not a way out": {checks: []check{{devices: []AuditDevice{guardSocket}}, {err: errors.New("connection refused")}, {devices: []AuditDevice{guardSocket}}},
			gauge: 1, events: 1},
		"no permission: unknown":            {checks: []check{{err: denied}, {err: denied}}, gauge: -1},
		"Vault unreachable: unknown":        {checks: []check{{err: errors.New("dial tcp: connection refused")}}, gauge: -1},
		"unknown after a good check":        {checks: []check{{devices: []AuditDevice{guardSocket, fileDevice}}, {err: denied}}, gauge: -1},
		"permission granted since: decides": {checks: []check{{err: denied}, {devices: []AuditDevice{guardSocket}}}, gauge: 1, events: 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := &devicesVault{}
			rec := &events.Recorder{}
			g := NewGuard(v, nil, rec, nil, testr.New(t))
			for _, c := range tc.checks {
				v.devices, v.err = c.devices, c.err
				g.checkAuditDevices(t.Context())
			}
			if got := testutil.ToFloat64(g.metrics.AuditSocketOnly); got != tc.gauge {
				t.Errorf("gauge = %v, want %v", got, tc.gauge)
			}
			got := rec.OfType(events.AuditGuardOnly)
			if len(got) != tc.events || rec.Count() != tc.events {
				t.Fatalf("events = %+v, want %d %s", rec.All(), tc.events, events.AuditGuardOnly)
			}
			if tc.events == 0 {
				return
			}
			e := got[len(got)-1]
			if e.Object != "sys/audit" || e.Action != "none" || !strings.Contains(e.Message, tc.names) ||
				!strings.Contains(e.Message, "enable a file audit device now") {
				t.Errorf("event = %+v", e)
			}
		})
	}
}

// TestAuditDevicesGaugeStartsUnknown: before the first check the gauge says the guard does not
// know, not that all is well.
func TestAuditDevicesGaugeStartsUnknown(t *testing.T) {
	t.Parallel()
	if got := testutil.ToFloat64(NewMetrics(nil).AuditSocketOnly); got != -1 {
		t.Errorf("gauge = %v, want -1", got)
	}
}
