package chain

import (
	"slices"
	"strings"
)

// Objects is one snapshot of the Kubernetes half of the chain, from a cluster (List) or from files
// (LoadManifests). Index it once with NewModel before walking it.
type Objects struct {
	ExternalSecrets []*ExternalSecret
	Stores          []*Store
	// ServiceAccounts are "namespace/name" → the account's imagePullSecrets.
	ServiceAccounts map[string][]string
	Workloads       []*Workload
}

// AddServiceAccount records an account's imagePullSecrets.
func (o *Objects) AddServiceAccount(namespace, name string, pullSecrets []string) {
	if o.ServiceAccounts == nil {
		o.ServiceAccounts = map[string][]string{}
	}
	o.ServiceAccounts[namespace+"/"+name] = pullSecrets
}

// Model is Objects indexed for walking the chain in both directions. It is read-only once built and
// safe for concurrent readers.
type Model struct {
	*Objects
	stores   map[StoreKey]*Store
	byStore  map[StoreKey][]*ExternalSecret
	bySecret map[string][]*Workload // "ns/secret" → workloads whose pods pull with it
}

// NewModel indexes o: O(objects), one pass each.
func NewModel(o *Objects) *Model {
	m := &Model{Objects: o, stores: make(map[StoreKey]*Store, len(o.Stores)),
		byStore: map[StoreKey][]*ExternalSecret{}, bySecret: map[string][]*Workload{}}
	for _, s := range o.Stores {
		m.stores[s.Key()] = s
	}
	for _, es := range o.ExternalSecrets {
		k := StoreKeyOf(es.Namespace, es.Spec.SecretStoreRef)
		m.byStore[k] = append(m.byStore[k], es)
	}
	for _, w := range o.Workloads {
		if w.ControlledBy != "" {
			continue // reported through its controller
		}
		names, _ := PullSecrets(w.PullSecrets, w.Inherits, func() []string {
			return o.ServiceAccounts[w.Namespace+"/"+w.ServiceAccount]
		})
		for _, n := range uniq(names) {
			k := w.Namespace + "/" + n
			m.bySecret[k] = append(m.bySecret[k], w)
		}
	}
	return m
}

// StoreKeyOf is the store an ExternalSecret in namespace names with ref: a SecretStore in the same
// namespace unless the kind says ClusterSecretStore.
func StoreKeyOf(namespace string, ref StoreRef) StoreKey {
	if ref.Kind == KindClusterSecretStore {
		return StoreKey{Kind: KindClusterSecretStore, Name: ref.Name}
	}
	return StoreKey{Kind: KindSecretStore, Namespace: namespace, Name: ref.Name}
}

// Store returns the store with key k, nil when it does not exist.
func (m *Model) Store(k StoreKey) *Store { return m.stores[k] }

// StoreOf returns the store es reads from, and its key (also when the store does not exist).
func (m *Model) StoreOf(es *ExternalSecret) (*Store, StoreKey) {
	k := StoreKeyOf(es.Namespace, es.Spec.SecretStoreRef)
	return m.stores[k], k
}

// ExternalSecretsOn returns the ExternalSecrets whose spec.secretStoreRef names store k.
func (m *Model) ExternalSecretsOn(k StoreKey) []*ExternalSecret { return m.byStore[k] }

// WorkloadsUsing returns the workloads whose pods pull with Secret namespace/secret, directly or
// through their ServiceAccount.
func (m *Model) WorkloadsUsing(namespace, secret string) []*Workload {
	return m.bySecret[namespace+"/"+secret]
}

// Impact is what depends on a set of Vault roles: the stores logging in with them, the
// ExternalSecrets on those stores, the Secrets they write, and the workloads pulling with those.
// Each list is sorted and holds no duplicates.
type Impact struct {
	Stores, ExternalSecrets, Secrets, Workloads []Ref
}

// Impact walks the chain down from roles.
func (m *Model) Impact(roles []RoleRef) Impact {
	var im Impact
	var keys []StoreKey
	for _, s := range m.Stores {
		if r, ok := s.KubernetesRole(); ok && slices.Contains(roles, r) {
			keys = append(keys, s.Key())
			im.Stores = append(im.Stores, Ref{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name})
		}
	}
	for _, k := range keys {
		for _, es := range m.byStore[k] {
			im.ExternalSecrets = append(im.ExternalSecrets, Ref{Kind: "ExternalSecret", Namespace: es.Namespace, Name: es.Name})
			if !es.Writes() {
				continue // creationPolicy None or a manifest target: no Secret depends on it
			}
			im.Secrets = append(im.Secrets, Ref{Kind: "Secret", Namespace: es.Namespace, Name: es.TargetName()})
			for _, w := range m.WorkloadsUsing(es.Namespace, es.TargetName()) {
				im.Workloads = append(im.Workloads, w.Ref())
			}
		}
	}
	for _, l := range []*[]Ref{&im.Stores, &im.ExternalSecrets, &im.Secrets, &im.Workloads} {
		slices.SortFunc(*l, compareRefs)
		*l = slices.Compact(*l)
	}
	return im
}

// compareRefs orders by the printed reference, as events and tables show them.
func compareRefs(a, b Ref) int { return strings.Compare(a.String(), b.String()) }

func uniq(names []string) []string {
	if len(names) < 2 {
		return names
	}
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
