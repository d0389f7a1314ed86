package auditguard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/internal/events"
)

// Blast computes the blast radius of Vault roles from informer caches (no API call per event):
// role → ESO SecretStores/ClusterSecretStores logging in with it (spec.provider.vault.auth.kubernetes
// role and mountPath) → ExternalSecrets using those stores → their target Secrets → Deployments,
// StatefulSets, DaemonSets and CronJobs whose pod templates pull with those Secrets, directly or
// through their ServiceAccount's imagePullSecrets (the ServiceAccount admission plugin copies those
// into every pod that names none, so a workload can depend on a Secret its manifest never names).
type Blast struct {
	cache   cache.Cache
	version string // ESO API version served
}

// NewBlast starts informers on the cluster and waits for them to sync.
func NewBlast(ctx context.Context, cfg *rest.Config, log logr.Logger) (*Blast, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, fmt.Errorf("creating cluster cache: %w", err)
	}
	b := &Blast{cache: c}
	mapper, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating cluster client: %w", err)
	}
	for _, v := range []string{"v1", "v1beta1"} {
		if _, err := mapper.RESTMapper().RESTMapping(schema.GroupKind{Group: "external-secrets.io", Kind: "ExternalSecret"}, v); err == nil {
			b.version = v
			break
		}
	}
	if b.version == "" {
		return nil, fmt.Errorf("the cluster serves no ExternalSecret API (external-secrets.io/v1 or v1beta1)")
	}
	// Register every informer before starting the cache.
	for _, l := range b.lists() {
		if _, err := c.GetInformer(ctx, listItem(l)); err != nil {
			return nil, fmt.Errorf("informer for %T: %w", l, err)
		}
	}
	go func() {
		if err := c.Start(ctx); err != nil {
			log.Error(err, "cluster cache stopped")
		}
	}()
	// An informer the guard may not list (an older ClusterRole, say) never syncs; say so every
	// blastSyncWarn and keep waiting, so fixing the RBAC brings the blast radius back without a restart.
	for {
		wctx, cancel := context.WithTimeout(ctx, blastSyncWarn)
		synced := c.WaitForCacheSync(wctx)
		cancel()
		if synced {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("cluster caches did not sync: %w", ctx.Err())
		}
		log.Info("blast radius caches not synced yet; events name only the Vault roles until they are. Check that the guard's ClusterRole allows get/list/watch on ESO stores and ExternalSecrets, deployments, statefulsets, daemonsets, cronjobs and serviceaccounts",
			"waited", blastSyncWarn.String())
	}
	log.Info("blast radius caches synced", "externalSecretVersion", b.version)
	return b, nil
}

func (b *Blast) esoList(kind string) *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(schema.GroupVersionKind{Group: "external-secrets.io", Version: b.version, Kind: kind + "List"})
	return l
}

func (b *Blast) lists() []client.ObjectList {
	return []client.ObjectList{b.esoList("SecretStore"), b.esoList("ClusterSecretStore"), b.esoList("ExternalSecret"),
		&appsv1.DeploymentList{}, &appsv1.StatefulSetList{}, &appsv1.DaemonSetList{}, &batchv1.CronJobList{},
		&corev1.ServiceAccountList{}}
}

func listItem(l client.ObjectList) client.Object {
	switch l := l.(type) {
	case *unstructured.UnstructuredList:
		u := &unstructured.Unstructured{}
		gvk := l.GroupVersionKind()
		gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
		u.SetGroupVersionKind(gvk)
		return u
	case *appsv1.DeploymentList:
		return &appsv1.Deployment{}
	case *appsv1.StatefulSetList:
		return &appsv1.StatefulSet{}
	case *appsv1.DaemonSetList:
		return &appsv1.DaemonSet{}
	case *batchv1.CronJobList:
		return &batchv1.CronJob{}
	case *corev1.ServiceAccountList:
		return &corev1.ServiceAccount{}
	}
	return nil
}

// blastSyncWarn is how long NewBlast waits for its caches before saying it is still waiting.
var blastSyncWarn = 2 * time.Minute

type storeKey struct{ kind, ns, name string }

