package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/events"
)

// Healthy is scenario 1: the chain works end to end. The ExternalSecret syncs through Vault's
// Kubernetes auth, the Secret's credential authenticates at the registry, the Deployment is admitted.
func (s *Stack) Healthy(ctx context.Context) error {
	s.Narrator.Step("Scenario 1 — the healthy chain: ClusterSecretStore vault → ExternalSecret prod/%s → Secret %s", ExternalSecret, PullSecret)
	if _, err := s.kubectl(ctx, s.storeAndSecretYAML(), "apply", "-f", "-"); err != nil {
		return err
	}
	st, err := s.waitSync(ctx, "True", "SecretSynced", SyncState{})
	if err != nil {
		return err
	}
	s.Narrator.Say("external-secrets", fmt.Sprintf("Ready=%s %s: %s", st.Status, st.Reason, st.Message))
	if _, err := s.kubectl(ctx, "", "get", "externalsecret", ExternalSecret, "-n", Namespace); err != nil {
		return err
	}
	s.Narrator.Step("Runbook step 3 — the credential in the Secret authenticates at the registry")
	if err := s.verifyCredential(ctx); err != nil {
		return err
	}
	if code, _, err := s.RegistryAuth(ctx, "", ""); err != nil || code != 401 {
		return fmt.Errorf("registry /v2/ without credentials: %d, %v; want 401", code, err)
	}
	s.Narrator.Step("Deploying order-service with imagePullSecrets [%s]: credchain admits it", PullSecret)
	if _, err := s.kubectl(ctx, s.deploymentYAML(), "apply", "-f", "-"); err != nil {
		return err
	}
	s.Narrator.Step("credchain check: every ExternalSecret's Vault chain, as ESO and Vault will evaluate it")
	if err := s.checkOK(ctx); err != nil {
		return err
	}
	if err := s.explainOK(ctx); err != nil {
		return err
	}
	return s.explainRegistryOK(ctx)
}

// GuardOn is scenario 2: alice deletes the policy while the guard runs. The guard restores it and
// says who and what would have broken; a forced resync and a rollout restart still work. It returns
// the window during which the policy was missing, as a client sees it: from the delete returning to
// the policy being readable again.
func (s *Stack) GuardOn(ctx context.Context) (time.Duration, error) {
	s.Narrator.Step("Scenario 2 — the guard is on")
	if s.guard == nil {
		if err := s.StartGuard(ctx); err != nil {
			return 0, err
		}
	}
	ev0 := len(s.eventsNow())
	_, slack0 := s.SlackPostsSince(0)
	s.Narrator.Step("The cleanup: alice deletes policy %s (through the API, timed)", Policy)
	s.Narrator.Command("VAULT_TOKEN=<alice's token> vault policy delete "+Policy, "")
	window, err := s.deleteTimed(ctx)
	if err != nil {
		return 0, err
	}
	s.Narrator.Say("vault", fmt.Sprintf("policy %s readable again %s after the delete returned, same body", Policy, window.Round(100*time.Microsecond)))
	if _, err := s.vaultCLI(ctx, s.vault.RootToken, "", "policy", "read", Policy); err != nil {
		return 0, err
	}
	e, err := s.waitEvent(ctx, ev0, events.PolicyRestored, Policy)
	if err != nil {
		return 0, err
	}
	if err := checkRestored(e); err != nil {
		return 0, err
	}
	s.Narrator.Say("nats credchain."+Cluster+"."+e.Type, e.Message+"\n"+describeBlast(e.BlastRadius))
	post, err := s.waitSlack(ctx, slack0, Policy, alice, "order-service")
	if err != nil {
		return 0, err
	}
	s.Narrator.Say("slack", post)

	s.Narrator.Step("Runbook step 2 — a forced resync still succeeds")
	at, err := s.forceSync(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := s.waitSync(ctx, "True", "SecretSynced", at); err != nil {
		return 0, err
	}
	if err := s.verifyCredential(ctx); err != nil {
		return 0, err
	}
	s.Narrator.Step("Runbook step 4 — the rollout restart is admitted")
	if _, err := s.kubectl(ctx, "", "rollout", "restart", "deployment/"+Workload, "-n", Namespace); err != nil {
		return 0, err
	}
	return window, nil
}

// deleteTimed deletes the policy as alice through the API and polls until it is readable again
// with the same body: the window a client sees.
func (s *Stack) deleteTimed(ctx context.Context) (time.Duration, error) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = s.vault.Addr
	a, err := vaultapi.NewClient(cfg)
	if err != nil {
		return 0, err
	}
	a.SetToken(s.aliceToken)
	if err := a.Sys().DeletePolicyWithContext(ctx, Policy); err != nil {
		return 0, err
	}
	deleted := time.Now()
	for {
		body, err := s.PolicyBody(ctx, Policy)
		if err != nil {
			return 0, err
		}
		if body != "" {
			window := time.Since(deleted)
			if body != OrderServicePolicy {
				return 0, fmt.Errorf("restored policy differs:\n%s", body)
			}
			return window, nil
		}
		if time.Since(deleted) > 30*time.Second {
			return 0, fmt.Errorf("policy %s not restored 30s after the delete:\n%s", Policy, s.guard.tail())
		}
		time.Sleep(time.Millisecond)
	}
}

