package auditguard_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Issue 11's evasions, each against the real Vault: a delete the guard must see as the delete of a
// referenced policy although its path does not spell the name as the guard stores it.

// enableDevices enables the file device (first: Vault must never depend on the guard alone) and
// the guard's socket device.
func (e *env) enableDevices(t testing.TB) {
	t.Helper()
	sys := e.root.Sys()
	must(t, sys.EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": e.auditLog}}))
	must(t, sys.EnableAuditWithOptions("guard", &vault.EnableAuditOptions{Type: "socket",
		Options: map[string]string{"address": e.listen, "socket_type": "tcp"}}))
}

// role writes auth/kubernetes/role/<name> with token_policies.
func (e *env) role(t testing.TB, name string, policies ...string) {
	t.Helper()
	_, err := e.root.Logical().Write("auth/kubernetes/role/"+name, map[string]any{
		"bound_service_account_names": "eso", "bound_service_account_namespaces": "eso",
		"token_policies": strings.Join(policies, ","),
	})
	must(t, err)
}

// flush waits until the guard has processed everything Vault logged so far: a marker policy's
// delete is reported only after every entry before it.
func (e *env) flush(t testing.TB) {
	t.Helper()
	n := e.events.Count()
	must(t, e.root.Sys().PutPolicy("marker", `path "x" { capabilities = ["read"] }`))
	must(t, e.root.Sys().DeletePolicy("marker"))
	e.events.wait(t, events.PolicyDeleted, "marker", n)
}

// TestVaultPolicyNameNormalisation (issue 11 item 1): Vault trims whitespace and lower-cases a
// policy name before it deletes it, so each of these paths deletes eso-order-service. Each must be
// restored like the plain delete.
func TestVaultPolicyNameNormalisation(t *testing.T) {
	e := setup(t)
	e.startGuard(t, true)
	e.enableDevices(t)
	for name, path := range map[string]string{
		"trailing space (%20)":             "sys/policies/acl/eso-order-service ",
		"leading space, upper case":        "sys/policies/acl/ ESO-Order-Service",
		"surrounding spaces, upper case":   "sys/policies/acl/  ESO-ORDER-SERVICE  ",
		"legacy path with trailing spaces": "sys/policy/Eso-Order-Service  ",
	} {
		t.Run(name, func(t *testing.T) {
			n := e.events.Count()
			_, err := e.root.Logical().Delete(path)
			must(t, err)
			ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
			if !slices.Equal(ev.Roles, []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}}) {
				t.Errorf("roles = %+v", ev.Roles)
			}
			e.waitPolicy(t, "eso-order-service", orderServicePolicy)
		})
	}
}

// TestVaultPolicyNamesWithSlash (issue 11 item 2): Vault accepts policy names containing '/'; they
// are snapshotted, restored when referenced and reported when not.
func TestVaultPolicyNamesWithSlash(t *testing.T) {
	e := setup(t)
	const teamESO = `path "registry-creds/data/team/eso" { capabilities = ["read"] }`
	must(t, e.root.Sys().PutPolicy("team/old", `path "secret/team/old/*" { capabilities = ["read"] }`))
	e.startGuard(t, true)
	e.enableDevices(t)
	// Written while the guard runs: the snapshot comes from the write's entry.
	must(t, e.root.Sys().PutPolicy("team/eso", teamESO))
	e.role(t, "team-eso", "team/eso")
	e.flush(t)

	n := e.events.Count()
	must(t, e.root.Sys().DeletePolicy("team/eso"))
	ev := e.events.wait(t, events.PolicyRestored, "team/eso", n)
	if !slices.Equal(ev.Roles, []events.RoleRef{{Mount: "kubernetes", Name: "team-eso"}}) {
		t.Errorf("roles = %+v", ev.Roles)
	}
	e.waitPolicy(t, "team/eso", teamESO)

	n = e.events.Count()
	must(t, e.root.Sys().DeletePolicy("team/old"))
	if ev := e.events.wait(t, events.PolicyDeleted, "team/old", n); ev.Action != "recorded" {
		t.Errorf("event = %+v", ev)
	}
}

