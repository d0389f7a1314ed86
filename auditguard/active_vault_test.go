package auditguard_test

import (
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

// Active roles (issue 15 item 2) against the real dev Vault. Role external-secrets-operator names
// eso-order-service and eso-payment-service and never logs in (a Kubernetes login needs a
// kube-apiserver to review the token); no blast radius, so no ESO store makes it active.
func TestActiveRoles(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	e := setup(t)
	stop := e.startDesired(t, func(*auditguard.Config) {})
	e.enableDevices(t)
	bot := e.bot(t)
	role := []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}}

	t.Run("before the guard has watched a whole window, a role that never logged in is active", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		e.waitPolicy(t, "eso-order-service", orderServicePolicy)
		ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
		if ev.Rule != events.RuleActiveRole || ev.Active == nil || ev.Active.Why != events.ActiveUnwatched || ev.Active.Role != role[0] ||
			ev.Active.Since == nil || time.Since(*ev.Active.Since) > time.Hour ||
			!strings.Contains(ev.Message, "auth/kubernetes/role/external-secrets-operator is active: the guard has watched logins only since") {
			t.Errorf("event = %+v", ev)
		}
	})

	// The guard has watched for 31 days: its persisted watching-since is moved back.
	stop()
	store, err := auditguard.OpenStore(e.stateDir)
	must(t, err)
	since, ok, err := store.WatchingSince()
	must(t, err)
	if !ok || time.Since(since) > time.Hour {
		t.Errorf("watching since %v (set %v), want the first start", since, ok)
	}
	must(t, store.SetWatchingSince(time.Now().Add(-31*24*time.Hour)))
	must(t, store.Close())
	e.startDesired(t, func(*auditguard.Config) {})

	t.Run("after the window, a policy only a never-seen role names stays deleted", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		ev := e.events.wait(t, events.PolicyDeleted, "eso-order-service", n)
		if ev.Rule != events.RuleInactiveRole || ev.Action != "recorded" || len(ev.Roles) != 1 || ev.Roles[0] != role[0] ||
			ev.Actor == nil || ev.Actor.DisplayName != "userpass-cleanup-bot" ||
			!strings.Contains(ev.Message, "auth/kubernetes/role/external-secrets-operator: never seen") {
			t.Errorf("event = %+v", ev)
		}
		if got := ofType(e.settled(t, n), events.PolicyRestored); len(got) != 0 {
			t.Errorf("restored: %+v", got)
		}
		if body := e.policy(t, "eso-order-service"); body != "" {
			t.Errorf("eso-order-service is back: %q", body)
		}
		testenv.WriteExample(t, ev)
	})

	t.Run("a role whose login the guard saw is active: its policy is restored", func(t *testing.T) {
		sendLine(t, e.listen, kubernetesLogin(t, "External-Secrets-Operator"))
		e.flush(t)
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-payment-service"))
		ev := e.events.wait(t, events.PolicyRestored, "eso-payment-service", n)
		if ev.Rule != events.RuleActiveRole || len(ev.Roles) != 1 || ev.Roles[0] != role[0] || ev.Active == nil ||
			ev.Active.Why != events.ActiveByLogin || ev.Active.LastLogin == nil || time.Since(*ev.Active.LastLogin) > time.Hour ||
			!strings.Contains(ev.Message, "auth/kubernetes/role/external-secrets-operator is active: it last logged in at") {
			t.Errorf("event = %+v", ev)
		}
		e.waitPolicy(t, "eso-payment-service", strings.ReplaceAll(orderServicePolicy, "order", "payment"))
	})
}

