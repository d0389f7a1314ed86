package chain

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// List reads the chain's objects from r: an informer cache (the guard's blast radius) or a direct
// client (`check` against the current context). r's scheme must hold client-go's types and
// AddToScheme's. From a cache, objects are not copied: the result must not be modified.
func List(ctx context.Context, r client.Reader, opts ...client.ListOption) (*Objects, error) {
	o := &Objects{ServiceAccounts: map[string][]string{}}
	var ess ExternalSecretList
	var ss SecretStoreList
	var css ClusterSecretStoreList
	var sas corev1.ServiceAccountList
	for what, l := range map[string]client.ObjectList{"ExternalSecrets": &ess, "SecretStores": &ss,
		"ClusterSecretStores": &css, "ServiceAccounts": &sas} {
		if err := r.List(ctx, l, opts...); err != nil {
			return nil, fmt.Errorf("listing %s: %w", what, err)
		}
	}
	for i := range ess.Items {
		o.ExternalSecrets = append(o.ExternalSecrets, &ess.Items[i])
	}
	for i := range ss.Items {
		o.Stores = append(o.Stores, StoreFromSecretStore(&ss.Items[i]))
	}
	for i := range css.Items {
		o.Stores = append(o.Stores, StoreFromClusterSecretStore(&css.Items[i]))
	}
	for i := range sas.Items {
		o.AddServiceAccount(sas.Items[i].Namespace, sas.Items[i].Name, accountPullSecrets(&sas.Items[i]))
	}
	if err := listWorkloads(ctx, r, o, opts); err != nil {
		return nil, err
	}
	return o, nil
}

func listWorkloads(ctx context.Context, r client.Reader, o *Objects, opts []client.ListOption) error {
	for _, l := range WorkloadLists() {
		if err := r.List(ctx, l, opts...); err != nil {
			return fmt.Errorf("listing %T: %w", l, err)
		}
		if err := meta.EachListItem(l, func(obj runtime.Object) error {
			if co, ok := obj.(client.Object); ok {
				if w, ok := WorkloadOf(co, true); ok {
					o.Workloads = append(o.Workloads, w)
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("internal error: %w", err)
		}
	}
	return nil
}

func accountPullSecrets(sa *corev1.ServiceAccount) []string {
	if len(sa.ImagePullSecrets) == 0 {
		return nil
	}
	out := make([]string, len(sa.ImagePullSecrets))
	for i, r := range sa.ImagePullSecrets {
		out[i] = r.Name
	}
	return out
}
