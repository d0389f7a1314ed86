package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/inventory"
	"github.com/credchain/credchain/internal/testenv"
	"github.com/credchain/credchain/webhook"
)

func inventoryStore(ns, name, mount, role string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"provider": map[string]any{"vault": map[string]any{
			"server": "https://vault." + ns + ".example.com:8200", "path": "registry-creds", "version": "v2",
			"auth": map[string]any{"kubernetes": map[string]any{"mountPath": mount, "role": role,
				"serviceAccountRef": map[string]any{"name": "external-secrets"}}},
		}}},
	}}
}

func inventoryES(ns, name, store, target string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"secretStoreRef": map[string]any{"name": store, "kind": "SecretStore"},
			"target":         map[string]any{"name": target},
			"data":           []any{map[string]any{"secretKey": "password", "remoteRef": map[string]any{"key": name}}},
		},
	}}
}

func inventoryKV(t *testing.T, url string, ttl time.Duration) jetstream.KeyValue {
	t.Helper()
	nc, err := events.Dial(events.NATSConfig{URLs: []string{url}}, "inventory-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := inventory.EnsureBucket(t.Context(), js, inventory.DefaultBucket, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// startNamespaceCluster is one "cluster" of TestInventoryThreeClusters: the webhook's inventory
// code (InventoryCacheOptions, WatchInventory, a Publisher) on a cache restricted to namespace ns,
// as the webhook of a cluster holding only ns would run it. The returned func stops it.
func startNamespaceCluster(t *testing.T, cfg *rest.Config, scheme *runtime.Scheme, kv jetstream.KeyValue, ns string, ttl time.Duration) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	c, err := cache.New(cfg, webhook.InventoryCacheOptions(cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}}))
	if err != nil {
		t.Fatal(err)
	}
	var p *inventory.Publisher
	build, synced, err := webhook.WatchInventory(ctx, c, c, func() { p.Notify() })
	if err != nil {
		t.Fatal(err)
	}
	if p, err = inventory.NewPublisher(ns, kv, build, inventory.WithTTL(ttl), inventory.WithLogger(testr.New(t))); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = c.Start(ctx); done <- struct{}{} }()
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		t.Fatal("caches did not sync")
	}
	go func() { _ = p.Run(ctx); done <- struct{}{} }()
	stop := func() { cancel(); <-done; <-done }
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return stop
}