// checkRestored checks a policy.restored event names alice and the whole blast radius.
func checkRestored(e events.Event) error {
	if e.Actor == nil || !strings.Contains(e.Actor.DisplayName, alice) {
		return fmt.Errorf("policy.restored actor %+v does not name %s", e.Actor, alice)
	}
	if !slices.ContainsFunc(e.Roles, func(r events.RoleRef) bool { return r.Name == "external-secrets-operator" }) {
		return fmt.Errorf("policy.restored roles %+v lack external-secrets-operator", e.Roles)
	}
	br := e.BlastRadius
	if br == nil {
		return fmt.Errorf("policy.restored has no blast radius: %+v", e)
	}
	for _, w := range []struct {
		refs []events.ObjectRef
		want events.ObjectRef
	}{
		{br.Stores, events.ObjectRef{Kind: "ClusterSecretStore", Name: "vault"}},
		{br.ExternalSecrets, events.ObjectRef{Kind: "ExternalSecret", Namespace: Namespace, Name: ExternalSecret}},
		{br.Secrets, events.ObjectRef{Kind: "Secret", Namespace: Namespace, Name: PullSecret}},
		{br.Workloads, events.ObjectRef{Kind: "Deployment", Namespace: Namespace, Name: Workload}},
	} {
		if !slices.Contains(w.refs, w.want) {
			return fmt.Errorf("blast radius lacks %s %s/%s: %+v", w.want.Kind, w.want.Namespace, w.want.Name, br)
		}
	}
	return nil
}

func describeBlast(br *events.BlastRadius) string {
	if br == nil {
		return "(no blast radius)"
	}
	var b strings.Builder
	b.WriteString("blast radius:")
	for _, g := range []struct {
		what string
		refs []events.ObjectRef
	}{{"store", br.Stores}, {"ExternalSecret", br.ExternalSecrets}, {"Secret", br.Secrets}, {"workload", br.Workloads}} {
		for _, r := range g.refs {
			fmt.Fprintf(&b, "\n  %-15s %s %s", g.what+":", r.Kind, strings.TrimPrefix(r.Namespace+"/"+r.Name, "/"))
		}
	}
	return b.String()
}

// deleteAsAlice runs `vault policy delete` with alice's token and checks the delete sticks (no guard).
func (s *Stack) deleteAsAlice(ctx context.Context) error {
	s.Narrator.Step("alice deletes policy %s", Policy)
	if _, err := s.vaultCLI(ctx, s.aliceToken, "", "policy", "delete", Policy); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	body, err := s.PolicyBody(ctx, Policy)
	if err != nil {
		return err
	}
	if body != "" {
		return fmt.Errorf("policy %s is back though no guard runs", Policy)
	}
	return nil
}

