package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	bolt "go.etcd.io/bbolt"

	"github.com/credchain/credchain/certs"
	"github.com/credchain/credchain/internal/events"
)

// Path is where the webhook serves every kind.
const Path = "/validate"

// RestConfig finds the cluster the way kubectl and controller-runtime do: an explicit kubeconfig
// path, else KUBECONFIG, in-cluster, ~/.kube/config.
func RestConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return config.GetConfig()
}

// DiscoverESOVersion returns the most preferred ExternalSecret API version the server serves.
func DiscoverESOVersion(cfg *rest.Config) (string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("discovering ExternalSecret API: %w", err)
	}
	for _, v := range ESOVersions {
		list, err := dc.ServerResourcesForGroupVersion(ESOGroup + "/" + v)
		if err != nil {
			continue // not served (404) or unreachable: try the next; the final error says which
		}
		for _, r := range list.APIResources {
			if r.Name == "externalsecrets" {
				return v, nil
			}
		}
	}
	return "", ErrESONotServed
}

// Run starts the webhook and blocks until ctx is cancelled. cfg must have been defaulted and
// validated.
func Run(ctx context.Context, cfg Config, restCfg *rest.Config, logger logr.Logger) error {
	version := cfg.ESOVersion
	if version == "" {
		v, err := DiscoverESOVersion(restCfg)
		if err != nil {
			return err
		}
		version = v
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("internal error: building scheme: %w", err)
	}
	AddToScheme(scheme, version)

	var rotator *certs.Rotator
	if cfg.CertMode == "self" {
		// Uncached client: one Secret read per check interval, no cluster-wide Secret informer.
		c, err := client.New(restCfg, client.Options{Scheme: scheme})
		if err != nil {
			return fmt.Errorf("creating client for certificates: %w", err)
		}
		rotator = &certs.Rotator{Config: cfg.Certs, Client: c, Log: logger.WithName("certs")}
		if err := rotator.Bootstrap(ctx); err != nil {
			return fmt.Errorf("issuing the first serving certificate: %w", err)
		}
	}
	var tlsOpts []func(*tls.Config)
	if cfg.ClientCAFile != "" {
		opt, err := ClientAuth(cfg.ClientCAFile)
		if err != nil {
			return err
		}
		tlsOpts = append(tlsOpts, opt)
	}
	watches := &WatchHealth{Grace: cfg.WatchFailureGrace}
	cacheOpts := CacheOptions()
	cacheOpts.DefaultWatchErrorHandler = watches.OnError
	mgr, err := manager.New(restCfg, manager.Options{
		// With self-managed certificates only the leader renews them (a Lease in their namespace);
		// everything else runs on every replica.
		LeaderElection:                rotator != nil,
		LeaderElectionID:              "credchain-webhook-certs",
		LeaderElectionNamespace:       cfg.Certs.SecretNamespace,
		LeaderElectionReleaseOnCancel: true,
		Scheme:                        scheme,
		Logger:                        logger,
		HealthProbeBindAddress:        cfg.HealthAddr,
		Metrics:                       metricsserver.Options{BindAddress: cfg.MetricsAddr},
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host:    cfg.Host,
			Port:    cfg.Port,
			CertDir: cfg.CertDir,
			TLSOpts: tlsOpts,
		}),
		Cache: cacheOpts,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	lookup := &IndexLookup{}
	var nsStore toolscache.Store
	for obj, target := range map[client.Object]*toolscache.Indexer{
		&ExternalSecret{}:        &lookup.ExternalSecrets,
		&corev1.ServiceAccount{}: &lookup.ServiceAccounts,
		&corev1.Event{}:          &lookup.Events,
		&corev1.Namespace{}:      nil,
	} {
		inf, err := informerFor(ctx, mgr.GetCache(), obj)
		if err != nil {
			return err
		}
		switch obj.(type) {
		case *ExternalSecret:
			err = inf.AddIndexers(ExternalSecretIndexers())
		case *corev1.Event:
			err = inf.AddIndexers(EventIndexers())
		}
		if err != nil {
			return fmt.Errorf("internal error: adding indexers: %w", err)
		}
		if target != nil {
			*target = inf.GetIndexer()
		} else {
			nsStore = inf.GetStore()
		}
	}

	synced := &atomic.Bool{}
	exempt := make(map[string]bool, len(cfg.ExemptNamespaces))
	for _, ns := range cfg.ExemptNamespaces {
		exempt[ns] = true
	}
	h := &Handler{
		Decider: &Decider{Lookup: lookup, Policy: Policy{
			Unmanaged: cfg.UnmanagedSecrets, GracePeriod: cfg.GracePeriod, StaleFactor: cfg.StaleFactor,
			FailingGrace: cfg.FailingGrace, NonDockerSecrets: cfg.NonDockerSecrets,
		}},
		Namespaces:         nsStore,
		DefaultEnforcement: cfg.DefaultEnforcement,
		Exempt:             exempt,
		Synced:             synced,
	}
	notifier := cfg.Notifier
	if notifier == nil {
		notifier = events.LogNotifier{Log: logger.WithName("events")}
		if cfg.Events.Enabled() {
			if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
				return fmt.Errorf("creating --state-dir: %w", err)
			}
			db, err := bolt.Open(filepath.Join(cfg.StateDir, "events.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
			if err != nil {
				return fmt.Errorf("opening event outbox: %w", err)
			}
			defer db.Close()
			d, closeSinks, err := events.NewDelivery(db, cfg.Events, logger.WithName("events"), metrics.Registry)
			if err != nil {
				return err
			}
			defer closeSinks()
			if err := mgr.Add(everyReplica(func(ctx context.Context) error { d.Run(ctx); return nil })); err != nil {
				return fmt.Errorf("internal error: adding event delivery: %w", err)
			}
			notifier = events.Multi{notifier, d}
		}
	}
	emitter := &EventEmitter{Notifier: notifier, Window: cfg.EventWindow, Cluster: cfg.Events.NATS.Cluster, Log: logger.WithName("events")}
	if err := mgr.Add(everyReplica(emitter.Run)); err != nil {
		return fmt.Errorf("internal error: adding event emitter: %w", err)
	}
	events.RegisterOrExisting(metrics.Registry, CertExpiry(cfg.CertDir))
	events.RegisterOrExisting(metrics.Registry, watches.Metric())
	mgr.GetWebhookServer().Register(Path, Unavailable(synced, &admission.Webhook{Handler: AsHandler(WithEvents(emitter, WithMetrics(NewMetrics(metrics.Registry), h.Review)))}))

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("internal error: adding healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return fmt.Errorf("internal error: adding readyz: %w", err)
	}
	if err := mgr.AddReadyzCheck("informers", func(*http.Request) error {
		if !synced.Load() {
			return errNotSynced
		}
		return watches.Check()
	}); err != nil {
		return fmt.Errorf("internal error: adding readyz: %w", err)
	}
	if rotator != nil {
		if err := mgr.Add(manager.RunnableFunc(rotator.RunLeader)); err != nil { // leader only
			return fmt.Errorf("internal error: adding certificate rotation: %w", err)
		}
		if err := mgr.Add(everyReplica(rotator.RunFiles)); err != nil {
			return fmt.Errorf("internal error: adding certificate sync: %w", err)
		}
		if err := mgr.AddReadyzCheck("certificates", func(*http.Request) error {
			if !rotator.Ready() {
				return fmt.Errorf("no valid serving certificate yet")
			}
			return nil
		}); err != nil {
			return fmt.Errorf("internal error: adding readyz: %w", err)
		}
	}
	if err := mgr.Add(everyReplica(func(ctx context.Context) error {
		if mgr.GetCache().WaitForCacheSync(ctx) {
			synced.Store(true)
			logger.Info("informer caches synced", "externalSecretVersion", version)
		}
		<-ctx.Done()
		return nil
	})); err != nil {
		return fmt.Errorf("internal error: adding sync watcher: %w", err)
	}
	logger.Info("starting webhook", "port", strconv.Itoa(cfg.Port), "path", Path,
		"externalSecretVersion", version, "defaultEnforcement", cfg.DefaultEnforcement,
		"unmanagedSecrets", cfg.UnmanagedSecrets, "exemptNamespaces", cfg.ExemptNamespaces)
	return mgr.Start(ctx)
}

// sharedIndexInformer is the part of client-go's SharedIndexInformer the lookup needs; controller-
// runtime's informers implement it.
type sharedIndexInformer interface {
	AddIndexers(toolscache.Indexers) error
	GetIndexer() toolscache.Indexer
	GetStore() toolscache.Store
}

func informerFor(ctx context.Context, c cache.Cache, obj client.Object) (sharedIndexInformer, error) {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("creating informer for %T: %w", obj, err)
	}
	sii, ok := inf.(sharedIndexInformer)
	if !ok {
		return nil, fmt.Errorf("internal error: informer for %T is a %T, not a SharedIndexInformer", obj, inf)
	}
	return sii, nil
}