// TestInventoryThreeClusters: three clusters (namespaces of one API server, each watched by the
// webhook's own inventory code on a cache restricted to it) publish to one bucket; the guard's
// Reader sees all three; a role two clusters' stores use has a blast radius in both; a change
// shows within about a second (measured); a cluster whose publisher stops ages out after the TTL.
func TestInventoryThreeClusters(t *testing.T) {
	testenv.KubebuilderAssets(t)
	const ttl = 3 * time.Second
	env := testenv.Patient(&envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: testenv.ESOCRDFiles(t)}, ErrorIfCRDPathMissing: true})
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	chain.AddToScheme(scheme, "v1")
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	create := func(obj client.Object) {
		t.Helper()
		if err := c.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	// c1 and c2 log in with one role on one mount (one Vault auth mount shared by two clusters);
	// c3 has its own.
	for ns, role := range map[string][2]string{"c1": {"kubernetes", "eso-shared"}, "c2": {"kubernetes", "eso-shared"}, "c3": {"kubernetes-c3", "eso"}} {
		create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		create(inventoryStore(ns, "vault", role[0], role[1]))
		create(inventoryES(ns, "regcred", "vault", "regcred"))
		create(deployment(ns, "app", "", "regcred"))
	}
	srv := testenv.StartNATS(t)
	kv := inventoryKV(t, srv.ClientURL(), ttl)
	stops := map[string]func(){}
	for _, ns := range []string{"c1", "c2", "c3"} {
		stops[ns] = startNamespaceCluster(t, cfg, scheme, kv, ns, ttl)
	}
	r := inventory.NewReader(t.Context(), kv, inventory.WithReaderLogger(testr.New(t)))
	if err := r.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got := r.Clusters(); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
			return fmt.Errorf("clusters %v", got)
		}
		return nil
	})

	shared := r.Impact([]events.RoleRef{{Mount: "kubernetes", Name: "eso-shared"}})
	br := inventory.MergeImpact(shared)
	want := []events.ObjectRef{{Kind: "Deployment", Namespace: "c1", Name: "app", Cluster: "c1"}, {Kind: "Deployment", Namespace: "c2", Name: "app", Cluster: "c2"}}
	if len(shared) != 2 || br == nil || !slices.Equal(br.Workloads, want) {
		t.Fatalf("shared role's impact %+v, workloads %+v; want %+v", shared, br, want)
	}
	if !slices.Equal(shared[0].Vaults, []string{"https://vault.c1.example.com:8200"}) {
		t.Fatalf("c1's Vaults %v", shared[0].Vaults)
	}
	if cl, store, ok := r.StoreUsing(events.RoleRef{Mount: "kubernetes-c3", Name: "eso"}); !ok || cl != "c3" || store != "SecretStore c3/vault" {
		t.Fatalf("StoreUsing = %q %q %t", cl, store, ok)
	}

	// Inventory change → visible to the Reader: an ExternalSecret and the Deployment using it.
	var took []time.Duration
	role := []events.RoleRef{{Mount: "kubernetes-c3", Name: "eso"}}
	for i := range 5 {
		name := fmt.Sprintf("svc-%d", i)
		start := time.Now()
		create(inventoryES("c3", name, "vault", name))
		create(deployment("c3", name, "", name))
		eventually(t, 10*time.Second, func() error {
			for _, im := range r.Impact(role) {
				if slices.Contains(im.BlastRadius.Workloads, events.ObjectRef{Kind: "Deployment", Namespace: "c3", Name: name, Cluster: "c3"}) {
					return nil
				}
			}
			return fmt.Errorf("deployment c3/%s not in the impact yet", name)
		})
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("inventory change → visible to the Reader (5 runs, debounce 500ms): min %s, median %s, max %s",
		took[0].Round(time.Millisecond), took[2].Round(time.Millisecond), took[4].Round(time.Millisecond))

	// c3's webhook stops: it ages out, the others stay.
	stops["c3"]()
	stopped := time.Now()
	eventually(t, 2*ttl, func() error {
		if got := r.Clusters(); !slices.Equal(got, []string{"c1", "c2"}) {
			return fmt.Errorf("clusters %v", got)
		}
		return nil
	})
	t.Logf("c3 aged out %s after its publisher stopped (TTL %s)", time.Since(stopped).Round(10*time.Millisecond), ttl)
	if im := r.Impact(role); len(im) != 0 {
		t.Fatalf("aged-out c3 still in Impact: %+v", im)
	}
}

// TestWebhookPublishesInventory: `credchain webhook --inventory-publish` (webhook.Run) with NATS
// down is ready and admits; once NATS is up its cluster's inventory reaches the Reader.
func TestWebhookPublishesInventory(t *testing.T) {
	testenv.NeedsServer(t, "a nats-server")
	natsAddr := testenv.FreeAddrT(t)
	var port int
	if _, err := fmt.Sscanf(natsAddr, "127.0.0.1:%d", &port); err != nil {
		t.Fatal(err)
	}
	cfg := webhook.Config{DefaultEnforcement: webhook.EnforcementOff, StateDir: t.TempDir(),
		Inventory: webhook.InventoryConfig{Publish: true, TTL: 5 * time.Second}}
	cfg.Events.NATS.URLs, cfg.Events.NATS.Cluster = []string{"nats://" + natsAddr}, "it-1"
	cl := startCluster(t, cfg) // waits for /readyz: NATS is down
	cl.namespace(t, "team", nil)
	for _, obj := range []client.Object{inventoryStore("team", "vault", "kubernetes-it-1", "eso"), inventoryES("team", "regcred", "vault", "regcred"),
		deployment("team", "app", "", "regcred")} {
		if err := cl.c.Create(t.Context(), obj); err != nil {
			t.Fatalf("creating %s with NATS down: %v", obj.GetName(), err)
		}
	}
	if resp, err := http.Get(cl.readyz); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz with NATS down: %v %v", resp, err)
	}
	srv, err := testenv.NATS(t.TempDir(), port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	kv := inventoryKV(t, srv.ClientURL(), 5*time.Second)
	r := inventory.NewReader(t.Context(), kv)
	want := events.ObjectRef{Kind: "Deployment", Namespace: "team", Name: "app", Cluster: "it-1"}
	eventually(t, 60*time.Second, func() error {
		im := r.Impact([]events.RoleRef{{Mount: "kubernetes-it-1", Name: "eso"}})
		if len(im) != 1 || !slices.Contains(im[0].BlastRadius.Workloads, want) {
			return fmt.Errorf("impact %+v", im)
		}
		return nil
	})
}