// TestActiveRoleUsedByStore: the other half of "active" (issue 15 item 2), against a real Vault
// and a real kube-apiserver with ESO's CRDs. The guard has watched logins for 31 days and seen
// none, so only an ESO store can make external-secrets-operator active: while SecretStore
// prod/vault-backend logs in with it, a delete of a policy it names is restored and the event
// names the store; once the store is gone, the next delete is a cleanup, left deleted.
func TestActiveRoleUsedByStore(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	c, kubeconfig := startKube(t)
	store := vaultStore("SecretStore", "prod", "vault-backend", "external-secrets-operator", "")
	must(t, c.Create(t.Context(), store))
	e := setup(t)
	must(t, os.MkdirAll(e.stateDir, 0o700))
	st, err := auditguard.OpenStore(e.stateDir)
	must(t, err)
	must(t, st.SetWatchingSince(time.Now().Add(-31*24*time.Hour)))
	must(t, st.Close())
	e.kube, e.metrics = kubeconfig, testenv.FreeAddrT(t)
	e.startGuard(t, false)
	e.enableDevices(t)
	waitMetric(t, e.metrics, "credchain_auditguard_blast_radius_ready", 1)
	bot := e.bot(t)
	role := events.RoleRef{Mount: "kubernetes", Name: "external-secrets-operator"}

	t.Run("an ESO store logs in with the role: restored, naming the store", func(t *testing.T) {
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
		want := events.ActiveRole{Role: role, Why: events.ActiveByStore, Store: "SecretStore prod/vault-backend"}
		if ev.Rule != events.RuleActiveRole || ev.Active == nil || *ev.Active != want ||
			!strings.Contains(ev.Message, "auth/kubernetes/role/external-secrets-operator is active: ESO store SecretStore prod/vault-backend logs in with it") {
			t.Errorf("event = %+v", ev)
		}
		e.waitPolicy(t, "eso-order-service", orderServicePolicy)
	})

	t.Run("the store is gone: the next delete is a cleanup", func(t *testing.T) {
		must(t, c.Delete(t.Context(), store))
		// The guard's informer learns of the delete asynchronously: until it has, a delete is
		// still restored (and the test tries again).
		for attempt := 0; ; attempt++ {
			n := e.events.Count()
			must(t, bot.Sys().DeletePolicy("eso-payment-service"))
			evs := e.settled(t, n)
			if got := ofType(evs, events.PolicyDeleted); len(got) == 1 {
				if ev := got[0]; ev.Rule != events.RuleInactiveRole || ev.Active != nil || len(ev.Roles) != 1 || ev.Roles[0] != role ||
					!strings.Contains(ev.Message, "auth/kubernetes/role/external-secrets-operator: never seen") {
					t.Errorf("event = %+v", ev)
				}
				break
			}
			if restored := ofType(evs, events.PolicyRestored); len(restored) != 1 || attempt == 20 {
				t.Fatalf("attempt %d: events %+v", attempt, evs)
			}
			e.waitPolicy(t, "eso-payment-service", strings.ReplaceAll(orderServicePolicy, "order", "payment"))
			time.Sleep(200 * time.Millisecond)
		}
		if body := e.policy(t, "eso-payment-service"); body != "" {
			t.Errorf("eso-payment-service is back: %q", body)
		}
	})
}

// kubernetesLogin is the response entry Vault 1.21 logs for a successful login on the kubernetes
// auth mount with role (the plugin's auth metadata, plain text; tokens and accessors HMAC'd), keys
// sorted as Vault marshals them.
func kubernetesLogin(t *testing.T, role string) []byte {
	t.Helper()
	auth := map[string]any{
		"accessor": "hmac-sha256:5f0c", "client_token": "hmac-sha256:9a1e", "display_name": "kubernetes-external-secrets-external-secrets",
		"entity_id": "0d7e4b1c-6c1a-4f0e-8d8e-1b2c3d4e5f60", "token_type": "service", "token_ttl": 3600,
		"metadata": map[string]string{"role": role, "service_account_name": "external-secrets", "service_account_namespace": "external-secrets",
			"service_account_secret_name": "", "service_account_uid": "3b1f0c4e-2d6a-4f55-9a0e-6f1f7d2b9c11"},
		"policies":       []string{"default", "eso-order-service", "eso-payment-service"},
		"token_policies": []string{"default", "eso-order-service", "eso-payment-service"},
	}
	mount := map[string]any{"mount_accessor": "auth_kubernetes_1", "mount_class": "auth", "mount_point": "auth/kubernetes/",
		"mount_type": "kubernetes"}
	request := map[string]any{"id": "forged-login-1", "operation": "update", "path": "auth/kubernetes/login",
		"namespace": map[string]string{"id": "root"}, "remote_address": "10.0.0.7", "data": map[string]string{"jwt": "hmac-sha256:77aa", "role": "hmac-sha256:1c2d"}}
	for k, v := range mount {
		request[k] = v
	}
	response := map[string]any{"auth": auth}
	for k, v := range mount {
		response[k] = v
	}
	b, err := json.Marshal(map[string]any{"auth": auth, "request": request, "response": response,
		"time": time.Now().UTC().Format(time.RFC3339Nano), "type": "response"})
	must(t, err)
	return b
}

// sendLine writes one audit line to the guard's socket as a second Vault connection would.
func sendLine(t *testing.T, addr string, line []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	_, err = c.Write(append(line, '\n'))
	must(t, err)
	must(t, c.Close())
}
