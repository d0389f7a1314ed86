package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/credchain/credchain/internal/events"
)

// neutered is alice's edit of the policy: it still exists, still named by the role, and grants ESO
// nothing it asks for — the incident's outage without a delete.
const neutered = `path "registry-creds/data/retired-service" {
  capabilities = ["read"]
}
`

// IaCCorrectsDrift is scenario 6 (the test's): the guard runs with the GitOps repository's policies
// as its desired state and --correct-drift. alice rewrites eso-order-service to grant nothing; the
// guard reports policy.drifted naming her and the rules she removed, writes the desired body back,
// and the ExternalSecret stays synced.
func (s *Stack) IaCCorrectsDrift(ctx context.Context) error {
	s.Narrator.Step("Scenario 6 — the IaC is the source of truth: alice's edit that grants nothing is drift, corrected")
	dir, err := s.desiredPolicies()
	if err != nil {
		return err
	}
	if s.guard != nil {
		s.StopGuard()
	}
	defer func(args []string) { s.guardArgs = args }(s.guardArgs)
	s.guardArgs = append(append([]string{}, s.guardArgs...), "--desired-policies", dir, "--correct-drift")
	if err := s.StartGuard(ctx); err != nil {
		return err
	}
	ev0 := len(s.eventsNow())
	s.Narrator.Step("alice rewrites policy %s so that it grants nothing ESO reads", Policy)
	if _, err := s.vaultCLI(ctx, s.aliceToken, neutered, "policy", "write", Policy, "-"); err != nil {
		return err
	}
	if err := s.waitPolicyBody(ctx, OrderServicePolicy, 30*time.Second); err != nil {
		return err
	}
	e, err := s.waitEvent(ctx, ev0, events.PolicyDrifted, Policy)
	if err != nil {
		return err
	}
	if e.Actor == nil || e.Actor.DisplayName != "userpass-"+alice || e.Drift == nil || len(e.Drift.Removed) == 0 {
		return fmt.Errorf("policy.drifted names %+v and drift %+v; want alice and the rules she removed", e.Actor, e.Drift)
	}
	s.Narrator.Say("nats credchain."+Cluster+"."+e.Type, e.Message)
	s.Narrator.Step("ESO's next sync still succeeds")
	at, err := s.forceSync(ctx)
	if err != nil {
		return err
	}
	_, err = s.waitSync(ctx, "True", "SecretSynced", at)
	return err
}

// waitPolicyBody waits until the policy's body in Vault is want.
func (s *Stack) waitPolicyBody(ctx context.Context, want string, within time.Duration) error {
	return eventually(ctx, within, func() error {
		body, err := s.PolicyBody(ctx, Policy)
		if err == nil && strings.TrimSpace(body) != strings.TrimSpace(want) {
			err = fmt.Errorf("policy %s is %q, want the desired body", Policy, body)
		}
		return err
	})
}
