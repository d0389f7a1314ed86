package auditguard

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
)

// Blast computes the blast radius of Vault roles from informer caches (no API call per event), by
// walking the chain model (internal/chain) down from the roles: the stores logging in with them, the
// ExternalSecrets on those stores, the Secrets those write, and the workloads — of every kind the
// webhook checks — whose pods pull with those Secrets, directly or through their ServiceAccount.
type Blast struct {
	cache cache.Cache
}

// NewBlast starts informers on the cluster and waits for them to sync.
func NewBlast(ctx context.Context, cfg *rest.Config, log logr.Logger) (*Blast, error) {
	version, err := servedESOVersion(cfg)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	chain.AddToScheme(scheme, version)
	c, err := cache.New(cfg, blastCacheOptions(scheme))
	if err != nil {
		return nil, fmt.Errorf("creating cluster cache: %w", err)
	}
	// Register every informer before starting the cache.
	for _, obj := range blastObjects() {
		if _, err := c.GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("informer for %T: %w", obj, err)
		}
	}
	go func() {
		if err := c.Start(ctx); err != nil {
			log.Error(err, "cluster cache stopped")
		}
	}()
	if err := waitForBlastCaches(ctx, c, log); err != nil {
		return nil, err
	}
	log.Info("blast radius caches synced", "externalSecretVersion", version)
	return &Blast{cache: c}, nil
}

// servedESOVersion is the most preferred ESO API version the cluster serves.
func servedESOVersion(cfg *rest.Config) (string, error) {
	mapper, err := client.New(cfg, client.Options{})
	if err != nil {
		return "", fmt.Errorf("creating cluster client: %w", err)
	}
	for _, v := range chain.ESOVersions {
		if _, err := mapper.RESTMapper().RESTMapping(schema.GroupKind{Group: chain.ESOGroup, Kind: "ExternalSecret"}, v); err == nil {
			return v, nil
		}
	}
	return "", fmt.Errorf("the cluster serves no ExternalSecret API (external-secrets.io/v1 or v1beta1)")
}

// waitForBlastCaches waits for the informers to sync. An informer the guard may not list (an older
// ClusterRole, say) never syncs; say so every blastSyncWarn and keep waiting, so fixing the RBAC
// brings the blast radius back without a restart.
func waitForBlastCaches(ctx context.Context, c cache.Cache, log logr.Logger) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, blastSyncWarn)
		synced := c.WaitForCacheSync(wctx)
		cancel()
		if synced {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cluster caches did not sync: %w", ctx.Err())
		}
		log.Info("blast radius caches not synced yet; events name only the Vault roles until they are. Check that the guard's ClusterRole allows get/list/watch on ESO stores and ExternalSecrets, serviceaccounts, and every workload kind (deployments, statefulsets, daemonsets, replicasets, jobs, cronjobs, replicationcontrollers, pods)",
			"waited", blastSyncWarn.String())
	}
}

// blastObjects are the kinds the blast radius reads: ESO's three, ServiceAccounts, every workload kind.
func blastObjects() []client.Object {
	return append([]client.Object{&chain.ExternalSecret{}, &chain.SecretStore{}, &chain.ClusterSecretStore{},
		&corev1.ServiceAccount{}}, chain.WorkloadObjects()...)
}

// blastCacheOptions keep only what the walk and the requests ESO makes (weakened.go) read. Pods
// are the many objects in a cluster: each is cut down to its name, owner and the two pod-spec
// fields pull secrets depend on, so a cluster of 10,000 pods costs a few MB, not hundreds. An
// ExternalSecret keeps its spec.data and spec.dataFrom — what ESO fetches, which is what a policy
// write can take away — a few hundred bytes an item; its metadata is stripped like the rest.
func blastCacheOptions(scheme *runtime.Scheme) cache.Options {
	return cache.Options{Scheme: scheme, DefaultTransform: stripObjectMeta,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Transform: func(obj any) (any, error) {
				p, ok := obj.(*corev1.Pod)
				if !ok {
					return obj, nil
				}
				return &corev1.Pod{TypeMeta: p.TypeMeta, ObjectMeta: keptMeta(&p.ObjectMeta), Spec: corev1.PodSpec{
					ImagePullSecrets: p.Spec.ImagePullSecrets, ServiceAccountName: p.Spec.ServiceAccountName,
					DeprecatedServiceAccount: p.Spec.DeprecatedServiceAccount}}, nil
			}},
		}}
}

// keptMeta is the metadata the walk reads: identity and owners.
func keptMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		OwnerReferences: m.OwnerReferences, DeletionTimestamp: m.DeletionTimestamp}
}

// stripObjectMeta drops managed fields, annotations (kubectl's last-applied copy) and labels.
func stripObjectMeta(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		m.SetAnnotations(nil)
		m.SetLabels(nil)
	}
	return obj, nil
}

// blastSyncWarn is how long NewBlast waits for its caches before saying it is still waiting.
var blastSyncWarn = 2 * time.Minute

// Model is the chain model of one snapshot of the caches (objects are not copied: the model only
// reads them, and so must its callers).
func (b *Blast) Model(ctx context.Context) (*chain.Model, error) {
	objs, err := chain.List(ctx, b.cache, client.UnsafeDisableDeepCopy)
	if err != nil {
		return nil, err
	}
	return chain.NewModel(objs), nil
}

// For returns the blast radius of roles, sorted. It walks one snapshot of the caches.
func (b *Blast) For(ctx context.Context, roles []events.RoleRef) (*events.BlastRadius, error) {
	m, err := b.Model(ctx)
	if err != nil {
		return nil, err
	}
	refs := make([]chain.RoleRef, len(roles))
	for i, r := range roles {
		refs[i] = chain.RoleRef{Mount: r.Mount, Name: r.Name}
	}
	im := m.Impact(refs)
	br := im.BlastRadius()
	return &br, nil
}
