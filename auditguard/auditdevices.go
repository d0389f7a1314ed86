package auditguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	vault "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/credchain/credchain/internal/events"
)

// The guard must never become Vault's only audit device. Vault refuses a request that no enabled
// audit device records, so when every device is a socket device — the guard's, perhaps a SIEM's —
// a guard that is down or unreachable stops Vault, and one that stalls holds every audited request
// for the device's write_timeout. The guard checks what it can: at every resync and after every
// audit device change it sees (an enable, a disable, a disable whose response never came), it
// lists Vault's devices and reports, once each time Vault gets into that state, that no file or
// syslog device records beside the sockets.
//
// Where it cannot tell: listing sys/audit needs read and sudo on it, which the shipped policy
// grants; a token without them gets a permission error, logged once, and the gauge says -1
// (unknown). Between two checks (5m by default) a change the guard does not see — one made while
// its socket was not connected — is found at the next resync. A socket device is not assumed to be
// the guard's or anyone's: any socket device can fail Vault's requests, so a guard socket beside a
// SIEM socket and nothing else is reported all the same. A file device counts as durable whatever
// its file_path (a full volume, or file_path=discard, is not checked).

// AuditDevice is one enabled audit device as Vault lists it.
type AuditDevice struct {
	// Path is where it is enabled, with Vault's trailing '/' ("credchain/").
	Path string
	// Type is "file", "socket" or "syslog".
	Type string
	// Address is a socket device's address option ("" for other types).
	Address string
}

// AuditDevices implements VaultAPI. Audit devices exist in the root namespace only.
func (v *Vault) AuditDevices(ctx context.Context) ([]AuditDevice, error) {
	m, err := v.Client.Sys().ListAuditWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing audit devices: %w", err)
	}
	out := make([]AuditDevice, 0, len(m))
	for path, a := range m {
		if a == nil {
			continue
		}
		d := AuditDevice{Path: path, Type: a.Type}
		if a.Type == "socket" {
			d.Address = a.Options["address"]
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b AuditDevice) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// What credchain_auditguard_audit_devices_socket_only says.
const (
	socketOnlyUnknown = -1 // not checked yet, or the listing failed (a permission error: logged once)
	socketOnlyNo      = 0  // a file or syslog device records beside the sockets, or no device is enabled
	socketOnlyYes     = 1  // every enabled device is a socket device
)

func newSocketOnlyGauge() prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "credchain_auditguard_audit_devices_socket_only",
		Help: "1 when every audit device enabled in Vault is a socket device (the guard's among them): Vault then refuses requests whenever the guard is down or unreachable; 0 when a file or syslog device records beside them; -1 when the guard cannot tell (not checked yet, or its token lacks read and sudo on sys/audit)."})
	g.Set(socketOnlyUnknown)
	return g
}

// auditDeviceState is what the last check of Vault's audit devices found. Only the processing
// goroutine uses it.
type auditDeviceState struct {
	// reported: audit.guard_only_device was sent for the current socket-only state; cleared when a
	// check finds a durable device again, so that a second time is reported too.
	reported bool
	// deniedLogged: the permission error was logged; cleared by a listing that succeeds.
	deniedLogged bool
}

// checkAuditDevices lists Vault's audit devices, sets the gauge and reports Vault's getting into
// a socket-only state once.
func (g *Guard) checkAuditDevices(ctx context.Context) {
	devs, err := g.vault.AuditDevices(ctx)
	if err != nil {
		g.metrics.AuditSocketOnly.Set(socketOnlyUnknown)
		if !isPermissionDenied(err) {
			g.log.Error(err, "listing Vault's audit devices; cannot tell whether only socket devices are enabled")
			return
		}
		if !g.auditDevices.deniedLogged {
			g.auditDevices.deniedLogged = true
			g.log.Error(err, "the guard's token may not list Vault's audit devices (read and sudo on sys/audit): it cannot tell whether it is Vault's only audit device",
				"metric", "credchain_auditguard_audit_devices_socket_only", "value", socketOnlyUnknown)
		}
		return
	}
	g.auditDevices.deniedLogged = false
	var sockets []string
	durable := 0
	for _, d := range devs {
		if d.Type != "socket" {
			durable++
			continue
		}
		s := d.Path
		if d.Address != "" {
			s += " → " + d.Address
		}
		sockets = append(sockets, s)
	}
	if len(sockets) == 0 || durable > 0 {
		g.metrics.AuditSocketOnly.Set(socketOnlyNo)
		if g.auditDevices.reported {
			g.auditDevices.reported = false
			g.log.Info("a file or syslog audit device records beside the socket devices again")
		}
		return
	}
	g.metrics.AuditSocketOnly.Set(socketOnlyYes)
	if g.auditDevices.reported {
		return
	}
	g.auditDevices.reported = true
	g.emit(ctx, events.Event{Type: events.AuditGuardOnly, Object: "sys/audit", Action: "none",
		Message: fmt.Sprintf("every audit device enabled in Vault is a socket device (%s): Vault refuses a request that no audit device can record, so while credchain (or the network to it) is down Vault refuses requests, and while it stalls each audited request waits for the socket's write_timeout; enable a file audit device now (vault audit enable file file_path=/vault/audit/audit.log) and keep it beside the socket",
			strings.Join(sockets, ", "))})
}

// isPermissionDenied reports whether err is Vault's 403.
func isPermissionDenied(err error) bool {
	var re *vault.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}
