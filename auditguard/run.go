package auditguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	vault "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/credchain/credchain/internal/events"
)

// NewVaultClient builds a client from the vault CLI's environment and the configured token source.
func NewVaultClient(ctx context.Context, cfg Config, log logr.Logger) (*vault.Client, error) {
	vc := vault.DefaultConfig() // VAULT_ADDR, VAULT_CACERT, VAULT_CLIENT_TIMEOUT, ...
	if vc.Error != nil {
		return nil, fmt.Errorf("vault client configuration: %w", vc.Error)
	}
	client, err := vault.NewClient(vc) // VAULT_TOKEN, VAULT_NAMESPACE
	if err != nil {
		return nil, fmt.Errorf("creating vault client: %w", err)
	}
	switch {
	case cfg.VaultTokenFile != "":
		tok, err := readToken(cfg.VaultTokenFile)
		if err != nil {
			return nil, err
		}
		client.SetToken(tok)
		go watchTokenFile(ctx, client, cfg.VaultTokenFile, tokenFileReread, log)
	case cfg.KubernetesRole != "":
		if err := kubernetesLogin(ctx, client, cfg, log); err != nil {
			return nil, err
		}
	}
	if client.Token() == "" {
		return nil, errors.New("no Vault token: set VAULT_TOKEN, --vault-token-file or --vault-k8s-role")
	}
	return client, nil
}

// tokenFileReread is how often --vault-token-file is read again: it is usually a mounted Secret,
// which the kubelet updates in place (within about a minute) when the token is rotated, and a
// token read once would expire under the guard.
const tokenFileReread = 30 * time.Second

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading --vault-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("reading --vault-token-file: %s is empty", path)
	}
	return tok, nil
}

// watchTokenFile sets the client's token from path every interval until ctx ends. An unreadable or
// empty file (mid-rotation) keeps the last good token.
func watchTokenFile(ctx context.Context, client *vault.Client, path string, interval time.Duration, log logr.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tok, err := readToken(path)
		if err != nil {
			log.Error(err, "re-reading the Vault token file; keeping the current token")
			continue
		}
		if tok != client.Token() {
			client.SetToken(tok)
			log.Info("vault token file changed; using the new token")
		}
	}
}

// kubernetesLogin logs in with the pod's service account token and keeps the Vault token renewed,
// logging in again when it can no longer be renewed.
func kubernetesLogin(ctx context.Context, client *vault.Client, cfg Config, log logr.Logger) error {
	login := func(ctx context.Context) (*vault.Secret, error) {
		jwt, err := os.ReadFile(cfg.KubernetesJWTFile) // re-read each time: the kubelet rotates it
		if err != nil {
			return nil, fmt.Errorf("reading service account token: %w", err)
		}
		s, err := client.Logical().WriteWithContext(ctx, "auth/"+cfg.KubernetesMount+"/login",
			map[string]any{"role": cfg.KubernetesRole, "jwt": strings.TrimSpace(string(jwt))})
		if err != nil {
			return nil, fmt.Errorf("vault kubernetes login as role %s: %w", cfg.KubernetesRole, err)
		}
		if s == nil || s.Auth == nil {
			return nil, errors.New("vault kubernetes login returned no token")
		}
		client.SetToken(s.Auth.ClientToken)
		return s, nil
	}
	s, err := login(ctx)
	if err != nil {
		return err
	}
	renew := func(ctx context.Context, s *vault.Secret) error {
		w, err := client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: s})
		if err != nil {
			return fmt.Errorf("starting vault token renewal: %w", err)
		}
		go w.Start()
		defer w.Stop()
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.DoneCh():
			return err
		}
	}
	go keepLoggedIn(ctx, s, login, renew, loginBackoff, log)
	return nil
}

// loginBackoff is the wait before the attempt-th consecutive login retry: 1s doubling to 5m, so a
// Vault that is down is not hammered and one that is back is used within minutes.
func loginBackoff(attempt int) time.Duration {
	return min(time.Second<<min(attempt, 9), 5*time.Minute)
}

