package main

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// casesNamespace holds the correctness pass's objects, set up with no webhook routed there.
const casesNamespace = "peerbench-cases"

// vaultForbidden is the provider error ESO v0.16.2 puts in its UpdateFailed Warning Event when
// Vault refuses the read (seen in e2e's incident replay); the ExternalSecret's Ready condition
// says only "could not get secret data from provider".
const vaultForbidden = "error processing spec.data[0] (key: registry/regcred-failing), err: Error making API request. URL: GET http://127.0.0.1:8200/v1/secret/data/registry/regcred-failing Code: 403. Errors: * 1 error occurred: * permission denied"

// caseFixtures are the ExternalSecrets of the correctness pass, one or two per claim.
var caseFixtures = []esSpec{
	readySpec("regcred-ok"),
	{name: "regcred-failing", ready: "False", reason: "SecretSyncedError", message: "could not get secret data from provider", binding: "regcred-failing", synced: true},
	// ESO's own examples name the ExternalSecret after the app and the Secret in spec.target.name.
	{name: "order-service-regcred", targetName: "regcred-target", ready: "True", reason: "SecretSynced", message: "secret synced", binding: "regcred-target", synced: true},
	// A rename in flight: spec.target.name says v2, ESO last wrote (status.binding) v1.
	{name: "regcred-renamed", targetName: "regcred-v2", ready: "True", reason: "SecretSynced", message: "secret synced", binding: "regcred-v1", synced: true},
	readySpec("regcred-default"),
	// Named like the pull secret, but writes another Secret.
	{name: "regcred-decoy", targetName: "regcred-elsewhere", ready: "True", reason: "SecretSynced", message: "secret synced", binding: "regcred-elsewhere", synced: true},
	// Applied together with the workload: ESO has not reconciled it yet.
	{name: "regcred-fresh"},
}

// setupCases creates the fixtures: the ExternalSecrets and ESO's Warning Event, a ServiceAccount
// whose pull secret is the failing one, a Deployment whose pull secret the decoy names, and the
// replicaset-controller's RBAC (the pass impersonates it).
func setupCases(ctx context.Context, cl *cluster) error {
	for _, s := range caseFixtures {
		if err := createExternalSecret(ctx, cl.c, casesNamespace, s); err != nil {
			return err
		}
	}
	core := cl.kube.CoreV1()
	if _, err := core.Events(casesNamespace).Create(ctx, warningEvent(casesNamespace, "regcred-failing", vaultForbidden), metav1.CreateOptions{}); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "puller", Namespace: casesNamespace},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred-failing"}}}
	if _, err := core.ServiceAccounts(casesNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return err
	}
	// Running workloads the UPDATE cases restart (a template change keeping the pull secret).
	for name, secret := range updateApps {
		if _, err := cl.kube.AppsV1().Deployments(casesNamespace).Create(ctx, deployment(casesNamespace, name, "", secret), metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "peerbench-replicaset-controller"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "replicaset-controller", Namespace: "kube-system"}}}
	_, err := cl.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	return err
}

// verdict is what the person running kubectl sees.
type verdict struct {
	allowed  bool
	warnings []string
	message  string // the denial
}

func (v verdict) String() string {
	switch {
	case !v.allowed:
		return "deny"
	case len(v.warnings) > 0:
		return "admit + warning"
	default:
		return "admit"
	}
}

// detail is the denial or the warnings, on one line.
func (v verdict) detail() string {
	if !v.allowed {
		return oneLine(v.message)
	}
	return oneLine(strings.Join(v.warnings, " | "))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func verdictOf(vc *verdictClient, err error) verdict {
	v := verdict{allowed: err == nil, warnings: vc.warnings.take()}
	if err != nil {
		v.message = err.Error()
	}
	return v
}

// impersonating is cfg acting as user (with the groups the API server gives a ServiceAccount).
func impersonating(cfg *rest.Config, user string, groups ...string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	return c
}

// controllerPod is a Pod as the ReplicaSet controller creates it: controlled by a ReplicaSet.
func controllerPod(ns, pullSecret string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "order-service-7d4b9c-x2x9q", Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "order-service-7d4b9c", UID: "3f0b5c1e-0000-4000-8000-000000000001",
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: pullSecret}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/order-service:1.4.2"}}},
	}
}

func caseErr(name string, err error) error { return fmt.Errorf("case %q: %w", name, err) }
