package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/credchain/credchain/certs"
	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
	promx "github.com/credchain/credchain/internal/metrics"
)

// Path is where the webhook serves every kind.
const Path = "/validate"

// Run starts the webhook and blocks until ctx is cancelled. cfg must have been defaulted and
// validated. Every step below runs on each replica except certificate renewal (the leader's).
func Run(ctx context.Context, cfg Config, restCfg *rest.Config, logger logr.Logger) error {
	version, scheme, err := newScheme(cfg, restCfg)
	if err != nil {
		return err
	}
	rotator, err := bootstrapCerts(ctx, cfg, restCfg, scheme, logger)
	if err != nil {
		return err
	}
	watches := &WatchHealth{Grace: cfg.WatchFailureGrace}
	mgr, err := newManager(cfg, restCfg, scheme, rotator != nil, watches, logger)
	if err != nil {
		return err
	}
	lookup, nsStore, err := startInformers(ctx, mgr.GetCache())
	if err != nil {
		return err
	}
	if err := addInventory(ctx, mgr, cfg, restCfg, scheme, logger); err != nil {
		return err
	}
	synced := &atomic.Bool{}
	emitter, err := addEvents(mgr, cfg, logger)
	if err != nil {
		return err
	}
	promx.RegisterOrExisting(metrics.Registry, CertExpiry(cfg.CertDir))
	promx.RegisterOrExisting(metrics.Registry, watches.Metric())
	review := WithEvents(emitter, WithMetrics(NewMetrics(metrics.Registry), newHandler(cfg, lookup, nsStore, synced).Review))
	mgr.GetWebhookServer().Register(Path, Unavailable(synced, &admission.Webhook{Handler: AsHandler(review)}))
	if err := addChecks(mgr, synced, watches, rotator); err != nil {
		return err
	}
	if err := addRunnables(mgr, rotator, synced, version, logger); err != nil {
		return err
	}
	logger.Info("starting webhook", "port", strconv.Itoa(cfg.Port), "path", Path,
		"externalSecretVersion", version, "defaultEnforcement", cfg.DefaultEnforcement,
		"unmanagedSecrets", cfg.UnmanagedSecrets, "exemptNamespaces", cfg.ExemptNamespaces)
	return mgr.Start(ctx)
}

// newScheme registers Kubernetes' types and the ExternalSecret version the server serves (given,
// or discovered).
func newScheme(cfg Config, restCfg *rest.Config) (string, *runtime.Scheme, error) {
	version := cfg.ESOVersion
	if version == "" {
		v, err := DiscoverESOVersion(restCfg)
		if err != nil {
			return "", nil, err
		}
		version = v
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return "", nil, fmt.Errorf("internal error: building scheme: %w", err)
	}
	chain.AddToScheme(scheme, version)
	return version, scheme, nil
}

// bootstrapCerts issues the first serving certificate with --cert-mode=self (nil otherwise), before
// the server starts: it cannot serve without one.
func bootstrapCerts(ctx context.Context, cfg Config, restCfg *rest.Config, scheme *runtime.Scheme, logger logr.Logger) (*certs.Rotator, error) {
	if cfg.CertMode != "self" {
		return nil, nil
	}
	// Uncached client: one Secret read per check interval, no cluster-wide Secret informer.
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating client for certificates: %w", err)
	}
	rotator := &certs.Rotator{Config: cfg.Certs, Client: c, Log: logger.WithName("certs")}
	if err := rotator.Bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("issuing the first serving certificate: %w", err)
	}
	return rotator, nil
}