// CacheOptions trims what the informers keep: only what decisions read, so memory stays flat with
// thousands of ServiceAccounts (whose token secret lists we never need) and Events.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Event{}: {
				// Only events about ExternalSecrets, where ESO reports the provider's real error.
				Field:     fields.OneTermEqualSelector("involvedObject.kind", "ExternalSecret"),
				Transform: stripMeta,
			},
			&corev1.ServiceAccount{}: {Transform: func(obj any) (any, error) {
				if sa, ok := obj.(*corev1.ServiceAccount); ok {
					sa.Secrets = nil
					sa.Annotations = nil
					sa.ManagedFields = nil
				}
				return obj, nil
			}},
			&corev1.Namespace{}: {Transform: func(obj any) (any, error) {
				if ns, ok := obj.(*corev1.Namespace); ok {
					ns.Annotations = nil
					ns.ManagedFields = nil
					ns.Spec = corev1.NamespaceSpec{}
					ns.Status = corev1.NamespaceStatus{}
				}
				return obj, nil
			}},
			&ExternalSecret{}: {Transform: stripMeta},
		},
	}
}

// stripMeta drops annotations (kubectl's last-applied copy can be large) and managed fields.
func stripMeta(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetAnnotations(nil)
		m.SetManagedFields([]metav1.ManagedFieldsEntry(nil))
	}
	return obj, nil
}

// everyReplica marks a runnable as not needing leader election (controller-runtime's default for
// runnables is to wait for it).
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }
