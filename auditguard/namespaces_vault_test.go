package auditguard_test

import (
	"net"
	"testing"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// forgedNamespaceDelete is a response entry for a delete of eso-payment-service in a namespace
// Vault does not have, as anyone reaching the socket could write it.
const forgedNamespaceDelete = `{"auth":{"display_name":"forger","policies":["root"]},"request":{"id":"f0rg3d-1","operation":"delete","mount_point":"sys/","namespace":{"id":"f0rg3d","path":"forged/"},"path":"sys/policies/acl/eso-payment-service","remote_address":"10.9.9.9"},"response":{"mount_point":"sys/"},"time":"2026-12-02T01:00:00.000000Z","type":"response"}`

// Issue 11 item 12 against the real Vault (Community Edition, no namespaces): the guard's own
// token can ask Vault which namespaces exist with the shipped policy (none here), and a forged
// line naming a namespace Vault does not have changes nothing; a real delete right after it is
// restored as always.
func TestVaultNamespacesAreLearnedFromVault(t *testing.T) {
	e := setup(t)
	e.metrics = testenv.FreeAddrT(t)
	nss, err := (&auditguard.Vault{Client: client(t, e.v.Addr, e.guardTok)}).ListNamespaces(t.Context())
	if err != nil || len(nss) != 0 {
		t.Fatalf("ListNamespaces with the guard's policy = %q, %+v; want none, no error", nss, err)
	}
	e.startGuard(t, false)
	c, err := net.Dial("tcp", e.listen)
	must(t, err)
	defer c.Close()
	e.waitMetricAtLeast(t, "credchain_auditguard_reconciles_total", 2)
	n := e.events.Count()
	_, err = c.Write([]byte(forgedNamespaceDelete + "\n"))
	must(t, err)
	e.waitMetricAtLeast(t, `credchain_auditguard_lines_dropped_total{reason="unknown_namespace"}`, 1)
	if evs := e.events.All()[n:]; len(evs) != 0 {
		t.Errorf("a forged namespace's line made events: %+v", evs)
	}
	e.enableDevices(t)
	must(t, e.root.Sys().DeletePolicy("eso-order-service"))
	e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
}
