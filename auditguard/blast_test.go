package auditguard_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"
	vault "github.com/hashicorp/vault/api"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
)

func vaultStore(kind, ns, name, role, mount string) *unstructured.Unstructured {
	auth := map[string]any{"role": role, "serviceAccountRef": map[string]any{"name": "external-secrets", "namespace": "external-secrets"}}
	if mount != "" {
		auth["mountPath"] = mount
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": kind,
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"provider": map[string]any{"vault": map[string]any{
			"server": "http://vault.vault:8200", "path": "registry-creds", "version": "v2",
			"auth": map[string]any{"kubernetes": auth},
		}}},
	}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}

func externalSecret(ns, name, storeKind, store, target string) *unstructured.Unstructured {
	spec := map[string]any{
		"secretStoreRef": map[string]any{"name": store, "kind": storeKind},
		"data":           []any{map[string]any{"secretKey": "password", "remoteRef": map[string]any{"key": name}}},
	}
	if target != "" { // ESO's schema rejects an empty name; omitted, it defaults to the ExternalSecret's
		spec["target"] = map[string]any{"name": target}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec,
	}}
}

func pullingDeployment(ns, name, secret string) *appsv1.Deployment {
	l := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: l},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.internal:5000/" + name}},
		}},
	}}
	if secret != "" {
		d.Spec.Template.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: secret}}
	}
	return d
}

func podTemplate(name, secret string) corev1.PodTemplateSpec {
	return pullingDeployment("", name, secret).Spec.Template
}

func pullingJob(ns, name, secret string) *batchv1.Job {
	tmpl := podTemplate(name, secret)
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: batchv1.JobSpec{Template: tmpl}}
}

func pullingPod(ns, name, secret string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: podTemplate(name, secret).Spec}
}

func pullingReplicaSet(ns, name, secret string) *appsv1.ReplicaSet {
	d := pullingDeployment(ns, name, secret)
	return &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
}

// controlled makes obj controlled by an apps/v1 kind/name (the API server does not check that it exists).
func controlled[T crclient.Object](obj T, kind, name string) T {
	yes := true
	obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: "0f4c1a9e-0000-4000-8000-000000000001", Controller: &yes}})
	return obj
}

func withCreationPolicy(es *unstructured.Unstructured, policy string) *unstructured.Unstructured {
	if err := unstructured.SetNestedField(es.Object, policy, "spec", "target", "creationPolicy"); err != nil {
		panic(err)
	}
	return es
}

func withServiceAccount(d *appsv1.Deployment, sa string) *appsv1.Deployment {
	d.Spec.Template.Spec.ServiceAccountName = sa
	return d
}

