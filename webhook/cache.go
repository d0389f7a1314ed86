package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The informer caches behind the decision: what they keep, and the indexes the lookup reads.

// startInformers creates the informers the decision reads (ExternalSecrets, ServiceAccounts, ESO's
// Events, Namespaces) with their indexes; the manager starts them.
func startInformers(ctx context.Context, c cache.Cache) (*IndexLookup, toolscache.Store, error) {
	lookup := &IndexLookup{}
	var nsStore toolscache.Store
	for obj, target := range map[client.Object]*toolscache.Indexer{
		&ExternalSecret{}:        &lookup.ExternalSecrets,
		&corev1.ServiceAccount{}: &lookup.ServiceAccounts,
		&corev1.Event{}:          &lookup.Events,
		&corev1.Namespace{}:      nil,
	} {
		inf, err := informerFor(ctx, c, obj)
		if err != nil {
			return nil, nil, err
		}
		switch obj.(type) {
		case *ExternalSecret:
			err = inf.AddIndexers(ExternalSecretIndexers())
		case *corev1.Event:
			err = inf.AddIndexers(EventIndexers())
		}
		if err != nil {
			return nil, nil, fmt.Errorf("internal error: adding indexers: %w", err)
		}
		if target != nil {
			*target = inf.GetIndexer()
		} else {
			nsStore = inf.GetStore()
		}
	}
	return lookup, nsStore, nil
}

// sharedIndexInformer is the part of client-go's SharedIndexInformer the lookup needs; controller-
// runtime's informers implement it.
type sharedIndexInformer interface {
	AddIndexers(toolscache.Indexers) error
	GetIndexer() toolscache.Indexer
	GetStore() toolscache.Store
}

func informerFor(ctx context.Context, c cache.Cache, obj client.Object) (sharedIndexInformer, error) {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("creating informer for %T: %w", obj, err)
	}
	sii, ok := inf.(sharedIndexInformer)
	if !ok {
		return nil, fmt.Errorf("internal error: informer for %T is a %T, not a SharedIndexInformer", obj, inf)
	}
	return sii, nil
}

// CacheOptions trims what the informers keep: only what decisions read, so memory stays flat with
// thousands of ServiceAccounts (whose token secret lists we never need) and Events.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Event{}: {
				// Only events about ExternalSecrets, where ESO reports the provider's real error.
				Field:     fields.OneTermEqualSelector("involvedObject.kind", "ExternalSecret"),
				Transform: stripMeta,
			},
			&corev1.ServiceAccount{}: {Transform: func(obj any) (any, error) {
				if sa, ok := obj.(*corev1.ServiceAccount); ok {
					sa.Secrets = nil
					sa.Annotations = nil
					sa.ManagedFields = nil
				}
				return obj, nil
			}},
			&corev1.Namespace{}: {Transform: func(obj any) (any, error) {
				if ns, ok := obj.(*corev1.Namespace); ok {
					ns.Annotations = nil
					ns.ManagedFields = nil
					ns.Spec = corev1.NamespaceSpec{}
					ns.Status = corev1.NamespaceStatus{}
				}
				return obj, nil
			}},
			&ExternalSecret{}: {Transform: stripMeta},
		},
	}
}

// stripMeta drops annotations (kubectl's last-applied copy can be large) and managed fields.
func stripMeta(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetAnnotations(nil)
		m.SetManagedFields([]metav1.ManagedFieldsEntry(nil))
	}
	return obj, nil
}