// For returns the blast radius of roles, sorted.
func (b *Blast) For(ctx context.Context, roles []events.RoleRef) (*events.BlastRadius, error) {
	br := &events.BlastRadius{}
	stores := map[storeKey]bool{}
	for _, kind := range []string{"SecretStore", "ClusterSecretStore"} {
		l := b.esoList(kind)
		if err := b.cache.List(ctx, l); err != nil {
			return nil, fmt.Errorf("listing %s: %w", kind, err)
		}
		for _, s := range l.Items {
			role, _, _ := unstructured.NestedString(s.Object, "spec", "provider", "vault", "auth", "kubernetes", "role")
			mount, _, _ := unstructured.NestedString(s.Object, "spec", "provider", "vault", "auth", "kubernetes", "mountPath")
			if mount == "" {
				mount = "kubernetes" // ESO's default
			}
			if !slices.Contains(roles, events.RoleRef{Mount: strings.Trim(mount, "/"), Name: role}) {
				continue
			}
			stores[storeKey{kind, s.GetNamespace(), s.GetName()}] = true
			br.Stores = append(br.Stores, events.ObjectRef{Kind: kind, Namespace: s.GetNamespace(), Name: s.GetName()})
		}
	}
	secrets := map[string]bool{} // ns/name
	esl := b.esoList("ExternalSecret")
	if err := b.cache.List(ctx, esl); err != nil {
		return nil, fmt.Errorf("listing ExternalSecrets: %w", err)
	}
	for _, es := range esl.Items {
		kind, _, _ := unstructured.NestedString(es.Object, "spec", "secretStoreRef", "kind")
		name, _, _ := unstructured.NestedString(es.Object, "spec", "secretStoreRef", "name")
		if kind == "" {
			kind = "SecretStore"
		}
		ns := ""
		if kind == "SecretStore" {
			ns = es.GetNamespace()
		}
		if !stores[storeKey{kind, ns, name}] {
			continue
		}
		br.ExternalSecrets = append(br.ExternalSecrets, events.ObjectRef{Kind: "ExternalSecret", Namespace: es.GetNamespace(), Name: es.GetName()})
		target, _, _ := unstructured.NestedString(es.Object, "spec", "target", "name")
		if target == "" {
			target = es.GetName()
		}
		if !secrets[es.GetNamespace()+"/"+target] {
			secrets[es.GetNamespace()+"/"+target] = true
			br.Secrets = append(br.Secrets, events.ObjectRef{Kind: "Secret", Namespace: es.GetNamespace(), Name: target})
		}
	}
	if len(secrets) > 0 {
		if err := b.workloads(ctx, secrets, br); err != nil {
			return nil, err
		}
	}
	for _, l := range [][]events.ObjectRef{br.Stores, br.ExternalSecrets, br.Secrets, br.Workloads} {
		slices.SortFunc(l, func(a, b events.ObjectRef) int { return strings.Compare(a.String(), b.String()) })
	}
	return br, nil
}

func (b *Blast) workloads(ctx context.Context, secrets map[string]bool, br *events.BlastRadius) error {
	var sas corev1.ServiceAccountList
	if err := b.cache.List(ctx, &sas); err != nil {
		return fmt.Errorf("listing service accounts: %w", err)
	}
	inherited := map[string]bool{} // ns/name of accounts that hand an affected secret to their pods
	for _, sa := range sas.Items {
		for _, r := range sa.ImagePullSecrets {
			if secrets[sa.Namespace+"/"+r.Name] {
				inherited[sa.Namespace+"/"+sa.Name] = true
			}
		}
	}
	uses := func(ns string, spec *corev1.PodSpec) bool {
		if len(spec.ImagePullSecrets) > 0 { // its own list replaces the account's
			for _, r := range spec.ImagePullSecrets {
				if secrets[ns+"/"+r.Name] {
					return true
				}
			}
			return false
		}
		sa := spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		return inherited[ns+"/"+sa]
	}
	add := func(kind, ns, name string, spec *corev1.PodSpec) {
		if uses(ns, spec) {
			br.Workloads = append(br.Workloads, events.ObjectRef{Kind: kind, Namespace: ns, Name: name})
		}
	}
	var deps appsv1.DeploymentList
	var sts appsv1.StatefulSetList
	var dss appsv1.DaemonSetList
	var cjs batchv1.CronJobList
	for _, l := range []client.ObjectList{&deps, &sts, &dss, &cjs} {
		if err := b.cache.List(ctx, l); err != nil {
			return fmt.Errorf("listing workloads: %w", err)
		}
	}
	for i := range deps.Items {
		add("Deployment", deps.Items[i].Namespace, deps.Items[i].Name, &deps.Items[i].Spec.Template.Spec)
	}
	for i := range sts.Items {
		add("StatefulSet", sts.Items[i].Namespace, sts.Items[i].Name, &sts.Items[i].Spec.Template.Spec)
	}
	for i := range dss.Items {
		add("DaemonSet", dss.Items[i].Namespace, dss.Items[i].Name, &dss.Items[i].Spec.Template.Spec)
	}
	for i := range cjs.Items {
		add("CronJob", cjs.Items[i].Namespace, cjs.Items[i].Name, &cjs.Items[i].Spec.JobTemplate.Spec.Template.Spec)
	}
	return nil
}
