package explain

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/internal/chain"
)

// kubeReader reads the Kubernetes half of one chain with a bounded number of requests, none
// of which grows with the cluster:
//
//   - GET the target (the workload, or the ExternalSecret);
//   - GET its ServiceAccount, only when the pods take their pull secrets from it;
//   - GET each pull secret's Secret;
//   - the ExternalSecret that writes each Secret: ESO sets itself as the controller owner of a
//     Secret it creates (creationPolicy Owner, the default), so that owner is read with a GET by
//     name; only for a Secret without one (Orphan, Merge, or a Secret that does not exist) are the
//     namespace's ExternalSecrets LISTed, once per explain and in that namespace only, and those
//     whose spec.target.name names the Secret taken;
//   - for each such ExternalSecret, ESO's Warning events on it: a LIST with the field selector
//     involvedObject.kind=ExternalSecret,involvedObject.name=NAME;
//   - GET each store its items read from.
//
// So 1 + (1) + secrets + (writers + 1 list at most) + writers + stores, whatever the number of
// ExternalSecrets, namespaces or Secrets elsewhere. Single-goroutine.
type kubeReader struct {
	c  client.Reader
	ns string
	f  *Facts
	// listed is the namespace's ExternalSecrets, once listed; listErr why they could not be.
	listed  []chain.ExternalSecret
	didList bool
	listErr error
}

func (k *kubeReader) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: k.ns, Name: name}
}

// readTarget reads the target and, for a workload, the pull secrets its pods use.
func (k *kubeReader) readTarget(ctx context.Context) error {
	t := k.f.Target
	if t.Kind == KindExternalSecret {
		es := &chain.ExternalSecret{}
		if err := k.c.Get(ctx, k.key(t.Name), es); err != nil {
			return targetError(t, err, apierrors.IsNotFound(err))
		}
		k.f.ExternalSecrets[es.Name] = &ExternalSecretFacts{ES: es}
		if es.Writes() {
			k.f.Secrets = []*SecretFacts{{Name: es.TargetName(), From: "spec.target.name", Writers: []string{es.Name}, FoundBy: "spec.target.name"}}
		}
		return nil
	}
	obj := workloadObject(t.Kind)
	if err := k.c.Get(ctx, k.key(t.Name), obj); err != nil {
		return targetError(t, err, apierrors.IsNotFound(err))
	}
	w, _ := chain.WorkloadOf(obj, true)
	k.f.Workload = w
	names, inherited := chain.PullSecrets(w.PullSecrets, w.Inherits, func() []string { return k.readAccount(ctx, w.ServiceAccount) })
	from := FromPodSpec
	if inherited {
		from = FromServiceAccount
	}
	for _, n := range names {
		if !slices.ContainsFunc(k.f.Secrets, func(s *SecretFacts) bool { return s.Name == n }) {
			k.f.Secrets = append(k.f.Secrets, &SecretFacts{Name: n, From: from})
		}
	}
	return nil
}

func workloadObject(kind string) client.Object {
	for _, o := range chain.WorkloadObjects() {
		if w, ok := chain.WorkloadOf(o, true); ok && w.Kind == kind {
			return o
		}
	}
	panic("internal error: no object for workload kind " + kind)
}

func (k *kubeReader) readAccount(ctx context.Context, name string) []string {
	a := &AccountFacts{Name: name}
	k.f.ServiceAccount = a
	var sa corev1.ServiceAccount
	switch err := k.c.Get(ctx, k.key(name), &sa); {
	case apierrors.IsNotFound(err):
	case err != nil:
		a.Err = err
	default:
		a.Exists = true
		for _, r := range sa.ImagePullSecrets {
			a.PullSecrets = append(a.PullSecrets, r.Name)
		}
	}
	return a.PullSecrets
}

// readSecrets reads each pull secret and finds the ExternalSecrets that write it.
func (k *kubeReader) readSecrets(ctx context.Context) {
	for _, sf := range k.f.Secrets {
		var s corev1.Secret
		switch err := k.c.Get(ctx, k.key(sf.Name), &s); {
		case apierrors.IsNotFound(err):
		case err != nil:
			sf.Err = err
		default:
			sf.Secret = &s
		}
		if sf.FoundBy != "" {
			continue // an ExternalSecret target: its writer is the target
		}
		if owner := esoOwner(sf.Secret); owner != "" {
			sf.Writers, sf.FoundBy = []string{owner}, "ownerReference"
			continue
		}
		k.writersByTarget(ctx, sf)
	}
}

