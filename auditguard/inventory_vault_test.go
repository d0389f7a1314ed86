package auditguard_test

import (
	"context"
	"slices"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/inventory"
	"github.com/credchain/credchain/internal/kube"
	"github.com/credchain/credchain/internal/testenv"
)

// TestInventoryBlastRadius (issue 16 item 2), on a real Vault, a real kube-apiserver and an
// in-process JetStream: three namespaces stand for three clusters (three API servers are too
// heavy for 2 cores), each with the webhook's inventory Publisher over its own namespace. eu and us
// each have a SecretStore logging in with external-secrets-operator and a Deployment pulling with
// its ExternalSecret's Secret; ap's store uses another role. The guard has no Kubernetes
// credentials (--inventory only): one delete of eso-order-service is one policy.restored whose
// blast radius lists both eu's and us's Deployment, each naming its cluster, and not ap's; the
// role counts as active through a store in another cluster; once us's publisher stops, us ages
// out after the TTL.
func TestInventoryBlastRadius(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	c, kubeconfig := startKube(t)
	ctx := t.Context()
	for _, ns := range []string{"eu", "us", "ap"} {
		must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
		role := "external-secrets-operator"
		if ns == "ap" {
			role = "ap-only"
		}
		for _, o := range []crclient.Object{
			vaultStore("SecretStore", ns, "vault-backend", role, ""),
			externalSecret(ns, "order-service", "SecretStore", "vault-backend", "regcred-order-service"),
			pullingDeployment(ns, "order-service", "regcred-order-service"),
		} {
			must(t, c.Create(ctx, o))
		}
	}
	reader := chainReader(t, kubeconfig)
	e := setup(t)
	e.natsURL = testenv.StartNATS(t).ClientURL()
	kv := inventoryBucket(t, e.natsURL, 3*time.Second)
	stopUS := func() {}
	for _, cluster := range []string{"eu", "us", "ap"} {
		p, err := inventory.NewPublisher(cluster, kv, func(ctx context.Context) (*chain.Model, error) {
			o, err := chain.List(ctx, reader, crclient.InNamespace(cluster))
			if err != nil {
				return nil, err
			}
			return chain.NewModel(o), nil
		}, inventory.WithTTL(3*time.Second), inventory.WithDebounce(50*time.Millisecond))
		must(t, err)
		pctx, cancel := context.WithCancel(ctx)
		go func() { _ = p.Run(pctx) }()
		t.Cleanup(cancel)
		if cluster == "us" {
			stopUS = cancel
		}
	}
	// The guard has watched logins for 31 days and seen none: only a store can make the role active.
	stop := e.startDesired(t, func(cfg *auditguard.Config) {
		cfg.Inventory = true
		cfg.Events.NATS = events.NATSConfig{URLs: []string{e.natsURL}, Cluster: "vault-eu"}
	})
	stop()
	st, err := auditguard.OpenStore(e.stateDir)
	must(t, err)
	must(t, st.SetWatchingSince(time.Now().Add(-31*24*time.Hour)))
	must(t, st.Close())
	e.startDesired(t, func(cfg *auditguard.Config) {
		cfg.Inventory = true
		cfg.Events.NATS = events.NATSConfig{URLs: []string{e.natsURL}, Cluster: "vault-eu"}
		cfg.FlapDeletes = -1 // the waits below delete the policy again and again
	})
	e.enableDevices(t)
	bot := e.bot(t)
	deployment := func(cluster string) events.ObjectRef {
		return events.ObjectRef{Cluster: cluster, Kind: "Deployment", Namespace: cluster, Name: "order-service"}
	}
	restore := func(t *testing.T) events.Event {
		t.Helper()
		n := e.events.Count()
		must(t, bot.Sys().DeletePolicy("eso-order-service"))
		ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
		e.waitPolicy(t, "eso-order-service", orderServicePolicy)
		return ev
	}

	t.Run("one restore, both clusters' workloads", func(t *testing.T) {
		waitFor(t, "eu's and us's inventories", func() bool {
			return len(blastWorkloads(t, e, bot)) == 2
		})
		ev := restore(t)
		if ev.BlastRadius == nil || !slices.Equal(ev.BlastRadius.Workloads, []events.ObjectRef{deployment("eu"), deployment("us")}) {
			t.Errorf("blast radius = %+v", ev.BlastRadius)
		}
		if ev.Rule != events.RuleActiveRole || ev.Active == nil || ev.Active.Why != events.ActiveByStore ||
			ev.Active.Store != "eu: SecretStore eu/vault-backend" {
			t.Errorf("rule %q, active %+v", ev.Rule, ev.Active)
		}
	})

	t.Run("a cluster whose publisher stopped ages out after the TTL", func(t *testing.T) {
		stopUS()
		stopped := time.Now()
		waitFor(t, "us to age out", func() bool {
			return slices.Equal(blastWorkloads(t, e, bot), []events.ObjectRef{deployment("eu")})
		})
		if took := time.Since(stopped); took < 2*time.Second {
			t.Errorf("us aged out %s after its publisher stopped, before the 3s TTL (its last put was at most 1s old)", took)
		} else {
			t.Logf("us aged out %s after its publisher stopped (TTL 3s, heartbeat every 1s)", took.Round(time.Millisecond))
		}
	})
}

// blastWorkloads deletes eso-order-service, waits for its restore and returns the event's
// blast-radius workloads.
func blastWorkloads(t *testing.T, e *env, bot *vault.Client) []events.ObjectRef {
	t.Helper()
	n := e.events.Count()
	must(t, bot.Sys().DeletePolicy("eso-order-service"))
	ev := e.events.wait(t, events.PolicyRestored, "eso-order-service", n)
	e.waitPolicy(t, "eso-order-service", orderServicePolicy)
	time.Sleep(100 * time.Millisecond)
	if ev.BlastRadius == nil {
		return nil
	}
	return ev.BlastRadius.Workloads
}

// chainReader is a client of the kube-apiserver that knows ESO's types, for chain.List.
func chainReader(t *testing.T, kubeconfig string) crclient.Reader {
	t.Helper()
	rc, err := kube.RestConfig(kubeconfig)
	must(t, err)
	scheme := runtime.NewScheme()
	must(t, clientgoscheme.AddToScheme(scheme))
	chain.AddToScheme(scheme, "v1")
	c, err := crclient.New(rc, crclient.Options{Scheme: scheme})
	must(t, err)
	return c
}

func inventoryBucket(t *testing.T, url string, ttl time.Duration) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(url)
	must(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	must(t, err)
	kv, err := inventory.EnsureBucket(t.Context(), js, inventory.DefaultBucket, ttl, 1)
	must(t, err)
	return kv
}
