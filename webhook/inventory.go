package webhook

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/inventory"
)

// The cluster inventory (--inventory-publish, docs/inventory.md): this cluster's part of the chain,
// published to a NATS KV bucket for the guard. It reads the admission informers the webhook already
// has (ExternalSecrets, ServiceAccounts) and, only when publishing, the ESO stores and every
// workload kind, trimmed to what the chain model reads.

// InventoryConfig configures publishing this cluster's inventory. The NATS connection is
// Config.Events.NATS's (--nats-url, --nats-creds, ...), the key its Cluster (--cluster).
type InventoryConfig struct {
	// Publish turns publishing on. Defaults to false. The webhook's ClusterRole must then allow
	// get/list/watch on secretstores, clustersecretstores and every workload kind.
	Publish bool
	// Bucket is the KV bucket. Defaults to credchain-inventory.
	Bucket string
	// TTL is how long the guard keeps a cluster whose webhook stopped publishing (the bucket's
	// max age; the webhook re-publishes every TTL/3). Defaults to 1m.
	TTL time.Duration
	// Replicas of the bucket on the NATS cluster. Defaults to 1.
	Replicas int
}

// SetDefaults fills zero fields.
func (c *InventoryConfig) SetDefaults() {
	if c.Bucket == "" {
		c.Bucket = inventory.DefaultBucket
	}
	if c.TTL == 0 {
		c.TTL = inventory.DefaultTTL
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// inventoryOnlyObjects are the kinds only the inventory reads (the admission decision reads
// ExternalSecrets and ServiceAccounts too).
func inventoryOnlyObjects() []client.Object {
	return append([]client.Object{&chain.SecretStore{}, &chain.ClusterSecretStore{}}, chain.WorkloadObjects()...)
}

// InventoryCacheOptions adds to opts the transforms of the kinds only the inventory reads, each
// object cut down to its identity, owners and the pod-spec fields pull secrets depend on: a
// cluster of 10,000 pods then costs a few MB, not hundreds.
func InventoryCacheOptions(opts cache.Options) cache.Options {
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	for _, obj := range inventoryOnlyObjects() {
		if _, set := opts.ByObject[obj]; !set {
			opts.ByObject[obj] = cache.ByObject{Transform: trimForInventory}
		}
	}
	return opts
}

// trimForInventory keeps of a store its spec, of a workload its pod spec's pull secrets and
// ServiceAccount; of both the metadata the chain reads.
func trimForInventory(obj any) (any, error) {
	podSpec := func(s *corev1.PodSpec) corev1.PodSpec {
		return corev1.PodSpec{ImagePullSecrets: s.ImagePullSecrets, ServiceAccountName: s.ServiceAccountName, DeprecatedServiceAccount: s.DeprecatedServiceAccount}
	}
	template := func(t *corev1.PodTemplateSpec) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{Spec: podSpec(&t.Spec)}
	}
	switch o := obj.(type) {
	case *chain.SecretStore:
		o.ObjectMeta = keptMeta(&o.ObjectMeta)
	case *chain.ClusterSecretStore:
		o.ObjectMeta = keptMeta(&o.ObjectMeta)
	case *corev1.Pod:
		return &corev1.Pod{TypeMeta: o.TypeMeta, ObjectMeta: keptMeta(&o.ObjectMeta), Spec: podSpec(&o.Spec)}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{TypeMeta: o.TypeMeta, ObjectMeta: keptMeta(&o.ObjectMeta), Spec: appsv1.DeploymentSpec{Template: template(&o.Spec.Template)}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{TypeMeta: o.TypeMeta, ObjectMeta: keptMeta(&o.ObjectMeta), Spec: appsv1.StatefulSetSpec{Template: template(&o.Spec.Template)}}, nil
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSet{TypeMeta: o.TypeMeta, ObjectMeta: keptMeta(&o.ObjectMeta), Spec: appsv1.DaemonSetSpec{Template: template(&o.Spec.Template)}}, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{TypeMeta: o.TypeMeta, ObjectMeta: keptMeta(&o.ObjectMeta), Spec: appsv1.ReplicaSetSpec{Template: template(&o.Spec.Template)}}, nil
	case *batchv1.Job:
		return &batchv1.Job{TypeMeta: o.TypeMeta, ObjectMeta: keptMeta(&o.ObjectMeta), Spec: batchv1.JobSpec{Template: template(&o.Spec.Template)}}, nil
	case *batchv1.CronJob:
		return &batchv1.CronJob{TypeMeta: o.TypeMeta, ObjectMeta: keptMeta(&o.ObjectMeta),
			Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(&o.Spec.JobTemplate.Spec.Template)}}}}, nil
	case *corev1.ReplicationController:
		rc := &corev1.ReplicationController{TypeMeta: o.TypeMeta, ObjectMeta: keptMeta(&o.ObjectMeta)}
		if o.Spec.Template != nil {
			t := template(o.Spec.Template)
			rc.Spec.Template = &t
		}
		return rc, nil
	}
	return obj, nil
}

