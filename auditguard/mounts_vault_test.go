package auditguard_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Issue 11 items 5 and 7 against the real Vault: auth mount changes, and what a policy.deleted
// says was checked.

// TestVaultAuthMountDisabled (item 5): disabling the Kubernetes auth mount takes both its roles at
// once; the guard reports it with the roles and their policies, and its index no longer holds them
// (a delete of their policies is recorded, not restored).
func TestVaultAuthMountDisabled(t *testing.T) {
	e := setup(t)
	e.role(t, "inventory", "eso-payment-service", "old-team")
	e.startGuard(t, true)
	e.enableDevices(t)
	n := e.events.Count()
	must(t, e.root.Sys().DisableAuth("kubernetes"))
	ev := e.waitEvents(t, n, events.AuthMountDisabled)()[0]
	if ev.Object != "auth/kubernetes" || ev.Action != "none" || ev.Actor == nil || ev.Actor.DisplayName != "token" ||
		!slices.Equal(ev.Roles, []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}, {Mount: "kubernetes", Name: "inventory"}}) ||
		!strings.Contains(ev.Message, "2 roles (external-secrets-operator, inventory)") ||
		!strings.Contains(ev.Message, "the policies they referenced (eso-order-service, eso-payment-service, old-team) still exist") {
		t.Errorf("event = %+v", ev)
	}
	testenv.WriteExample(t, ev) // for docs/events.md
	e.flush(t)                  // through both devices: room for a duplicate
	if got := e.events.OfType(events.AuthMountDisabled); len(got) != 1 {
		t.Errorf("%s events = %+v, want one", events.AuthMountDisabled, got)
	}

	n = e.events.Count()
	must(t, e.root.Sys().DeletePolicy("eso-order-service"))
	del := e.events.wait(t, events.PolicyDeleted, "eso-order-service", n)
	if del.Action != "recorded" || len(del.Roles) != 0 || !strings.Contains(del.Message, "no Kubernetes auth mount is enabled") {
		t.Errorf("event = %+v", del)
	}
	if body := e.policy(t, "eso-order-service"); body != "" {
		t.Errorf("restored although its roles went with their mount: %q", body)
	}
}

// TestVaultAuthMountMoved (item 5): `vault auth move auth/kubernetes auth/k8s-prod` — Vault 1.21
// answers with a migration ID and moves the mount after the response. The guard follows it: the
// move is reported, and the roles are indexed under their new path, so a role deleted there no
// longer keeps its policies referenced. Before, the index kept kubernetes/external-secrets-operator
// until the next resync and the policy's delete below was undone.
func TestVaultAuthMountMoved(t *testing.T) {
	e := setup(t)
	e.startGuard(t, true)
	e.enableDevices(t)
	n := e.events.Count()
	start := time.Now()
	m, err := e.root.Sys().StartRemount("auth/kubernetes", "auth/k8s-prod")
	must(t, err)
	ev := e.waitEvents(t, n, events.AuthMountMoved)()[0]
	t.Logf("remount %s: reported %s after the request", m.MigrationID, time.Since(start))
	if ev.Object != "auth/kubernetes" || ev.Actor == nil || ev.Actor.DisplayName != "token" ||
		!slices.Equal(ev.Roles, []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}}) ||
		!strings.Contains(ev.Message, "was moved to auth/k8s-prod/") {
		t.Errorf("event = %+v", ev)
	}
	testenv.WriteExample(t, ev)
	st, err := e.root.Sys().RemountStatus(m.MigrationID)
	must(t, err)
	if st.MigrationInfo.MigrationStatus != "success" {
		t.Fatalf("migration %+v", st.MigrationInfo)
	}

	_, err = e.root.Logical().Delete("auth/k8s-prod/role/external-secrets-operator")
	must(t, err)
	e.flush(t)
	n = e.events.Count()
	must(t, e.root.Sys().DeletePolicy("eso-order-service"))
	if del := e.events.wait(t, events.PolicyDeleted, "eso-order-service", n); del.Action != "recorded" ||
		!strings.Contains(del.Message, "no Kubernetes auth role on auth/k8s-prod/ references it") {
		t.Errorf("event = %+v", del)
	}
	if body := e.policy(t, "eso-order-service"); body != "" {
		t.Errorf("restored although the only role referencing it was deleted: %q", body)
	}
}

// TestVaultUnreferencedPolicyScope (item 7): a policy granted only by a userpass user, a token role
// and an identity group — none of which the guard reads — is deleted. The event must not say
// "no role references it": it names the Kubernetes auth mounts checked and what was not checked.
func TestVaultUnreferencedPolicyScope(t *testing.T) {
	e := setup(t)
	sys := e.root.Sys()
	must(t, sys.EnableAuthWithOptions("clusters/prod", &vault.EnableAuthOptions{Type: "kubernetes"}))
	must(t, sys.PutPolicy("ci-deploy", `path "secret/data/ci/*" { capabilities = ["read"] }`))
	for path, data := range map[string]map[string]any{
		"auth/userpass/users/ci":    {"password": "s3cret", "token_policies": "ci-deploy"},
		"auth/token/roles/deployer": {"allowed_policies": "ci-deploy"},
		"identity/group/name/ci":    {"policies": "ci-deploy"},
	} {
		_, err := e.root.Logical().Write(path, data)
		must(t, err)
	}
	e.startGuard(t, true)
	e.enableDevices(t)
	n := e.events.Count()
	must(t, sys.DeletePolicy("ci-deploy"))
	ev := e.events.wait(t, events.PolicyDeleted, "ci-deploy", n)
	const want = "no Kubernetes auth role on auth/clusters/prod/, auth/kubernetes/ references it (other auth methods, identity groups and token roles are not checked)"
	if !strings.Contains(ev.Message, want) || strings.Contains(ev.Message, "no Kubernetes auth role references it") {
		t.Errorf("message = %q, want it to contain %q", ev.Message, want)
	}
	testenv.WriteExample(t, ev)
}