// newManager builds the manager: webhook server (TLS, optional client verification), metrics,
// health probes, the trimmed caches. With self-managed certificates only the leader renews them (a
// Lease in their namespace).
func newManager(cfg Config, restCfg *rest.Config, scheme *runtime.Scheme, leaderElection bool, watches *WatchHealth, logger logr.Logger) (manager.Manager, error) {
	var tlsOpts []func(*tls.Config)
	if cfg.ClientCAFile != "" {
		opt, err := ClientAuth(cfg.ClientCAFile)
		if err != nil {
			return nil, err
		}
		tlsOpts = append(tlsOpts, opt)
	}
	cacheOpts := CacheOptions()
	cacheOpts.DefaultWatchErrorHandler = watches.OnError
	mgr, err := manager.New(restCfg, manager.Options{
		LeaderElection:                leaderElection,
		LeaderElectionID:              "credchain-webhook-certs",
		LeaderElectionNamespace:       cfg.Certs.SecretNamespace,
		LeaderElectionReleaseOnCancel: true,
		Scheme:                        scheme,
		Logger:                        logger,
		HealthProbeBindAddress:        cfg.HealthAddr,
		Metrics:                       metricsserver.Options{BindAddress: cfg.MetricsAddr},
		WebhookServer:                 crwebhook.NewServer(crwebhook.Options{Host: cfg.Host, Port: cfg.Port, CertDir: cfg.CertDir, TLSOpts: tlsOpts}),
		Cache:                         cacheOpts,
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	return mgr, nil
}

// newHandler is the admission handler over the informers' lookup, with cfg's policy.
func newHandler(cfg Config, lookup *IndexLookup, nsStore toolscache.Store, synced *atomic.Bool) *Handler {
	exempt := make(map[string]bool, len(cfg.ExemptNamespaces))
	for _, ns := range cfg.ExemptNamespaces {
		exempt[ns] = true
	}
	return &Handler{
		Decider: &Decider{Lookup: lookup, Policy: Policy{
			Unmanaged: cfg.UnmanagedSecrets, GracePeriod: cfg.GracePeriod, StaleFactor: cfg.StaleFactor,
			FailingGrace: cfg.FailingGrace, NonDockerSecrets: cfg.NonDockerSecrets,
		}},
		Namespaces:         nsStore,
		DefaultEnforcement: cfg.DefaultEnforcement,
		Exempt:             exempt,
		Synced:             synced,
	}
}

// addEvents builds the event emitter: every event logged, and with NATS or Slack configured,
// delivered through an outbox in --state-dir (events.OpenDelivery) on every replica.
func addEvents(mgr manager.Manager, cfg Config, logger logr.Logger) (*EventEmitter, error) {
	log := logger.WithName("events")
	notifier := cfg.Notifier
	if notifier == nil {
		notifier = events.LogNotifier{Log: log}
	}
	if cfg.Events.Enabled() {
		d, closeDelivery, err := events.OpenDelivery(filepath.Join(cfg.StateDir, "events.db"), cfg.Events, log, metrics.Registry)
		if err != nil {
			return nil, err
		}
		if err := mgr.Add(everyReplica(func(ctx context.Context) error { defer closeDelivery(); d.Run(ctx); return nil })); err != nil {
			closeDelivery()
			return nil, fmt.Errorf("internal error: adding event delivery: %w", err)
		}
		notifier = events.Multi{notifier, d}
	}
	emitter := &EventEmitter{Notifier: notifier, Window: cfg.EventWindow, Cluster: cfg.Events.NATS.Cluster, Log: log}
	if err := mgr.Add(everyReplica(emitter.Run)); err != nil {
		return nil, fmt.Errorf("internal error: adding event emitter: %w", err)
	}
	return emitter, nil
}

// addChecks: healthz is a ping; readyz waits for the server, the informers' first sync and healthy
// watches, and (self-managed) a valid serving certificate.
func addChecks(mgr manager.Manager, synced *atomic.Bool, watches *WatchHealth, rotator *certs.Rotator) error {
	checks := map[string]healthz.Checker{
		"webhook": mgr.GetWebhookServer().StartedChecker(),
		"informers": func(*http.Request) error {
			if !synced.Load() {
				return errNotSynced
			}
			return watches.Check()
		},
	}
	if rotator != nil {
		checks["certificates"] = func(*http.Request) error {
			if !rotator.Ready() {
				return fmt.Errorf("no valid serving certificate yet")
			}
			return nil
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("internal error: adding healthz: %w", err)
	}
	for name, check := range checks {
		if err := mgr.AddReadyzCheck(name, check); err != nil {
			return fmt.Errorf("internal error: adding readyz %s: %w", name, err)
		}
	}
	return nil
}

// addRunnables: certificate renewal (leader) and file sync (every replica), and the watcher that
// marks the caches synced — until then every review is answered 503 (Unavailable).
func addRunnables(mgr manager.Manager, rotator *certs.Rotator, synced *atomic.Bool, version string, logger logr.Logger) error {
	if rotator != nil {
		if err := mgr.Add(manager.RunnableFunc(rotator.RunLeader)); err != nil { // leader only
			return fmt.Errorf("internal error: adding certificate rotation: %w", err)
		}
		if err := mgr.Add(everyReplica(rotator.RunFiles)); err != nil {
			return fmt.Errorf("internal error: adding certificate sync: %w", err)
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
	return nil
}

// addInventory adds, with --inventory-publish, the inventory's publisher (every replica) over
// the decision's ExternalSecret and ServiceAccount informers and a cache of its own for the stores
// and workloads. Its own, not the manager's: the manager starts nothing until every informer of
// its cache has synced, and one the webhook may not list (a ClusterRole without the workload
// kinds) would then stop admission, not just the inventory.
func addInventory(ctx context.Context, mgr manager.Manager, cfg Config, restCfg *rest.Config, scheme *runtime.Scheme, logger logr.Logger) error {
	if !cfg.Inventory.Publish {
		return nil
	}
	log := logger.WithName("inventory")
	own, err := cache.New(restCfg, InventoryCacheOptions(cache.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper()}))
	if err != nil {
		return fmt.Errorf("creating the inventory's cache: %w", err)
	}
	trigger := &inventoryTrigger{}
	build, synced, err := WatchInventory(ctx, mgr.GetCache(), own, trigger.Notify)
	if err != nil {
		return err
	}
	if err := mgr.Add(everyReplica(func(ctx context.Context) error {
		go func() {
			if err := own.Start(ctx); err != nil {
				log.Error(err, "the inventory's cache stopped")
			}
		}()
		return publishInventory(ctx, cfg, synced, build, trigger, log)
	})); err != nil {
		return fmt.Errorf("internal error: adding inventory publisher: %w", err)
	}
	return nil
}

// everyReplica marks a runnable as not needing leader election (controller-runtime's default for
// runnables is to wait for it).
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }
