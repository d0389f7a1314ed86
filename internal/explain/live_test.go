package explain

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/explain/explaintest"
	"github.com/credchain/credchain/internal/testenv"
)

// recorder counts the requests a transport carries, and keeps each one's method and path.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r.mu.Lock()
		r.calls = append(r.calls, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// liveChain is the incident's chain on a real kube-apiserver and Vault dev server.
type liveChain struct {
	cluster *explaintest.Cluster
	vault   *testenv.DevVault
	root    *vaultapi.Client
	token   string // holds only manifests/vault/check-policy.hcl
}

func startLiveChain(t *testing.T) *liveChain {
	t.Helper()
	testenv.NeedsServer(t, "kube-apiserver and vault")
	dv := testenv.StartVault(t)
	lc := &liveChain{cluster: explaintest.StartCluster(t), vault: dv, root: explaintest.VaultClient(t, dv.Addr, dv.RootToken)}
	reg := explaintest.Registry{Host: "registry.example:5000", User: "order-service-puller", Password: "s3cret-pull-password"}
	lc.cluster.SetUpChain(t, dv.Addr, reg)
	explaintest.SetUpVault(t, lc.root, reg)
	lc.token = explaintest.ReadOnlyToken(t, lc.root, "../..")
	return lc
}

// explain runs Gather and Judge as the command does, through counting transports, and returns
// the report with the Kubernetes and Vault requests made.
func (lc *liveChain) explain(t *testing.T, target Target) (*Report, []string, []string) {
	t.Helper()
	var kube, vault recorder
	cfg := rest.CopyConfig(lc.cluster.Config)
	cfg.Wrap(kube.wrap)
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	chain.AddToScheme(s, "v1")
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	vc := vaultapi.DefaultConfig()
	vc.Address, vc.MaxRetries = lc.vault.Addr, 0
	vc.HttpClient.Transport = vault.wrap(vc.HttpClient.Transport)
	v, err := vaultapi.NewClient(vc)
	if err != nil {
		t.Fatal(err)
	}
	v.SetToken(lc.token)
	f, err := Gather(context.Background(), c, target, Options{Vault: v})
	if err != nil {
		t.Fatal(err)
	}
	return Judge(f), kube.all(), vault.all()
}

var orderService = Target{Kind: "Deployment", Namespace: explaintest.Namespace, Name: explaintest.Workload}

// TestGatherIsBounded: one explain makes the same requests whether or not the cluster holds 50
// unrelated ExternalSecrets in 10 other namespaces (and Vault 30 unrelated policies), lists no
// ExternalSecret outside the workload's namespace, and reads only the store's role and its
// policies. With the Secret deleted, the namespace's ExternalSecrets are listed once, in that
// namespace only.
func TestGatherIsBounded(t *testing.T) {
	lc := startLiveChain(t)
	ctx := t.Context()
	r, kube0, vault0 := lc.explain(t, orderService)
	if r.State != OK {
		t.Fatalf("healthy chain is %s:\n%s", r.State, text(t, r))
	}
	for i := range 50 {
		ns := fmt.Sprintf("other-%d", i%10)
		if i < 10 {
			if err := lc.cluster.C.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				t.Fatal(err)
			}
		}
		es := &chain.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("es-%d", i)}, Spec: chain.ExternalSecretSpec{
			SecretStoreRef: chain.StoreRef{Name: explaintest.Store, Kind: chain.KindClusterSecretStore},
			Target:         chain.ExternalSecretTarget{Name: explaintest.PullSecret}}}
		if err := lc.cluster.C.Create(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		if err := lc.root.Sys().PutPolicy(fmt.Sprintf("unrelated-%d", i), `path "x/*" { capabilities = ["read"] }`); err != nil {
			t.Fatal(err)
		}
	}
	_, kube50, vault50 := lc.explain(t, orderService)
	if len(kube50) != len(kube0) || len(vault50) != len(vault0) {
		t.Errorf("Kubernetes requests %d → %d, Vault requests %d → %d with 50 unrelated ExternalSecrets and 30 policies; want the same\nbefore: %q\nafter:  %q",
			len(kube0), len(kube50), len(vault0), len(vault50), kube0, kube50)
	}
	t.Logf("healthy chain: %d Kubernetes requests %q; %d Vault requests %q", len(kube0), kube0, len(vault0), vault0)
	for _, call := range append(kube0, kube50...) {
		if strings.Contains(call, "externalsecrets") && !strings.Contains(call, "/namespaces/"+explaintest.Namespace+"/") {
			t.Errorf("a request outside the workload's namespace: %s", call)
		}
	}
	for _, call := range vault0 {
		if strings.HasPrefix(call, "GET /v1/sys/policies/acl/") && !slices.ContainsFunc(explaintest.ESOPolicies, func(p string) bool {
			return strings.HasSuffix(call, "/"+p)
		}) && !strings.HasSuffix(call, "/default") {
			t.Errorf("read a policy the role does not name: %s", call)
		}
	}

	// Without the Secret (and its owner reference) the writer is found by listing prod only.
	if err := lc.cluster.C.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: explaintest.Namespace, Name: explaintest.PullSecret}}); err != nil {
		t.Fatal(err)
	}
	r, kubeGone, _ := lc.explain(t, orderService)
	lists := slices.DeleteFunc(slices.Clone(kubeGone), func(c string) bool { return !strings.HasSuffix(c, "/externalsecrets") })
	if want := []string{"GET /apis/external-secrets.io/v1/namespaces/prod/externalsecrets"}; !slices.Equal(lists, want) || r.State != Broken {
		t.Errorf("Secret deleted: state %s, ExternalSecret lists %q, want %q\n%s", r.State, lists, want, text(t, r))
	}
	if es := find(r, LinkExternalSecret); es == nil || es.ExternalSecret.Name != explaintest.ExternalSecret {
		t.Errorf("the writer was not found by spec.target.name:\n%s", text(t, r))
	}
	t.Logf("Secret deleted: %d Kubernetes requests %q", len(kubeGone), kubeGone)
}

func text(t *testing.T, r *Report) string {
	t.Helper()
	var b strings.Builder
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func find(r *Report, kind string) *Link {
	for i := range r.Links {
		if r.Links[i].Kind == kind {
			return &r.Links[i]
		}
	}
	return nil
}