// TestVaultAuditDisableTrailingSlash (issue 11 item 3): Vault appends '/' to the path of an audit
// device it disables, so DELETE sys/audit/guard/ disables device "guard". It is reported once,
// like DELETE sys/audit/guard.
func TestVaultAuditDisableTrailingSlash(t *testing.T) {
	e := setup(t)
	e.startGuard(t, true)
	e.enableDevices(t)
	n := e.events.Count()
	// Over plain HTTP, as curl sends it: the API client strips the trailing slash.
	req, err := http.NewRequest(http.MethodDelete, e.v.Addr+"/v1/sys/audit/guard/", nil)
	must(t, err)
	req.Header.Set("X-Vault-Token", e.v.RootToken)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE sys/audit/guard/: %s", resp.Status)
	}
	audits, err := e.root.Sys().ListAudit()
	must(t, err)
	if _, ok := audits["guard/"]; ok {
		t.Fatal("device guard still enabled: this Vault does not normalise the path")
	}
	disabled := e.waitEvents(t, n, events.AuditDisabled)
	e.flush(t) // through the file device, which is still enabled: room for a duplicate
	if got := disabled(); len(got) != 1 || got[0].Object != "sys/audit/guard" {
		t.Errorf("audit.device_disabled events = %+v, want one for sys/audit/guard", got)
	}
}

// TestVaultNestedKubernetesMounts (issue 11 item 4): the shipped policy covers Kubernetes auth
// mounts one and two path segments deep; one deeper is unreadable to the guard, which reports it
// and goes on guarding the rest instead of retrying its start-up forever.
func TestVaultNestedKubernetesMounts(t *testing.T) {
	e := setup(t)
	sys := e.root.Sys()
	for _, m := range []string{"clusters/prod", "clusters/eu/prod"} {
		must(t, sys.EnableAuthWithOptions(m, &vault.EnableAuthOptions{Type: "kubernetes"}))
		_, err := e.root.Logical().Write("auth/"+m+"/role/eso", map[string]any{
			"bound_service_account_names": "eso", "bound_service_account_namespaces": "eso", "token_policies": "team-prod",
		})
		must(t, err)
	}
	const teamProd = `path "registry-creds/data/prod" { capabilities = ["read"] }`
	must(t, sys.PutPolicy("team-prod", teamProd))
	e.startGuard(t, true) // ready although one mount is unreadable
	e.enableDevices(t)
	got := e.events.OfType(events.AuthMountUnreadable)
	if len(got) != 1 || got[0].Object != "auth/clusters/eu/prod" || !strings.Contains(got[0].Error, "permission denied") {
		t.Errorf("events = %+v, want one %s for auth/clusters/eu/prod", e.events.All(), events.AuthMountUnreadable)
	}
	n := e.events.Count()
	must(t, sys.DeletePolicy("team-prod"))
	ev := e.events.wait(t, events.PolicyRestored, "team-prod", n)
	if !slices.Equal(ev.Roles, []events.RoleRef{{Mount: "clusters/prod", Name: "eso"}}) {
		t.Errorf("roles = %+v", ev.Roles)
	}
	e.waitPolicy(t, "team-prod", teamProd)
}

// TestVaultAuditDeviceFormats (issue 11 item 6): a socket device with a prefix still feeds the
// guard; a file device with format=jsonx cannot (XML, and no newline at all), and says so
// (lines_unparsable_total) at its first 64 KiB rather than after buffering 64 MiB.
func TestVaultAuditDeviceFormats(t *testing.T) {
	e := setup(t)
	e.metrics = testenv.FreeAddrT(t)
	e.startGuard(t, true)
	sys := e.root.Sys()
	must(t, sys.EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": e.auditLog, "format": "jsonx"}}))
	must(t, sys.EnableAuditWithOptions("guard", &vault.EnableAuditOptions{Type: "socket",
		Options: map[string]string{"address": e.listen, "socket_type": "tcp", "prefix": "vault-audit: "}}))
	n := e.events.Count()
	must(t, sys.DeletePolicy("eso-order-service"))
	e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
	e.waitPolicy(t, "eso-order-service", orderServicePolicy)
	for range 40 { // 64 KiB of jsonx
		e.flush(t)
	}
	e.waitMetricAtLeast(t, "credchain_auditguard_lines_unparsable_total", 1)
}