// keptMeta is the metadata the chain reads: identity and owners.
func keptMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		OwnerReferences: m.OwnerReferences, DeletionTimestamp: m.DeletionTimestamp}
}

// WatchInventory registers the informers the inventory reads — ExternalSecrets and
// ServiceAccounts on shared (the decision's cache), the stores and workloads on own (a cache with
// InventoryCacheOptions; it may be shared itself) — calling notify (which must not block) after
// each change that can change the inventory. It returns the builder of the chain model from both
// and the informers' HasSynced. A Pod's status update or an ExternalSecret's refresh is no such
// change: filtered here, they would otherwise rebuild the model every debounce in a busy cluster.
func WatchInventory(ctx context.Context, shared, own cache.Cache, notify func()) (inventory.ModelFunc, []toolscache.InformerSynced, error) {
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { notify() },
		UpdateFunc: func(old, new any) {
			if inventoryChanged(old, new) {
				notify()
			}
		},
		DeleteFunc: func(any) { notify() },
	}
	var synced []toolscache.InformerSynced
	for _, on := range []struct {
		c    cache.Cache
		objs []client.Object
	}{{shared, []client.Object{&ExternalSecret{}, &corev1.ServiceAccount{}}}, {own, inventoryOnlyObjects()}} {
		c := on.c
		for _, obj := range on.objs {
			inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
			if err != nil {
				return nil, nil, fmt.Errorf("creating informer for %T: %w", obj, err)
			}
			if _, err := inf.AddEventHandler(handler); err != nil {
				return nil, nil, fmt.Errorf("internal error: adding inventory handler for %T: %w", obj, err)
			}
			synced = append(synced, inf.HasSynced)
		}
	}
	r := splitReader{shared: shared, own: own}
	build := func(ctx context.Context) (*chain.Model, error) {
		objs, err := chain.List(ctx, r, client.UnsafeDisableDeepCopy) // the model only reads them
		if err != nil {
			return nil, err
		}
		return chain.NewModel(objs), nil
	}
	return build, synced, nil
}

// splitReader reads the inventory-only kinds from own, the rest from shared.
type splitReader struct{ shared, own client.Reader }

var _ client.Reader = splitReader{}

func (s splitReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	for _, o := range inventoryOnlyObjects() {
		if fmt.Sprintf("%T", o) == fmt.Sprintf("%T", obj) {
			return s.own.Get(ctx, key, obj, opts...)
		}
	}
	return s.shared.Get(ctx, key, obj, opts...)
}

func (s splitReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	switch list.(type) {
	case *chain.SecretStoreList, *chain.ClusterSecretStoreList:
		return s.own.List(ctx, list, opts...)
	}
	for _, l := range chain.WorkloadLists() {
		if fmt.Sprintf("%T", l) == fmt.Sprintf("%T", list) {
			return s.own.List(ctx, list, opts...)
		}
	}
	return s.shared.List(ctx, list, opts...)
}