// keepLoggedIn renews s until renewal ends (the token reached its max TTL, was revoked, or
// renewal could not start), then logs in again, retrying a failing login after backoff(attempt),
// for as long as ctx lasts. It never gives up: a guard whose token lapsed silently stops guarding.
// The backoff also spaces logins whose renewal ends at once, so a token that cannot be renewed
// does not turn into a login loop.
func keepLoggedIn(ctx context.Context, s *vault.Secret, login func(context.Context) (*vault.Secret, error),
	renew func(context.Context, *vault.Secret) error, backoff func(attempt int) time.Duration, log logr.Logger) {
	attempt := 0
	for {
		started := time.Now()
		err := renew(ctx, s)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Error(err, "vault token renewal ended; logging in again")
		} else {
			log.Info("vault token renewal ended; logging in again")
		}
		if time.Since(started) > time.Minute {
			attempt = 0
		}
		for {
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff(attempt - 1)):
				}
			}
			attempt++
			next, err := login(ctx)
			if err == nil {
				s = next
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.Error(err, "vault re-login failed; retrying", "backoff", backoff(attempt-1).String())
		}
	}
}

// Run starts the guard, its sinks and metrics, and blocks until ctx ends. cfg must have been
// defaulted and validated.
func Run(ctx context.Context, cfg Config, client *vault.Client, n Notifier, log logr.Logger) error {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating --state-dir: %w", err)
	}
	store, err := OpenStore(cfg.StateDir)
	if err != nil {
		return err
	}
	defer store.Close()
	if soft := setMemoryLimit(); soft > 0 {
		log.Info("go soft memory limit set from the container's", "bytes", soft, "worstCase", cfg.MemoryBound().Total)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := NewMetrics(reg)
	if n == nil {
		n = LogNotifier{Log: log.WithName("events")}
	}
	var dispatcher *events.Dispatcher
	if cfg.Events.Enabled() {
		d, closeSinks, err := events.NewDelivery(store.DB(), cfg.Events, log.WithName("events"), reg)
		if err != nil {
			return err
		}
		defer closeSinks()
		dispatcher = d
		n = events.Multi{n, dispatcher}
	}
	g := NewGuard(&Vault{Client: client}, store, n, m, log,
		WithQueueSize(cfg.QueueSize), WithResyncInterval(cfg.ResyncInterval),
		WithReconcileInterval(cfg.ReconcileInterval), WithMaxLine(cfg.MaxLine), WithMaxConnections(cfg.MaxConnections), WithLineBufferBytes(cfg.LineBufferBytes), WithQueueBytes(cfg.QueueBytes), WithAuditDisableWait(cfg.AuditDisableWait), WithFlapDetection(cfg.FlapDeletes, cfg.FlapWindow), WithVaultAddr(client.Address()), WithCluster(cfg.Events.NATS.Cluster))

	var sources []Sink
	perm := SocketPerm{Mode: cfg.ListenMode, GID: -1}
	if cfg.ListenGroup != "" {
		if perm.GID, err = ResolveGroup(cfg.ListenGroup); err != nil {
			return err
		}
	}
	for _, spec := range cfg.Listen {
		l, err := ListenPerm(spec, perm)
		if err != nil {
			return err
		}
		defer l.Close() // a listener opened before a later one failed; the sinks close theirs too
		sources = append(sources, &SocketSink{Listener: l, Guard: g, Log: log.WithValues("listen", spec)})
	}
	for _, p := range cfg.AuditFiles {
		sources = append(sources, &FileSink{Path: p, Guard: g, Store: store, Log: log.WithValues("file", p), RotateGrace: cfg.RotateGrace})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(sources)+2)
	if cfg.Kube != "" {
		rc, err := kubeConfig(cfg.Kube)
		if err != nil {
			return err
		}
		// Sync in the background: the audit sockets must accept Vault's connections right away.
		wg.Go(func() {
			b, err := NewBlast(ctx, rc, log.WithName("blast"))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Error(err, "blast radius unavailable; events will name only the Vault roles")
				return
			}
			g.SetBlast(b)
		})
	}
	if dispatcher != nil {
		wg.Go(func() { dispatcher.Run(ctx) })
	}
	for _, s := range sources {
		wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				errs <- err
				cancel()
			}
		})
	}
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
				errs <- fmt.Errorf("%s server: %w", name, err)
				cancel()
			}
		})
		go func() { <-ctx.Done(); _ = srv.Close() }()
	}
	log.Info("starting audit guard", "vault", client.Address(), "listen", cfg.Listen, "auditFiles", cfg.AuditFiles,
		"stateDir", cfg.StateDir, "resyncInterval", cfg.ResyncInterval.String(), "reconcileInterval", cfg.ReconcileInterval.String())
	err = g.Run(ctx)
	cancel()
	wg.Wait()
	close(errs)
	var all []error
	if err != nil {
		all = append(all, err)
	}
	for e := range errs {
		all = append(all, e)
	}
	return errors.Join(all...)
}

func kubeConfig(kube string) (*rest.Config, error) {
	if kube == "in-cluster" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kube)
}
