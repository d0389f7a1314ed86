package e2e

import (
	"context"
	"fmt"
	"slices"
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

// IaCCorrectsDrift is scenario 6 (the test's). First without a desired state: alice rewrites
// eso-order-service to grant nothing, and the guard reports policy.weakened naming the
// ExternalSecret, the path it lost and the Deployment. Then the guard runs with the GitOps
// repository's policies as its desired state and --correct-drift: the same edit is drift, reported
// (policy.drifted naming her and the rules she removed) and written back, and the ExternalSecret
// stays synced.
func (s *Stack) IaCCorrectsDrift(ctx context.Context) error {
	s.Narrator.Step("Scenario 6 — an edit that grants nothing: policy.weakened, and with the IaC as the source of truth, corrected")
	if err := s.weakenedReported(ctx); err != nil {
		return err
	}
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

// weakenedReported runs the guard as installed (no desired state): alice's neutering edit stays, and
// is reported with what it breaks; root puts the body back.
func (s *Stack) weakenedReported(ctx context.Context) error {
	if s.guard == nil {
		if err := s.StartGuard(ctx); err != nil {
			return err
		}
	}
	ev0 := len(s.eventsNow())
	s.Narrator.Step("alice rewrites policy %s so that it grants nothing ESO reads", Policy)
	if _, err := s.vaultCLI(ctx, s.aliceToken, neutered, "policy", "write", Policy, "-"); err != nil {
		return err
	}
	e, err := s.waitEvent(ctx, ev0, events.PolicyWeakened, Policy)
	if err != nil {
		return err
	}
	var lostPaths []string
	for _, l := range e.Lost {
		if l.ExternalSecret.Namespace == Namespace && l.ExternalSecret.Name == ExternalSecret {
			lostPaths = append(lostPaths, l.Path)
		}
	}
	if !slices.Contains(lostPaths, "registry-creds/data/order-service") || e.BlastRadius == nil ||
		!slices.Contains(e.BlastRadius.Workloads, events.ObjectRef{Kind: "Deployment", Namespace: Namespace, Name: Workload}) {
		return fmt.Errorf("policy.weakened lost %+v, blast radius %+v; want %s/%s's read of registry-creds/data/order-service and Deployment %s/%s",
			e.Lost, e.BlastRadius, Namespace, ExternalSecret, Namespace, Workload)
	}
	s.Narrator.Say("nats credchain."+Cluster+"."+e.Type, e.Message)
	s.Narrator.Step("Putting the policy back")
	_, err = s.vaultCLI(ctx, s.vault.RootToken, OrderServicePolicy, "policy", "write", Policy, "-")
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