// GuardOff is scenario 3: the incident as it happened. Without the guard the delete sticks, the
// next sync fails with Vault's 403, and credchain's webhook denies the rollout with that reason
// instead of letting pods go to ImagePullBackOff. The runbook's fix makes the same update admitted;
// a guard started afterwards finds nothing to do.
func (s *Stack) GuardOff(ctx context.Context) error {
	s.Narrator.Step("Scenario 3 — the guard is off: the incident as it happened")
	s.StopGuard()
	if err := s.deleteAsAlice(ctx); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{s.checkBroken, s.syncFails, s.rolloutDenied, s.explainNamesTheBreak,
		s.runbookFix, s.checkOK, s.explainOK, s.guardFindsNothing} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// syncFails forces ESO's next sync, which fails with Vault's 403, and waits until the webhook's
// cache holds ESO's warning event.
func (s *Stack) syncFails(ctx context.Context) error {
	s.Narrator.Step("ESO's next sync (forced, as the runbook does) fails")
	if _, err := s.forceSync(ctx); err != nil {
		return err
	}
	st, err := s.waitSync(ctx, "False", "SecretSyncedError", SyncState{})
	if err != nil {
		return err
	}
	s.Narrator.Say("external-secrets", fmt.Sprintf("Ready=%s %s: %s", st.Status, st.Reason, st.Message))
	if _, err := s.kubectl(ctx, "", "get", "externalsecret", ExternalSecret, "-n", Namespace); err != nil {
		return err
	}
	// The webhook reads ESO's Warning event for the 403; wait until its cache has it.
	if err := eventually(ctx, 30*time.Second, func() error {
		msg, err := s.admissionDryRun(ctx)
		if err != nil {
			return err
		}
		if !strings.Contains(msg, "403") {
			return fmt.Errorf("dry-run rollout restart: %q, want a denial naming Vault's 403", msg)
		}
		return nil
	}); err != nil {
		return err
	}
	return nil
}

// rolloutDenied restarts the rollout as the platform engineer: the webhook denies it naming the
// ExternalSecret and Vault's 403, and reports that one denial (not the dry runs before it).
func (s *Stack) rolloutDenied(ctx context.Context) error {
	s.Narrator.Step("Someone restarts the rollout: credchain denies it and says why")
	ev0 := len(s.eventsNow()) // the dry runs above reported nothing; this denial is reported
	out, err := s.kubectl(ctx, "", "rollout", "restart", "deployment/"+Workload, "-n", Namespace)
	if err == nil {
		return fmt.Errorf("rollout restart admitted while %s is not synced:\n%s", ExternalSecret, out)
	}
	for _, want := range []string{`admission webhook "pullsecrets.credchain.io" denied the request`, Namespace + "/" + ExternalSecret, "403"} {
		if !strings.Contains(out, want) {
			return fmt.Errorf("denial lacks %q:\n%s", want, out)
		}
	}
	e, err := s.waitEvent(ctx, ev0, events.AdmissionDenied, Workload)
	if err != nil {
		return err
	}
	if !strings.Contains(e.Message, "403") || e.Actor == nil || e.Actor.DisplayName != "platform-engineer" {
		return fmt.Errorf("admission.denied names %+v and says %q; want the platform engineer's rollout and Vault's 403", e.Actor, e.Message)
	}
	if evs, _ := s.EventsSince(0); countType(evs[:ev0], events.AdmissionDenied) != 0 {
		return fmt.Errorf("the server-side dry runs were reported as admission.denied")
	}
	s.Narrator.Say("nats credchain."+Cluster+"."+e.Type, e.Message)

	return nil
}

// runbookFix is the runbook's four steps: restore the policy and role, force a resync, verify the
// credential, and the same rollout restart is admitted.
func (s *Stack) runbookFix(ctx context.Context) error {
	s.Narrator.Step("Runbook step 1 — restore the policy and the role")
	if _, err := s.vaultCLI(ctx, s.vault.RootToken, OrderServicePolicy, "policy", "write", Policy, "-"); err != nil {
		return err
	}
	if _, err := s.vaultCLI(ctx, s.vault.RootToken, "", "write", "auth/kubernetes/role/external-secrets-operator",
		"bound_service_account_names=external-secrets", "bound_service_account_namespaces=external-secrets",
		"policies="+strings.Join(esoPolicies, ","), "ttl=1h"); err != nil {
		return err
	}
	s.Narrator.Step("Runbook step 2 — force the ExternalSecret to resync")
	at, err := s.forceSync(ctx)
	if err != nil {
		return err
	}
	if _, err := s.waitSync(ctx, "True", "SecretSynced", at); err != nil {
		return err
	}
	if _, err := s.kubectl(ctx, "", "get", "externalsecret", ExternalSecret, "-n", Namespace); err != nil {
		return err
	}
	s.Narrator.Step("Runbook step 3 — verify the credential")
	if err := s.verifyCredential(ctx); err != nil {
		return err
	}
	if err := eventually(ctx, 30*time.Second, func() error {
		msg, err := s.admissionDryRun(ctx)
		if err == nil && msg != "" {
			return fmt.Errorf("still denied: %s", msg)
		}
		return err
	}); err != nil {
		return err
	}
	s.Narrator.Step("Runbook step 4 — the same rollout restart is admitted")
	if _, err := s.kubectl(ctx, "", "rollout", "restart", "deployment/"+Workload, "-n", Namespace); err != nil {
		return err
	}

	return nil
}

// guardFindsNothing starts the guard after the fix: its reconcile must restore nothing and report
// no policy event.
func (s *Stack) guardFindsNothing(ctx context.Context) error {
	s.Narrator.Step("Starting the guard again: its reconcile finds nothing to do")
	evGuard := len(s.eventsNow())
	if err := s.StartGuard(ctx); err != nil {
		return err
	}
	if err := eventually(ctx, 30*time.Second, func() error {
		n, err := s.GuardMetric(ctx, "credchain_auditguard_reconciles_total", "")
		if err == nil && n < 1 {
			err = fmt.Errorf("no reconcile pass yet")
		}
		return err
	}); err != nil {
		return err
	}
	restored, err := s.GuardMetric(ctx, "credchain_auditguard_restores_total", `result="ok"`)
	if err != nil {
		return err
	}
	evs, _ := s.EventsSince(evGuard)
	for _, e := range evs {
		if strings.HasPrefix(e.Type, "policy.") {
			return fmt.Errorf("the guard's reconcile after the runbook's fix emitted %s: %s", e.Type, e.Message)
		}
	}
	if restored != 0 {
		return fmt.Errorf("the guard's reconcile restored %v policies after the runbook's fix", restored)
	}
	s.Narrator.Say("auditguard", "reconcile pass done: 0 restores, no policy events")
	return nil
}

func countType(evs []events.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// explainNamesTheBreak is explain after the denial: the broken link is the missing policy, with the
// fix (scenario 5 runs that fix as printed; here the runbook's steps follow, as in the incident).
func (s *Stack) explainNamesTheBreak(ctx context.Context) error {
	_, err := s.explainBroken(ctx)
	return err
}

// ExplainFixes is scenario 5 (the test's, not the demo's): with the guard off, explain's printed
// fixes repair the chain when run as printed — for the deleted policy and for a role rebound to
// another ServiceAccount —, Vault unreachable leaves the Kubernetes half, and --registry-check tells
// a credential the registry refuses.
func (s *Stack) ExplainFixes(ctx context.Context) error {
	s.Narrator.Step("Scenario 5 — explain's fixes, run as printed")
	s.StopGuard()
	if err := s.deleteAsAlice(ctx); err != nil {
		return err
	}
	fix, err := s.explainBroken(ctx)
	if err != nil {
		return err
	}
	if err := s.explainRunFix(ctx, fix); err != nil {
		return err
	}
	if err := s.explainBindingChanged(ctx); err != nil {
		return err
	}
	if err := s.explainVaultUnreachable(ctx, 0); err != nil {
		return err
	}
	return s.explainRegistryWrongCredential(ctx)
}

func (s *Stack) eventsNow() []events.Event {
	evs, _ := s.EventsSince(0)
	return evs
}

// GuardRestarted is scenario 4: the policy is deleted while the guard is down; started again, its
// reconcile restores the policy from the snapshot it kept. It returns the time from the guard's
// start to the policy being readable.
func (s *Stack) GuardRestarted(ctx context.Context) (time.Duration, error) {
	s.Narrator.Step("Scenario 4 — the guard restarts while the policy is deleted")
	s.StopGuard()
	ev0 := len(s.eventsNow())
	if err := s.deleteAsAlice(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := s.StartGuard(ctx); err != nil {
		return 0, err
	}
	if err := eventually(ctx, 2*time.Minute, func() error {
		body, err := s.PolicyBody(ctx, Policy)
		if err == nil && body != OrderServicePolicy {
			err = fmt.Errorf("policy %s is %q", Policy, body)
		}
		return err
	}); err != nil {
		return 0, err
	}
	took := time.Since(start)
	e, err := s.waitEvent(ctx, ev0, events.PolicyRestored, Policy)
	if err != nil {
		return 0, err
	}
	s.Narrator.Say("nats credchain."+Cluster+"."+e.Type, e.Message)
	return took, nil
}