// inventoryChanged reports whether an update can change the inventory: for each kind, the fields
// FromModel's walk reads; any other object counts as changed.
func inventoryChanged(old, new any) bool {
	switch n := new.(type) {
	case *ExternalSecret:
		o, ok := old.(*ExternalSecret)
		return !ok || o.Spec.SecretStoreRef != n.Spec.SecretStoreRef || o.TargetName() != n.TargetName() || o.Writes() != n.Writes()
	case *chain.SecretStore:
		o, ok := old.(*chain.SecretStore)
		return !ok || storeChanged(chain.StoreFromSecretStore(o), chain.StoreFromSecretStore(n))
	case *chain.ClusterSecretStore:
		o, ok := old.(*chain.ClusterSecretStore)
		return !ok || storeChanged(chain.StoreFromClusterSecretStore(o), chain.StoreFromClusterSecretStore(n))
	case *corev1.ServiceAccount:
		o, ok := old.(*corev1.ServiceAccount)
		return !ok || !slices.Equal(o.ImagePullSecrets, n.ImagePullSecrets)
	case client.Object:
		o, ok := old.(client.Object)
		if !ok {
			return true
		}
		ow, ok1 := chain.WorkloadOf(o, true)
		nw, ok2 := chain.WorkloadOf(n, true)
		return !ok1 || !ok2 || !slices.Equal(ow.PullSecrets, nw.PullSecrets) || ow.ServiceAccount != nw.ServiceAccount ||
			ow.ControlledBy != nw.ControlledBy || ow.Inherits != nw.Inherits
	}
	return true
}

func storeChanged(o, n *chain.Store) bool {
	os, _ := inventory.StoreOf(o)
	ns, _ := inventory.StoreOf(n)
	return os != ns
}

// publishInventory waits for the inventory's informers, connects to NATS, opens the bucket and
// publishes until ctx ends. Everything here is best effort: NATS down, the bucket missing and
// the permission to create it lacking are logged and retried, never returned, so the webhook
// keeps admitting. Every replica publishes (the same cluster, the same content: puts are
// idempotent, and no replica has to take over when another goes).
func publishInventory(ctx context.Context, cfg Config, synced []toolscache.InformerSynced, build inventory.ModelFunc, trigger *inventoryTrigger, log logr.Logger) error {
	if !waitInventorySynced(ctx, synced, log) {
		return nil
	}
	nc, err := events.Dial(cfg.Events.NATS, "credchain-webhook-inventory")
	if err != nil { // a bad credentials file: nothing a retry fixes
		log.Error(err, "not publishing the cluster's inventory")
		return nil
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Error(err, "not publishing the cluster's inventory")
		return nil
	}
	kv := openBucket(ctx, js, cfg.Inventory, log)
	if kv == nil {
		return nil
	}
	p, err := inventory.NewPublisher(cfg.Events.NATS.Cluster, kv, build, inventory.WithTTL(cfg.Inventory.TTL),
		inventory.WithLogger(log), inventory.WithRegistry(metrics.Registry))
	if err != nil {
		return fmt.Errorf("internal error: %w", err) // the config was validated
	}
	trigger.p.Store(p)
	log.Info("publishing the cluster's inventory", "cluster", cfg.Events.NATS.Cluster, "bucket", cfg.Inventory.Bucket, "ttl", cfg.Inventory.TTL.String())
	return p.Run(ctx)
}

// waitInventorySynced waits for the informers, saying every 2 minutes that it still waits: one
// the webhook may not list (a ClusterRole without the stores or workloads) never syncs, and
// fixing the RBAC then starts publishing without a restart. False when ctx ended first.
func waitInventorySynced(ctx context.Context, synced []toolscache.InformerSynced, log logr.Logger) bool {
	for {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		ok := toolscache.WaitForCacheSync(wctx.Done(), synced...)
		cancel()
		switch {
		case ok:
			return true
		case ctx.Err() != nil:
			return false
		}
		log.Info("inventory caches not synced yet: check that the webhook's ClusterRole allows get/list/watch on secretstores, clustersecretstores and every workload kind (deployments, statefulsets, daemonsets, replicasets, jobs, cronjobs, replicationcontrollers, pods)")
	}
}

// openBucket opens (creating it if need be) the bucket, retrying with backoff up to a minute
// until ctx ends (nil then).
func openBucket(ctx context.Context, js jetstream.JetStream, cfg InventoryConfig, log logr.Logger) jetstream.KeyValue {
	backoff := time.Second
	for {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		kv, err := inventory.EnsureBucket(octx, js, cfg.Bucket, cfg.TTL, cfg.Replicas)
		cancel()
		if err == nil {
			return kv
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Error(err, "opening the inventory bucket; retrying", "bucket", cfg.Bucket, "retryIn", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// inventoryTrigger forwards the informers' change notifications to the publisher once it exists
// (before, its first put covers them). Safe for concurrent use.
type inventoryTrigger struct {
	p atomic.Pointer[inventory.Publisher]
}

func (t *inventoryTrigger) Notify() {
	if p := t.p.Load(); p != nil {
		p.Notify()
	}
}
