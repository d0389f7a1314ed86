// Package explaintest sets up the incident's chain on real servers for explain's tests: a
// kube-apiserver with ESO's CRDs (envtest) and a Vault dev server, as ESO would have left them
// after a good sync. There is no ESO controller in envtest, so the ExternalSecret's and the
// store's status, the Secret ESO writes and ESO's events are written here, as ESO v0.16.2 writes
// them.
package explaintest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/testenv"
)

// The incident's names, as e2e has them.
const (
	Namespace      = "prod"
	ExternalSecret = "order-service-regcred"
	PullSecret     = "regcred-order-service"
	Workload       = "order-service"
	Store          = "vault"
	Role           = "external-secrets-operator"
	Policy         = "eso-order-service"
	ESONamespace   = "external-secrets"
	ESOAccount     = "external-secrets"
)

// OrderServicePolicy is the runbook's policy, as e2e writes it.
const OrderServicePolicy = `path "registry-creds/data/order-service" {
  capabilities = ["read"]
}
`

// ESOPolicies are the policies the runbook's role names.
var ESOPolicies = []string{"eso-default", "eso-order-service", "eso-payment-service"}

// Cluster is a running kube-apiserver with ESO's CRDs.
type Cluster struct {
	Config *rest.Config
	C      client.Client
	// Kubeconfig is a file for a system:masters user, for the command.
	Kubeconfig string
}

// StartCluster starts envtest with ESO's CRDs and stops it at cleanup.
func StartCluster(t *testing.T) *Cluster {
	t.Helper()
	testenv.KubebuilderAssets(t)
	env := testenv.Patient(&envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: testenv.ESOCRDFiles(t)}, ErrorIfCRDPathMissing: true})
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	chain.AddToScheme(s, "v1")
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	user, err := env.AddUser(envtest.User{Name: "on-call", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Cluster{Config: cfg, C: c, Kubeconfig: path}
}

// Registry is where the pull secret's credential is for, and the credential.
type Registry struct {
	Host, User, Password string
}

// SetUpChain creates the healthy chain: the ClusterSecretStore (Kubernetes auth as ESO's
// ServiceAccount, Vault at vaultAddr), the ExternalSecret, the Secret it wrote for reg (owned by
// it, as ESO's creationPolicy Owner leaves it), the Deployment pulling with it, and the statuses
// of a good sync.
func (c *Cluster) SetUpChain(t *testing.T, vaultAddr string, reg Registry) {
	t.Helper()
	for _, ns := range []string{Namespace, ESONamespace} {
		c.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	c.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ESONamespace, Name: ESOAccount}})
	c.create(t, &chain.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: Store}, Spec: chain.StoreSpec{Provider: chain.StoreProvider{
		Vault: &chain.VaultProvider{Server: vaultAddr, Path: ptr("registry-creds"), Version: "v2", Auth: &chain.VaultAuth{
			Kubernetes: &chain.VaultKubernetesAuth{MountPath: "kubernetes", Role: Role,
				ServiceAccountRef: &chain.ServiceAccountRef{Name: ESOAccount, Namespace: ptr(ESONamespace)}}}}}}})
	es := &chain.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: ExternalSecret}, Spec: chain.ExternalSecretSpec{
		RefreshInterval: &metav1.Duration{Duration: time.Hour},
		SecretStoreRef:  chain.StoreRef{Name: Store, Kind: chain.KindClusterSecretStore},
		Target:          chain.ExternalSecretTarget{Name: PullSecret, Template: &chain.ExternalSecretTemplate{Type: chain.SecretTypeDockerConfigJSON}},
		Data: []chain.ExternalSecretData{
			{SecretKey: "username", RemoteRef: chain.RemoteRef{Key: "order-service", Property: "username"}},
			{SecretKey: "password", RemoteRef: chain.RemoteRef{Key: "order-service", Property: "password"}},
		}}}
	c.create(t, es)
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{"username": reg.User, "password": reg.Password}}})
	owner := metav1.OwnerReference{APIVersion: chain.ESOGroup + "/v1", Kind: "ExternalSecret", Name: es.Name, UID: es.UID,
		Controller: ptr(true), BlockOwnerDeletion: ptr(true)}
	c.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: PullSecret, OwnerReferences: []metav1.OwnerReference{owner},
		Labels: map[string]string{"reconcile.external-secrets.io/managed": "true"}},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: cfg}})
	c.create(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: Workload}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": Workload}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": Workload}}, Spec: corev1.PodSpec{
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: PullSecret}},
			Containers:       []corev1.Container{{Name: "app", Image: reg.Host + "/order-service:1.4.2"}}}}}})
	now := time.Now().UTC().Format(time.RFC3339)
	c.patchStatus(t, "ClusterSecretStore", "", Store, fmt.Sprintf(`{"status":{"capabilities":"ReadWrite","conditions":[{"type":"Ready","status":"True","reason":"Valid","message":"store validated","lastTransitionTime":%q}]}}`, now))
	c.Synced(t)
}