// TestBlastRadius computes role → stores → ExternalSecrets → Secrets → workloads against a real
// kube-apiserver with ESO's CRDs.
func TestBlastRadius(t *testing.T) {
	testenv.KubebuilderAssets(t)
	env := testenv.Patient(&envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: testenv.ESOCRDFiles(t)}, ErrorIfCRDPathMissing: true})
	cfg, err := env.Start()
	must(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	c, err := crclient.New(cfg, crclient.Options{})
	must(t, err)
	ctx := t.Context()
	for _, ns := range []string{"prod", "payments", "external-secrets"} {
		must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	for _, o := range []crclient.Object{
		vaultStore("ClusterSecretStore", "", "vault", "external-secrets-operator", ""),
		vaultStore("SecretStore", "payments", "vault-payments", "payments", "k8s-payments"),
		vaultStore("SecretStore", "prod", "vault-other-mount", "external-secrets-operator", "other"),
		externalSecret("prod", "order-service-regcred", "ClusterSecretStore", "vault", "regcred-order-service"),
		externalSecret("prod", "inventory-regcred", "ClusterSecretStore", "vault", ""),
		externalSecret("payments", "payment-regcred", "SecretStore", "vault-payments", "regcred-payment"),
		externalSecret("prod", "unrelated", "SecretStore", "vault-other-mount", "regcred-unrelated"),
		pullingDeployment("prod", "order-service", "regcred-order-service"),
		pullingDeployment("prod", "inventory", "inventory-regcred"),
		pullingDeployment("payments", "payment-service", "regcred-payment"),
		pullingDeployment("payments", "order-service-lookalike", "regcred-order-service"), // other namespace: not affected
		// Pulls through its ServiceAccount only: the manifest names no secret.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "batch"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred-order-service"}}},
		withServiceAccount(pullingDeployment("prod", "nightly-report", ""), "batch"),
		// The namespace's default account hands the payments secret to pods that name no pull secret:
		// ledger, not the lookalike (its own list replaces the account's).
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "default"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred-payment"}}},
		pullingDeployment("payments", "ledger", ""),
		// The webhook's kinds, all of them: a Job and a bare Pod pull on their own; a ReplicaSet its
		// Deployment controls is that Deployment, not a second line.
		pullingJob("prod", "migrate", "regcred-order-service"),
		pullingPod("prod", "debug", "regcred-order-service"),
		controlled(pullingReplicaSet("prod", "order-service-6d4f", "regcred-order-service"), "Deployment", "order-service"),
		// creationPolicy None writes no Secret: nothing pulls with what it does not write.
		withCreationPolicy(externalSecret("prod", "no-secret", "ClusterSecretStore", "vault", "regcred-none"), "None"),
		pullingDeployment("prod", "uses-someone-elses", "regcred-none"),
	} {
		must(t, c.Create(ctx, o))
	}
	b, err := auditguard.NewBlast(ctx, cfg, testr.New(t))
	must(t, err)
	ref := func(kind, ns, name string) events.ObjectRef {
		return events.ObjectRef{Kind: kind, Namespace: ns, Name: name}
	}
	tests := map[string]struct {
		roles []events.RoleRef
		want  *events.BlastRadius
	}{
		"the incident's role": {
			roles: []events.RoleRef{{Mount: "kubernetes", Name: "external-secrets-operator"}},
			want: &events.BlastRadius{
				Stores: []events.ObjectRef{ref("ClusterSecretStore", "", "vault")},
				ExternalSecrets: []events.ObjectRef{ref("ExternalSecret", "prod", "inventory-regcred"), ref("ExternalSecret", "prod", "no-secret"),
					ref("ExternalSecret", "prod", "order-service-regcred")},
				Secrets: []events.ObjectRef{ref("Secret", "prod", "inventory-regcred"), ref("Secret", "prod", "regcred-order-service")},
				Workloads: []events.ObjectRef{ref("Deployment", "prod", "inventory"), ref("Deployment", "prod", "nightly-report"),
					ref("Deployment", "prod", "order-service"), ref("Job", "prod", "migrate"), ref("Pod", "prod", "debug")},
			},
		},
		"namespaced store on its own mount": {
			roles: []events.RoleRef{{Mount: "k8s-payments", Name: "payments"}},
			want: &events.BlastRadius{
				Stores:          []events.ObjectRef{ref("SecretStore", "payments", "vault-payments")},
				ExternalSecrets: []events.ObjectRef{ref("ExternalSecret", "payments", "payment-regcred")},
				Secrets:         []events.ObjectRef{ref("Secret", "payments", "regcred-payment")},
				Workloads:       []events.ObjectRef{ref("Deployment", "payments", "ledger"), ref("Deployment", "payments", "payment-service")},
			},
		},
		"a role no store uses": {roles: []events.RoleRef{{Mount: "kubernetes", Name: "nobody"}}, want: &events.BlastRadius{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got *events.BlastRadius
			deadline := time.Now().Add(30 * time.Second)
			for {
				got, err = b.For(ctx, tc.roles)
				must(t, err)
				if reflect.DeepEqual(got, tc.want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}

	t.Run("missing RBAC: waits and says so, syncs once granted", func(t *testing.T) {
		defer auditguard.SetBlastSyncWarn(300 * time.Millisecond)()
		// The install's rules minus serviceaccounts, as an older ClusterRole would have them.
		rules := []rbacv1.PolicyRule{
			{APIGroups: []string{"external-secrets.io"}, Resources: []string{"secretstores", "clustersecretstores", "externalsecrets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods", "replicationcontrollers"}, Verbs: []string{"get", "list", "watch"}},
		}
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "old-guard"}, Rules: rules}
		must(t, c.Create(ctx, role))
		must(t, c.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "old-guard"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "old-guard"},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "old-guard"}}}))
		user, err := env.AddUser(envtest.User{Name: "old-guard"}, nil)
		must(t, err)
		var logged atomic.Int32
		log := funcr.New(func(_, args string) {
			if strings.Contains(args, "serviceaccounts") {
				logged.Add(1)
			}
		}, funcr.Options{})
		done := make(chan error, 1)
		go func() {
			_, err := auditguard.NewBlast(ctx, user.Config(), log)
			done <- err
		}()
		deadline := time.Now().Add(20 * time.Second)
		for logged.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if logged.Load() == 0 {
			t.Fatal("NewBlast said nothing about the caches it cannot sync")
		}
		select {
		case err := <-done:
			t.Fatalf("NewBlast returned (%v) without list rights on serviceaccounts", err)
		default:
		}
		role.Rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}})
		must(t, c.Update(ctx, role))
		select {
		case err := <-done:
			must(t, err)
		case <-time.After(60 * time.Second):
			t.Fatal("NewBlast did not sync after the ClusterRole was fixed")
		}
	})

	t.Run("policy.restored carries the blast radius", func(t *testing.T) {
		user, err := env.AddUser(envtest.User{Name: "credchain-auditguard", Groups: []string{"system:masters"}}, nil)
		must(t, err)
		kc, err := user.KubeConfig()
		must(t, err)
		e := setup(t)
		e.kube = filepath.Join(t.TempDir(), "kubeconfig")
		must(t, os.WriteFile(e.kube, kc, 0o600))
		e.metrics = testenv.FreeAddrT(t)
		e.startGuard(t, false)
		must(t, e.root.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": e.auditLog}}))
		must(t, e.root.Sys().EnableAuditWithOptions("guard", &vault.EnableAuditOptions{Type: "socket",
			Options: map[string]string{"address": e.listen, "socket_type": "tcp"}}))
		// The caches sync in the background; the gauge says when events carry the blast radius.
		waitMetric(t, e.metrics, "credchain_auditguard_blast_radius_ready", 1)
		n := e.events.Count()
		must(t, e.root.Sys().DeletePolicy("eso-order-service"))
		ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
		if want := tests["the incident's role"].want; !reflect.DeepEqual(ev.BlastRadius, want) {
			t.Fatalf("blast radius %+v, want %+v", ev.BlastRadius, want)
		}
		testenv.WriteExample(t, ev) // for docs/events.md
	})
}

// waitMetric scrapes a guard's /metrics until the unlabelled series name has value want.
func waitMetric(t *testing.T, addr, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := testenv.Metric(t.Context(), "http://"+addr+"/metrics", name)
		if err == nil && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (%v) after 60s, want %v", name, v, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
