package auditguard

import (
	"context"
	"fmt"
)

// In the sidecar topology (docs/install.md) every Vault node has its own guard tailing that
// node's file device, and only the active node logs writes: a standby's guard sees no delete, no
// superseding write, no flap, so it holds nothing — and its reconcile would restore what the
// active node's guard deliberately left deleted. With WithActiveNodeOnly a guard reconciles only
// while the node it talks to (VAULT_ADDR, its own node) is the active one; after a failover the new
// active node's guard takes over at its next reconcile pass.

// Standby implements VaultAPI.
func (v *Vault) Standby(ctx context.Context) (bool, error) {
	l, err := v.Client.Sys().LeaderWithContext(ctx)
	if err != nil {
		return false, fmt.Errorf("reading sys/leader: %w", err)
	}
	return l.HAEnabled && !l.IsSelf, nil
}

// WithActiveNodeOnly makes the guard reconcile only while its Vault node is the active one (for a
// guard beside each Vault node, talking to its own). Off by default: through a Service or load
// balancer, sys/leader is answered by whichever node takes the request. A node that cannot say is
// treated as standby for that pass (reconcile is retried every interval anyway).
func WithActiveNodeOnly(on bool) Option { return func(o *options) { o.activeNodeOnly = on } }

// standbyNode reports whether this pass must leave restores to the active node's guard, and sets
// credchain_auditguard_vault_standby. Processing goroutine only.
func (g *Guard) standbyNode(ctx context.Context) bool {
	if !g.opts.activeNodeOnly {
		return false
	}
	standby, err := g.vault.Standby(ctx)
	if err != nil {
		g.log.Error(err, "cannot tell whether this guard's Vault node is active; not reconciling this pass")
		standby = true
	}
	if standby {
		g.metrics.Standby.Set(1)
	} else {
		g.metrics.Standby.Set(0)
	}
	return standby
}