// Synced writes the ExternalSecret's status after a good sync, as ESO does.
func (c *Cluster) Synced(t *testing.T) {
	t.Helper()
	now := time.Now().UTC().Format(time.RFC3339)
	c.patchStatus(t, "ExternalSecret", Namespace, ExternalSecret, fmt.Sprintf(`{"status":{"refreshTime":%q,"binding":{"name":%q},"syncedResourceVersion":"1-abc","conditions":[{"type":"Ready","status":"True","reason":"SecretSynced","message":"secret synced","lastTransitionTime":%q}]}}`,
		now, PullSecret, now))
}

// SyncFailed writes what ESO v0.16.2 leaves after a sync Vault refuses with message: Ready=False
// SecretSyncedError, and a Warning event UpdateFailed carrying Vault's error.
func (c *Cluster) SyncFailed(t *testing.T, message string) {
	t.Helper()
	now := time.Now().UTC()
	c.patchStatus(t, "ExternalSecret", Namespace, ExternalSecret, fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"False","reason":"SecretSyncedError","message":"could not get secret data from provider","lastTransitionTime":%q}]}}`,
		now.Format(time.RFC3339)))
	var es chain.ExternalSecret
	if err := c.C.Get(t.Context(), types.NamespacedName{Namespace: Namespace, Name: ExternalSecret}, &es); err != nil {
		t.Fatal(err)
	}
	c.create(t, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: fmt.Sprintf("%s.%x", ExternalSecret, now.UnixNano())},
		InvolvedObject: corev1.ObjectReference{Kind: "ExternalSecret", Namespace: Namespace, Name: ExternalSecret, UID: es.UID, APIVersion: chain.ESOGroup + "/v1"},
		Type:           corev1.EventTypeWarning, Reason: "UpdateFailed", Message: message, Count: 1,
		FirstTimestamp: metav1.NewTime(now), LastTimestamp: metav1.NewTime(now), Source: corev1.EventSource{Component: "external-secrets"}})
}

// VaultDenied is the message ESO v0.16.2 records when Vault refuses the read with a 403.
func VaultDenied(vaultAddr string) string {
	return "error processing spec.data[0] (key: order-service), err: cannot read secret data from Vault: Error making API request.\n\n" +
		"URL: GET " + vaultAddr + "/v1/registry-creds/data/order-service\nCode: 403. Errors:\n\n* 1 error occurred:\n\t* permission denied\n\n"
}

func (c *Cluster) create(t *testing.T, o client.Object) {
	t.Helper()
	if err := c.C.Create(t.Context(), o); err != nil {
		t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
}

// patchStatus merge-patches an ESO object's status subresource.
func (c *Cluster) patchStatus(t *testing.T, kind, ns, name, patch string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(chain.ESOGroup + "/v1")
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	if err := c.C.Status().Patch(t.Context(), u, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatalf("status of %s %s: %v", kind, name, err)
	}
}

// SetUpVault writes the incident's Vault into a dev server: the KV mount and the credential, the
// policies, the Kubernetes auth mount and the role binding ESO's ServiceAccount.
func SetUpVault(t *testing.T, root *vaultapi.Client, reg Registry) {
	t.Helper()
	if err := root.Sys().Mount("registry-creds", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("registry-creds/data/order-service", map[string]any{"data": map[string]any{"username": reg.User, "password": reg.Password}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range ESOPolicies {
		body := OrderServicePolicy
		if p != Policy {
			body = fmt.Sprintf("path %q {\n  capabilities = [\"read\"]\n}\n", "registry-creds/data/"+strings.TrimPrefix(p, "eso-"))
		}
		if err := root.Sys().PutPolicy(p, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Sys().EnableAuthWithOptions("kubernetes", &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/kubernetes/config", map[string]any{"kubernetes_host": "https://example.invalid", "disable_local_ca_jwt": true}); err != nil {
		t.Fatal(err)
	}
	// As e2e writes it: the legacy policies field, and a TTL the fix must keep.
	if _, err := root.Logical().Write("auth/kubernetes/role/"+Role, map[string]any{
		"bound_service_account_names": ESOAccount, "bound_service_account_namespaces": ESONamespace,
		"policies": strings.Join(ESOPolicies, ","), "ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
}

// ReadOnlyToken writes manifests/vault/check-policy.hcl (found from dir up) and returns a token
// holding only it: what explain is documented to need.
func ReadOnlyToken(t *testing.T, root *vaultapi.Client, repoRoot string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "manifests", "vault", "check-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("credchain-check", string(b)); err != nil {
		t.Fatal(err)
	}
	s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"credchain-check"}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// VaultClient is a client of addr with token, without retries.
func VaultClient(t *testing.T, addr, token string) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address, cfg.MaxRetries = addr, 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func ptr[T any](v T) *T { return &v }
