package auditguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	vault "github.com/hashicorp/vault/api"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/kube"
)

// Run starts the guard, its sinks and metrics, and blocks until ctx ends. cfg must have been
// defaulted and validated.
func Run(ctx context.Context, cfg Config, client *vault.Client, log logr.Logger) error {
	store, leader, err := openState(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if soft := setMemoryLimit(); soft > 0 {
		log.Info("go soft memory limit set from the container's", "bytes", soft, "worstCase", cfg.MemoryBound().Total)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n, dispatcher, closeDelivery, err := notifier(cfg, store, reg, log)
	if err != nil {
		return err
	}
	defer closeDelivery()
	g := NewGuard(&Vault{Client: client}, store, n, NewMetrics(reg), log, guardOptions(cfg, client.Address(), leader)...)
	sources, closeListeners, err := openSources(cfg, g, store, log)
	if err != nil {
		return err
	}
	defer closeListeners()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(sources)+2)
	fail := func(err error) { errs <- err; cancel() }
	if err := startBlast(ctx, &wg, cfg, g, log); err != nil {
		return err
	}
	if err := startInventory(ctx, &wg, cfg, g, reg, log); err != nil {
		return err
	}
	if dispatcher != nil {
		wg.Go(func() { dispatcher.Run(ctx) })
	}
	if leader != nil {
		startLeader(ctx, &wg, leader, g, reg)
	}
	for _, s := range sources {
		wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				fail(err)
			}
		})
	}
	serveHTTP(ctx, &wg, cfg, g, reg, fail)
	log.Info("starting audit guard", "vault", client.Address(), "listen", cfg.Listen, "auditFiles", cfg.AuditFiles,
		"stateDir", cfg.StateDir, "resyncInterval", cfg.ResyncInterval.String(), "reconcileInterval", cfg.ReconcileInterval.String(),
		"desiredPolicies", cfg.DesiredPolicies, "terraform", cfg.Terraform, "desiredAuthoritative", cfg.DesiredAuthoritative, "correctDrift", cfg.CorrectDrift)
	err = g.Run(ctx)
	cancel()
	wg.Wait()
	close(errs)
	all := []error{err}
	for e := range errs {
		all = append(all, e)
	}
	return errors.Join(all...)
}

// openState opens the state --state names: the bbolt store in --state-dir (created 0700, as it
// holds the event outbox either way), or the shared bucket on NATS with this replica's part in
// the leader election (nil for bbolt: a single replica always leads).
func openState(ctx context.Context, cfg Config, log logr.Logger) (State, *Leader, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating --state-dir: %w", err)
	}
	if cfg.State != StateNATS {
		s, err := OpenStore(cfg.StateDir)
		return s, nil, err
	}
	nc, err := events.Dial(cfg.Events.NATS, "credchain-auditguard-state")
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("nats jetstream: %w", err)
	}
	l, err := OpenLeader(ctx, js, cfg.StateBucket+"-leader", cfg.StateReplicas, cfg.ReplicaID, cfg.LeaderTTL, log.WithName("leader"))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	s, err := OpenKVState(ctx, nc, cfg.StateBucket, cfg.StateReplicas, cfg.ReplicaID)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	log.Info("state shared on NATS", "bucket", cfg.StateBucket, "replicas", cfg.StateReplicas, "replica", cfg.ReplicaID, "leaderTTL", cfg.LeaderTTL.String())
	return s, l, nil
}

// startLeader runs the leader election for g: a replica that becomes the leader reconciles at
// once (the previous one may have died with entries unprocessed), and its heartbeat says how
// many Vault connections it holds.
func startLeader(ctx context.Context, wg *sync.WaitGroup, l *Leader, g *Guard, reg prometheus.Registerer) {
	l.elected, l.conns = g.Reconnected, g.OpenConnections
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "credchain_auditguard_leader",
		Help: "1 while this replica holds the leader lease and runs reconcile (--state=nats; a single replica always leads)."},
		func() float64 {
			if l.IsLeader() {
				return 1
			}
			return 0
		}))
	wg.Go(func() { l.Run(ctx) })
}

// notifier is cfg.Notifier (or the log) plus, with NATS or Slack configured, a dispatcher with its
// own outbox file in --state-dir (events.OpenDelivery, as the webhook's), on the same volume as
// the snapshots, so a guard restarted with its volume loses neither. Guards before session 5 kept
// the outboxes in state.db: what is pending there is moved first (events.MoveOutboxes).
func notifier(cfg Config, store State, reg prometheus.Registerer, log logr.Logger) (events.Notifier, *events.Dispatcher, func(), error) {
	log = log.WithName("events")
	n := cfg.Notifier
	if n == nil {
		n = events.LogNotifier{Log: log}
	}
	path := filepath.Join(cfg.StateDir, EventsFile)
	if bolt, ok := store.(*Store); ok {
		if moved, err := events.MoveOutboxes(bolt.DB(), path); err != nil {
			return nil, nil, nil, err
		} else if moved > 0 {
			log.Info("moved pending events from the state store to the event outbox", "events", moved, "outbox", path)
		}
	}
	if !cfg.Events.Enabled() {
		return n, nil, func() {}, nil
	}
	d, closeDelivery, err := events.OpenDelivery(path, cfg.Events, log, reg)
	if err != nil {
		return nil, nil, nil, err
	}
	return events.Multi{n, d}, d, closeDelivery, nil
}

