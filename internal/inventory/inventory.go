package inventory

import (
	"cmp"
	"slices"
	"time"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
)

// Version is the version of the Inventory encoding this package writes and the newest it reads.
// A reader ignores a value of a newer version (it cannot know what a new field means for the blast
// radius) and keeps that cluster's previous inventory; bump it only for a change an older reader
// would misread, not for an added field it may ignore.
const Version = 1

// Inventory is one cluster's part of the chain, as published under its name.
type Inventory struct {
	Version int    `json:"version"`
	Cluster string `json:"cluster"`
	// PublishedAt is the publisher's clock when it encoded this value (informational: the Reader
	// ages clusters out by the server's timestamp of the put, see Reader).
	PublishedAt time.Time `json:"publishedAt"`
	// Stores are the cluster's ESO stores with a Vault provider, sorted by kind, namespace, name.
	Stores []Store `json:"stores,omitempty"`
	// Roles are the Kubernetes auth roles the stores log in with, sorted by mount and name, each
	// with what depends on it in this cluster.
	Roles []Role `json:"roles,omitempty"`
}

// Store is an ESO store with a Vault provider.
type Store struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Server is the Vault address as this cluster reaches it (spec.provider.vault.server).
	Server string `json:"server"`
	// VaultNamespace is the Vault Enterprise namespace requests are made in; AuthNamespace, when
	// set, the one ESO logs in in.
	VaultNamespace string `json:"vaultNamespace,omitempty"`
	AuthNamespace  string `json:"authNamespace,omitempty"`
	// Login is how ESO logs in (chain.LoginMethod): "kubernetes" for Kubernetes auth, the only
	// method with a Mount and Role here; another method's store is listed but matches no role.
	Login string `json:"login,omitempty"`
	Mount string `json:"mount,omitempty"`
	Role  string `json:"role,omitempty"`
}

// Ref is the store as events name it: "SecretStore prod/vault-backend", "ClusterSecretStore vault".
func (s Store) Ref() string {
	return events.ObjectRef{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name}.String()
}

// Role is one Kubernetes auth role and its blast radius in the cluster: Model.Impact of the role
// alone. Refs carry no cluster (the key names it); the Reader fills it in.
type Role struct {
	Mount       string             `json:"mount"`
	Name        string             `json:"name"`
	BlastRadius events.BlastRadius `json:"blastRadius"`
}

// FromModel is cluster's inventory of m (PublishedAt unset): every Vault store, and per
// Kubernetes auth role a store logs in with, the chain model's impact of that role.
func FromModel(cluster string, m *chain.Model) *Inventory {
	inv := &Inventory{Version: Version, Cluster: cluster}
	roles := map[chain.RoleRef]bool{}
	for _, s := range m.Stores {
		st, ok := StoreOf(s)
		if !ok {
			continue
		}
		if st.Mount != "" {
			roles[chain.RoleRef{Mount: st.Mount, Name: st.Role}] = true
		}
		inv.Stores = append(inv.Stores, st)
	}
	slices.SortFunc(inv.Stores, func(a, b Store) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for r := range roles {
		inv.Roles = append(inv.Roles, Role{Mount: r.Mount, Name: r.Name, BlastRadius: m.Impact([]chain.RoleRef{r}).BlastRadius()})
	}
	slices.SortFunc(inv.Roles, func(a, b Role) int {
		return cmp.Or(cmp.Compare(a.Mount, b.Mount), cmp.Compare(a.Name, b.Name))
	})
	return inv
}

// StoreOf is s as the inventory lists it; ok is false for a store of another provider than Vault.
// Two stores with equal StoreOf are the same to the inventory (what a change filter compares).
func StoreOf(s *chain.Store) (st Store, ok bool) {
	v := s.Vault()
	if v == nil {
		return Store{}, false
	}
	st = Store{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name, Server: v.Server,
		VaultNamespace: deref(v.Namespace), Login: chain.LoginMethod(s)}
	if v.Auth != nil {
		st.AuthNamespace = deref(v.Auth.Namespace)
	}
	if r, ok := s.KubernetesRole(); ok {
		st.Mount, st.Role = r.Mount, r.Name
	}
	return st, true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
