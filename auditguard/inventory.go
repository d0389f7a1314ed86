package auditguard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/inventory"
)

// Many clusters (issue 16 item 2). Each cluster's webhook publishes its part of the chain — its
// Vault stores and, per Kubernetes auth role they log in with, what depends on it — to a key of
// its own in the inventory bucket (internal/inventory). With --inventory the guard reads every
// cluster's part: an event's blast radius lists the workloads of every cluster the deleted
// policy's roles reach, each entry naming its cluster, and a store in any live cluster makes a
// role active. The guard needs no Kubernetes credentials for those clusters; its own cluster's
// caches (--blast-radius) stay the source for the cluster it runs in, when set.

// SetInventory makes the guard read every cluster's inventory from r.
func (g *Guard) SetInventory(r *inventory.Reader) { g.inventory.Store(r) }

// blastRadius is what depends on roles: the guard's own cluster from its caches (--blast-radius),
// and every other live cluster from its inventory (--inventory). The own cluster's inventory,
// when it publishes one too, is left out for the caches' fresher view; with inventories, the own
// cluster's entries name it (--cluster). nil when neither knows anything.
func (g *Guard) blastRadius(ctx context.Context, roles []events.RoleRef) (*events.BlastRadius, error) {
	var local *events.BlastRadius
	if b := g.blast.Load(); b != nil {
		br, err := b.For(ctx, roles)
		if err != nil {
			return nil, err
		}
		local = br
	}
	r := g.inventory.Load()
	if r == nil {
		return local, nil
	}
	var impacts []inventory.ClusterImpact
	if local != nil {
		impacts = append(impacts, inventory.ClusterImpact{Cluster: g.opts.cluster, BlastRadius: local.InCluster(g.opts.cluster)})
	}
	for _, im := range r.Impact(roles) {
		if local != nil && im.Cluster == g.opts.cluster {
			continue
		}
		impacts = append(impacts, im)
	}
	return inventory.MergeImpact(impacts), nil
}

// inventoryStoreUsing names a store of another live cluster that logs in with one of roles
// ("prod-eu: SecretStore prod/vault-backend"). known is false while --inventory has not loaded
// the bucket yet: until then no role can be found unused.
func (g *Guard) inventoryStoreUsing(roles []events.RoleRef) (role events.RoleRef, store string, known bool) {
	r := g.inventory.Load()
	if r == nil {
		return events.RoleRef{}, "", !g.opts.inventoryConfigured
	}
	if !r.Synced() {
		return events.RoleRef{}, "", false
	}
	for _, role := range roles {
		if cluster, s, ok := r.StoreUsing(role); ok {
			return role, cluster + ": " + s, true
		}
	}
	return events.RoleRef{}, "", true
}

// startInventory opens the inventory bucket — waiting for it, since the first cluster's webhook
// creates it — and hands the guard a Reader on it, in the background: the audit sockets must not
// wait for NATS.
func startInventory(ctx context.Context, wg *sync.WaitGroup, cfg Config, g *Guard, reg prometheus.Registerer, log logr.Logger) error {
	if !cfg.Inventory {
		return nil
	}
	nc, err := events.Dial(cfg.Events.NATS, "credchain-auditguard-inventory")
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("nats jetstream: %w", err)
	}
	log = log.WithName("inventory")
	wg.Go(func() {
		defer nc.Close()
		kv, err := waitBucket(ctx, js, cfg.InventoryBucket, log)
		if err != nil {
			return // ctx ended
		}
		r := inventory.NewReader(ctx, kv, inventory.WithReaderLogger(log), inventory.WithReaderRegistry(reg))
		g.SetInventory(r)
		log.Info("reading the clusters' inventories", "bucket", cfg.InventoryBucket)
		<-r.Done()
	})
	return nil
}

// waitBucket opens bucket, retrying (backing off to 30s) until it exists or ctx ends.
func waitBucket(ctx context.Context, js jetstream.JetStream, bucket string, log logr.Logger) (jetstream.KeyValue, error) {
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		kv, err := js.KeyValue(ctx, bucket)
		if err == nil {
			return kv, nil
		}
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			log.Info("no inventory bucket yet; no cluster's webhook has published (--inventory-publish)", "bucket", bucket, "retry", backoff.String())
		} else {
			log.Error(err, "opening the inventory bucket", "bucket", bucket, "retry", backoff.String())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
	}
}