// EventsFile is the event outbox in --state-dir, beside the snapshot store (state.db).
const EventsFile = "events.db"

// guardOptions are cfg as Guard options, with the leader election of a shared state (nil: none).
func guardOptions(cfg Config, vaultAddr string, leader *Leader) []Option {
	var replicas []Option
	if leader != nil {
		replicas = []Option{WithLeader(leader.IsLeader), WithReplica(cfg.ReplicaID, leader.Alive)}
	}
	return append(replicas,
		WithQueueSize(cfg.QueueSize), WithResyncInterval(cfg.ResyncInterval), WithReconcileInterval(cfg.ReconcileInterval),
		WithMaxLine(cfg.MaxLine), WithMaxConnections(cfg.MaxConnections), WithLineBufferBytes(cfg.LineBufferBytes),
		WithQueueBytes(cfg.QueueBytes), WithAuditDisableWait(cfg.AuditDisableWait), WithFlapDetection(cfg.FlapDeletes, cfg.FlapWindow),
		WithVaultAddr(vaultAddr), WithCluster(cfg.Events.NATS.Cluster), WithActiveNodeOnly(cfg.VaultLocalNode),
		WithDesiredState(DesiredSource{PoliciesDir: cfg.DesiredPolicies, TerraformDir: cfg.Terraform}, cfg.DesiredPoll),
		WithDesiredAuthoritative(cfg.DesiredAuthoritative), WithCorrectDrift(cfg.CorrectDrift),
		WithActiveWindow(cfg.ActiveWindow), WithBlastRadiusPending(cfg.BlastRadius), WithInventoryPending(cfg.Inventory),
	)
}

// openSources opens every --listen (unix sockets with their mode and group) and --audit-file. The
// returned close releases the listeners if Run stops before its sinks (which close theirs) start.
func openSources(cfg Config, g *Guard, store State, log logr.Logger) ([]Sink, func(), error) {
	var sources []Sink
	var listeners []interface{ Close() error }
	closeAll := func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}
	perm := SocketPerm{Mode: cfg.ListenMode, GID: -1}
	if cfg.ListenGroup != "" {
		gid, err := ResolveGroup(cfg.ListenGroup)
		if err != nil {
			return nil, nil, err
		}
		perm.GID = gid
	}
	for _, spec := range cfg.Listen {
		l, err := ListenPerm(spec, perm)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		listeners = append(listeners, l)
		sources = append(sources, &SocketSink{Listener: l, Guard: g, Log: log.WithValues("listen", spec)})
	}
	for _, p := range cfg.AuditFiles {
		sources = append(sources, &FileSink{Path: p, Guard: g, Store: store, Log: log.WithValues("file", p), RotateGrace: cfg.RotateGrace})
	}
	return sources, closeAll, nil
}

// startBlast builds the blast radius in the background with --blast-radius: the audit sockets must
// accept Vault's connections right away, and events name only the Vault roles until it has synced.
func startBlast(ctx context.Context, wg *sync.WaitGroup, cfg Config, g *Guard, log logr.Logger) error {
	if !cfg.BlastRadius {
		return nil
	}
	rc, err := kube.RestConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	wg.Go(func() {
		b, err := NewBlast(ctx, rc, log.WithName("blast"))
		if err != nil {
			if ctx.Err() == nil {
				log.Error(err, "blast radius unavailable; events will name only the Vault roles")
			}
			return
		}
		g.SetBlast(b)
	})
	return nil
}

// serveHTTP serves /metrics and /healthz, /readyz on their addresses ("0" disables one) until ctx
// ends; a server that cannot listen fails the guard.
func serveHTTP(ctx context.Context, wg *sync.WaitGroup, cfg Config, g *Guard, reg *prometheus.Registry, fail func(error)) {
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	health.HandleFunc("/readyz", g.ServeReadyz)
	for name, s := range map[string]struct {
		addr string
		h    http.Handler
	}{"metrics": {cfg.MetricsAddr, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, "health": {cfg.HealthAddr, health}} {
		if s.addr == "0" {
			continue
		}
		srv := &http.Server{Addr: s.addr, Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fail(fmt.Errorf("%s server: %w", name, err))
			}
		})
		go func() { <-ctx.Done(); _ = srv.Close() }()
	}
}
