package auditguard

import (
	"context"
	"fmt"
	"path"
	"slices"
	"time"
)

// Vault Enterprise namespaces are learned from Vault, never from audit lines. Anyone who can reach
// the audit socket can write lines: when a line's namespace was trusted, 200 forged namespaces made
// every resync and reconcile pass list policies and auth mounts in each of them (11,000 Vault
// calls for one resync). Now a line from a namespace Vault did not list is held against one
// refresh of the listing (at most every namespaceRefreshEvery) and dropped, counted, when Vault
// does not know it either.

const (
	// namespaceRefreshEvery spaces the re-listings an unknown namespace can trigger: a namespace
	// created since the last resync is found within this time, and a flood of forged ones costs
	// Vault one recursive listing per interval.
	namespaceRefreshEvery = time.Minute
	// maxNamespaces bounds the namespaces guarded: beyond it the listing stops (logged).
	maxNamespaces = 1000
	// maxNamespaceDepth bounds the nesting walked by ListNamespaces.
	maxNamespaceDepth = 8
)

// ListNamespaces implements VaultAPI: every namespace below ns (child paths as Vault lists them,
// "team-a/"), walked breadth first. On Vault Community Edition sys/namespaces does not exist: the
// LIST answers 404, which the client returns as no data, so only the root namespace is guarded.
func (v *Vault) ListNamespaces(ctx context.Context) ([]string, error) {
	var out []string
	level := []string{""}
	for depth := 0; depth < maxNamespaceDepth && len(level) > 0; depth++ {
		var next []string
		for _, parent := range level {
			s, err := v.c(parent).Logical().ListWithContext(ctx, "sys/namespaces")
			if err != nil {
				return out, fmt.Errorf("listing namespaces in %q: %w", parent, err)
			}
			if s == nil {
				continue
			}
			for _, k := range stringList(s.Data["keys"]) {
				child := path.Join(parent, k) // "team-a/" under "" is "team-a"; under it, "team-a/dev"
				if len(out) >= maxNamespaces {
					return out, fmt.Errorf("more than %d namespaces: guarding the first %d", maxNamespaces, maxNamespaces)
				}
				out = append(out, child)
				next = append(next, child)
			}
		}
		level = next
	}
	return out, nil
}

// refreshNamespaces replaces the guarded namespaces with root plus Vault's listing. A failed
// listing keeps what was known (and whatever part of the listing came back). Processing goroutine
// only.
func (g *Guard) refreshNamespaces(ctx context.Context) error {
	g.nsListed = g.opts.now()
	listed, err := g.vault.ListNamespaces(ctx)
	if err == nil {
		g.namespaces = map[string]bool{"": true}
	}
	for _, ns := range listed {
		g.namespaces[ns] = true
	}
	return err
}

// knownNamespace reports whether Vault listed ns, re-listing once per namespaceRefreshEvery when it
// did not: the namespace may be newer than the last resync. Processing goroutine only.
func (g *Guard) knownNamespace(ctx context.Context, ns string) bool {
	if g.hasNamespace(ns) {
		return true
	}
	if g.opts.now().Sub(g.nsListed) < namespaceRefreshEvery {
		return false
	}
	if err := g.refreshNamespaces(ctx); err != nil {
		g.log.Error(err, "listing Vault namespaces")
	}
	if !g.hasNamespace(ns) {
		return false
	}
	// New to the guard: index its roles before acting on its entries.
	if err := g.reindex(ctx); err != nil {
		g.log.Error(err, "re-indexing roles after finding a new namespace")
	}
	return true
}

func (g *Guard) hasNamespace(ns string) bool {
	return g.namespaces[ns]
}

// seenNamespaces lists the guarded namespaces, root ("") first.
func (g *Guard) seenNamespaces() []string {
	out := make([]string, 0, len(g.namespaces))
	for ns := range g.namespaces {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}
