package webhook

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/credchain/credchain/internal/chain"
)

// Index names registered on the informers. Values are "<namespace>/<name>" so one lookup is one map
// access regardless of how many objects are cached.
const (
	indexTarget   = "credchain.io/target"
	indexInvolved = "credchain.io/involved"
)

// ExternalSecretIndexers indexes ExternalSecrets by the Secret they write: spec.target.name
// (defaulting to the ExternalSecret's name) and, when different, status.binding.name, which is what
// ESO last wrote.
func ExternalSecretIndexers() toolscache.Indexers {
	return toolscache.Indexers{indexTarget: func(obj any) ([]string, error) {
		es, ok := obj.(*ExternalSecret)
		if !ok {
			return nil, fmt.Errorf("internal error: indexing %T as ExternalSecret", obj)
		}
		keys := []string{es.Namespace + "/" + es.TargetName()}
		if b := es.Status.Binding.Name; b != "" && b != es.TargetName() {
			keys = append(keys, es.Namespace+"/"+b)
		}
		return keys, nil
	}}
}

// EventIndexers indexes Events by the ExternalSecret they are about.
func EventIndexers() toolscache.Indexers {
	return toolscache.Indexers{indexInvolved: func(obj any) ([]string, error) {
		ev, ok := obj.(*corev1.Event)
		if !ok {
			return nil, fmt.Errorf("internal error: indexing %T as Event", obj)
		}
		return []string{ev.InvolvedObject.Namespace + "/" + ev.InvolvedObject.Name}, nil
	}}
}

// IndexLookup implements Lookup over informer indexers. It reads the informers' stores directly:
// no deep copies, no API calls, one map access per lookup. Objects returned must not be modified.
type IndexLookup struct {
	ExternalSecrets toolscache.Indexer
	ServiceAccounts toolscache.Indexer
	Events          toolscache.Indexer
}

var _ Lookup = (*IndexLookup)(nil)

// ExternalSecretsFor implements Lookup.
func (l *IndexLookup) ExternalSecretsFor(namespace, secret string) []*ExternalSecret {
	objs, err := l.ExternalSecrets.ByIndex(indexTarget, namespace+"/"+secret)
	if err != nil || len(objs) == 0 {
		return nil
	}
	if len(objs) == 1 {
		if es, ok := objs[0].(*ExternalSecret); ok {
			return []*ExternalSecret{es}
		}
		return nil
	}
	out := make([]*ExternalSecret, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*ExternalSecret); ok {
			out = append(out, es)
		}
	}
	return out
}

// ServiceAccountPullSecrets implements Lookup.
func (l *IndexLookup) ServiceAccountPullSecrets(namespace, name string) ([]string, bool) {
	obj, exists, err := l.ServiceAccounts.GetByKey(namespace + "/" + name)
	if err != nil || !exists {
		return nil, false
	}
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok || len(sa.ImagePullSecrets) == 0 {
		return nil, ok
	}
	out := make([]string, len(sa.ImagePullSecrets))
	for i, r := range sa.ImagePullSecrets {
		out[i] = r.Name
	}
	return out, true
}

// LatestWarning implements Lookup.
func (l *IndexLookup) LatestWarning(namespace, externalSecret string) (string, string, bool) {
	if l.Events == nil {
		return "", "", false
	}
	objs, err := l.Events.ByIndex(indexInvolved, namespace+"/"+externalSecret)
	if err != nil {
		return "", "", false
	}
	var latest *corev1.Event
	var latestAt time.Time
	for _, o := range objs {
		ev, ok := o.(*corev1.Event)
		if !ok || ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != "ExternalSecret" {
			continue
		}
		if at := chain.EventTime(ev); latest == nil || at.After(latestAt) {
			latest, latestAt = ev, at
		}
	}
	if latest == nil {
		return "", "", false
	}
	return latest.Reason, latest.Message, true
}
