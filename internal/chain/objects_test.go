package chain

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func roleStore(kind, ns, name, mount, role string) *Store {
	spec := &StoreSpec{Provider: StoreProvider{Names: []string{"vault"}, Vault: &VaultProvider{Server: "http://vault:8200",
		Auth: &VaultAuth{Kubernetes: &VaultKubernetesAuth{MountPath: mount, Role: role}}}}}
	return &Store{Kind: kind, Namespace: ns, Name: name, Spec: spec, Status: &StoreStatus{}}
}

func es(ns, name string, store StoreRef, target, policy string) *ExternalSecret {
	e := &ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	e.Spec.SecretStoreRef = store
	e.Spec.Target.Name, e.Spec.Target.CreationPolicy = target, policy
	return e
}

// TestImpact walks the model down from roles: store kinds and namespaces, the mount's default and
// slashes, creation policies that write no Secret, workloads through their ServiceAccount, own
// lists replacing the account's, admitted Pods, and objects their controller stands for.
func TestImpact(t *testing.T) {
	o := &Objects{
		Stores: []*Store{
			roleStore(KindClusterSecretStore, "", "vault", "", "eso"),
			roleStore(KindSecretStore, "team", "vault", "/clusters/prod/", "team"),
			{Kind: KindSecretStore, Namespace: "team", Name: "aws", Spec: &StoreSpec{Provider: StoreProvider{Names: []string{"aws"}}}},
		},
		ExternalSecrets: []*ExternalSecret{
			es("prod", "regcred", StoreRef{Name: "vault", Kind: KindClusterSecretStore}, "regcred", ""),
			es("prod", "none", StoreRef{Name: "vault", Kind: KindClusterSecretStore}, "untouched", CreationNone),
			es("team", "team-regcred", StoreRef{Name: "vault"}, "", ""), // SecretStore in its namespace; target defaults to its name
			es("other", "same-name", StoreRef{Name: "vault"}, "", ""),   // names a SecretStore "vault" in "other", which does not exist
		},
		Workloads: []*Workload{
			{Kind: "Deployment", Namespace: "prod", Name: "web", PullSecrets: []string{"regcred"}, ServiceAccount: "default", Inherits: true},
			{Kind: "ReplicaSet", Namespace: "prod", Name: "web-5d", PullSecrets: []string{"regcred"}, ServiceAccount: "default", Inherits: true, ControlledBy: "Deployment"},
			{Kind: "Deployment", Namespace: "prod", Name: "inherits", ServiceAccount: "puller", Inherits: true},
			{Kind: "Deployment", Namespace: "prod", Name: "own-list", PullSecrets: []string{"other"}, ServiceAccount: "puller", Inherits: true},
			{Kind: "Pod", Namespace: "prod", Name: "admitted", ServiceAccount: "puller"}, // its account's list is already in it, or was not
			{Kind: "Deployment", Namespace: "prod", Name: "untouched", PullSecrets: []string{"untouched"}, ServiceAccount: "default", Inherits: true},
			{Kind: "StatefulSet", Namespace: "team", Name: "db", PullSecrets: []string{"team-regcred", "team-regcred"}, ServiceAccount: "default", Inherits: true},
		},
	}
	o.AddServiceAccount("prod", "puller", []string{"regcred"})
	m := NewModel(o)
	for name, tc := range map[string]struct {
		roles []RoleRef
		want  Impact
	}{
		"cluster store, default mount": {roles: []RoleRef{{Mount: "kubernetes", Name: "eso"}}, want: Impact{
			Stores:          []Ref{{Kind: KindClusterSecretStore, Name: "vault"}},
			ExternalSecrets: []Ref{{"ExternalSecret", "prod", "none"}, {"ExternalSecret", "prod", "regcred"}},
			Secrets:         []Ref{{"Secret", "prod", "regcred"}},
			Workloads:       []Ref{{"Deployment", "prod", "inherits"}, {"Deployment", "prod", "web"}},
		}},
		"namespaced store, mount with slashes": {roles: []RoleRef{{Mount: "clusters/prod", Name: "team"}}, want: Impact{
			Stores:          []Ref{{KindSecretStore, "team", "vault"}},
			ExternalSecrets: []Ref{{"ExternalSecret", "team", "team-regcred"}},
			Secrets:         []Ref{{"Secret", "team", "team-regcred"}},
			Workloads:       []Ref{{"StatefulSet", "team", "db"}},
		}},
		"same role name on another mount": {roles: []RoleRef{{Mount: "kubernetes", Name: "team"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := m.Impact(tc.roles); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if s, k := m.StoreOf(o.ExternalSecrets[3]); s != nil || k != (StoreKey{KindSecretStore, "other", "vault"}) {
		t.Errorf("StoreOf(other/same-name) = %v, %v; want no store, key SecretStore other/vault", s, k)
	}
}

func TestWorkloadOf(t *testing.T) {
	yes := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web-5d",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: &yes}}}}
	rs.Spec.Template.Spec.DeprecatedServiceAccount = "old"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "p",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Node", Name: "n1", Controller: &yes}}}} // a static pod's mirror
	pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "a"}, {Name: "b"}}
	for name, tc := range map[string]struct {
		w    *Workload
		want Workload
	}{
		"controlled ReplicaSet, deprecated account field": {w: must(WorkloadOf(rs, true)),
			want: Workload{Kind: "ReplicaSet", Namespace: "prod", Name: "web-5d", ServiceAccount: "old", Inherits: true, ControlledBy: "Deployment"}},
		"admitted Pod, owner not a workload": {w: must(WorkloadOf(pod, true)),
			want: Workload{Kind: "Pod", Namespace: "prod", Name: "p", PullSecrets: []string{"a", "b"}, ServiceAccount: "default"}},
		"a Pod manifest still inherits": {w: must(WorkloadOf(pod, false)),
			want: Workload{Kind: "Pod", Namespace: "prod", Name: "p", PullSecrets: []string{"a", "b"}, ServiceAccount: "default", Inherits: true}},
	} {
		t.Run(name, func(t *testing.T) {
			if !reflect.DeepEqual(*tc.w, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *tc.w, tc.want)
			}
		})
	}
	if _, ok := WorkloadOf(&corev1.ConfigMap{}, true); ok {
		t.Error("a ConfigMap is a workload")
	}
}

func must(w *Workload, ok bool) *Workload {
	if !ok {
		panic("not a workload")
	}
	return w
}