// esoOwner is the ExternalSecret that is s's controller, "" when none is.
func esoOwner(s *corev1.Secret) string {
	if s == nil {
		return ""
	}
	ref := metav1.GetControllerOfNoCopy(s)
	if ref == nil || ref.Kind != KindExternalSecret || !strings.HasPrefix(ref.APIVersion, chain.ESOGroup+"/") {
		return ""
	}
	return ref.Name
}

// writersByTarget finds sf's writers among the namespace's ExternalSecrets, listed once.
func (k *kubeReader) writersByTarget(ctx context.Context, sf *SecretFacts) {
	if !k.didList {
		k.didList = true
		var l chain.ExternalSecretList
		if k.listErr = k.c.List(ctx, &l, client.InNamespace(k.ns)); k.listErr == nil {
			k.listed = l.Items
		}
	}
	if k.listErr != nil {
		sf.WritersErr = k.listErr
		return
	}
	var found []*chain.ExternalSecret
	for i := range k.listed {
		es := &k.listed[i]
		if es.Writes() && es.TargetName() == sf.Name {
			found = append(found, es)
		}
	}
	// An owning writer first: ESO fails the others on the same Secret.
	slices.SortStableFunc(found, func(a, b *chain.ExternalSecret) int {
		if a.Owns() != b.Owns() {
			if a.Owns() {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, es := range found {
		sf.Writers = append(sf.Writers, es.Name)
		if k.f.ExternalSecrets[es.Name] == nil {
			k.f.ExternalSecrets[es.Name] = &ExternalSecretFacts{ES: es}
		}
	}
	if len(found) > 0 {
		sf.FoundBy = "spec.target.name"
	}
}

// readExternalSecrets reads each writer not read yet (by GET), and its latest Warning event.
func (k *kubeReader) readExternalSecrets(ctx context.Context) {
	for _, sf := range k.f.Secrets {
		for _, name := range sf.Writers {
			if k.f.ExternalSecrets[name] != nil {
				continue
			}
			ef := &ExternalSecretFacts{}
			k.f.ExternalSecrets[name] = ef
			es := &chain.ExternalSecret{}
			switch err := k.c.Get(ctx, k.key(name), es); {
			case apierrors.IsNotFound(err):
			case err != nil:
				ef.Err = err
			default:
				ef.ES = es
			}
		}
	}
	for name, ef := range k.f.ExternalSecrets {
		if ef.ES != nil {
			ef.Warning, ef.WarningErr = k.latestWarning(ctx, name)
		}
	}
}

// latestWarning is ESO's newest Warning event on ExternalSecret name.
func (k *kubeReader) latestWarning(ctx context.Context, name string) (*corev1.Event, error) {
	var l corev1.EventList
	if err := k.c.List(ctx, &l, client.InNamespace(k.ns),
		client.MatchingFields{"involvedObject.kind": KindExternalSecret, "involvedObject.name": name}); err != nil {
		return nil, err
	}
	var latest *corev1.Event
	for i := range l.Items {
		ev := &l.Items[i]
		if ev.Type == corev1.EventTypeWarning && (latest == nil || chain.EventTime(ev).After(chain.EventTime(latest))) {
			latest = ev
		}
	}
	return latest, nil
}

// readStores reads every store the ExternalSecrets' items read from.
func (k *kubeReader) readStores(ctx context.Context) {
	for _, ef := range k.f.ExternalSecrets {
		if ef.ES == nil {
			continue
		}
		for _, key := range chain.ItemStores(ef.ES) {
			if k.f.Stores[key] == nil {
				k.f.Stores[key] = k.readStore(ctx, key)
			}
		}
	}
}

func (k *kubeReader) readStore(ctx context.Context, key chain.StoreKey) *StoreFacts {
	sf := &StoreFacts{}
	var err error
	if key.Kind == chain.KindClusterSecretStore {
		s := &chain.ClusterSecretStore{}
		if err = k.c.Get(ctx, types.NamespacedName{Name: key.Name}, s); err == nil {
			sf.Store = chain.StoreFromClusterSecretStore(s)
		}
	} else {
		s := &chain.SecretStore{}
		if err = k.c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, s); err == nil {
			sf.Store = chain.StoreFromSecretStore(s)
		}
	}
	if err != nil && !apierrors.IsNotFound(err) {
		sf.Err = err
	}
	return sf
}
