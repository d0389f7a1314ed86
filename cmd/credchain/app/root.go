// Package app holds credchain's cobra commands. Each command parses flags into a typed Config,
// defaults and validates it, and hands it to an injected run function, so tests can check flag
// handling without starting anything.
package app

import (
	"context"
	"log/slog"
	"os"
	"sync"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/kube"
	"github.com/credchain/credchain/webhook"
)

// Runners are the functions the subcommands call once their Config is valid.
type Runners struct {
	Webhook    func(ctx context.Context, cfg webhook.Config, log logr.Logger) error
	Auditguard func(ctx context.Context, cfg auditguard.Config, log logr.Logger) error
}

// DefaultRunners start the real components.
func DefaultRunners() Runners {
	return Runners{
		Webhook: func(ctx context.Context, cfg webhook.Config, log logr.Logger) error {
			rc, err := kube.RestConfig(cfg.Kubeconfig)
			if err != nil {
				return err
			}
			return webhook.Run(ctx, cfg, rc, log)
		},
		Auditguard: func(ctx context.Context, cfg auditguard.Config, log logr.Logger) error {
			client, err := auditguard.NewVaultClient(ctx, cfg, log)
			if err != nil {
				return err
			}
			return auditguard.Run(ctx, cfg, client, log)
		},
	}
}

var globalLoggerOnce sync.Once

// NewRootCommand builds `credchain` and its subcommands.
func NewRootCommand(ctx context.Context, r Runners) *cobra.Command {
	var verbosity int
	root := &cobra.Command{
		Use:           "credchain",
		Short:         "Keep Vault → ESO → imagePullSecrets from breaking silently",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().IntVarP(&verbosity, "v", "v", 0, "log verbosity (0: decisions and lifecycle, 1: every review)")
	newLogger := func() logr.Logger {
		h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-verbosity)})
		l := logr.FromSlogHandler(h)
		// controller-runtime's and klog's loggers are process globals: set them once.
		globalLoggerOnce.Do(func() {
			ctrl.SetLogger(l)
			klog.SetLogger(l)
		})
		return l
	}
	root.AddCommand(newWebhookCommand(ctx, r.Webhook, newLogger))
	root.AddCommand(newAuditguardCommand(ctx, r.Auditguard, newLogger))
	root.AddCommand(newCapabilitiesCommand(ctx, runCapabilities))
	root.AddCommand(newCheckCommand(ctx, runCheck, os.Getenv))
	root.AddCommand(newExplainCommand(ctx, runExplain, os.Getenv))
	return root
}

// addDeliveryFlags registers the event delivery flags both components share.
func addDeliveryFlags(f *pflag.FlagSet, c *events.DeliveryConfig) {
	c.SetDefaults() // flag defaults are the Config defaults
	f.StringSliceVar(&c.NATS.URLs, "nats-url", nil, "NATS server URL(s); events go to credchain.<cluster>.<type> (default: events only logged)")
	f.StringVar(&c.NATS.Cluster, "cluster", c.NATS.Cluster, "this installation's name in event subjects and messages")
	f.StringVar(&c.NATS.CredsFile, "nats-creds", "", "NATS credentials file")
	f.StringVar(&c.NATS.NkeySeedFile, "nats-nkey-seed", "", "NATS nkey seed file")
	f.StringVar(&c.NATS.CAFile, "nats-ca", "", "CA bundle for NATS TLS")
	f.StringVar(&c.NATS.CertFile, "nats-cert", "", "client certificate for NATS mTLS")
	f.StringVar(&c.NATS.KeyFile, "nats-key", "", "client key for NATS mTLS")
	f.BoolVar(&c.NATS.CreateStream, "nats-create-stream", false, "create stream CREDCHAIN (credchain.>, file storage, 1h duplicate window) when no stream covers the subjects")
	f.StringVar(&c.SlackWebhookFile, "slack-webhook-file", "", "file holding a Slack incoming-webhook URL (or set CREDCHAIN_SLACK_WEBHOOK_URL)")
	l := &c.Limits
	f.IntVar(&l.MaxPending, "event-outbox-max-events", l.MaxPending, "most events each sink's outbox holds; past it the oldest are dead-lettered (0: the default)")
	f.Int64Var(&l.MaxPendingBytes, "event-outbox-max-bytes", l.MaxPendingBytes, "most bytes of encoded events each sink's outbox holds, at least 262144 (the largest event); past it the oldest are dead-lettered (0: the default)")
	f.IntVar(&l.MaxAttempts, "event-max-attempts", l.MaxAttempts, "failed deliveries of one event while its sink is up before it is dead-lettered (0: the default)")
	f.DurationVar(&l.MaxAge, "event-max-age", l.MaxAge, "how long after its time an event may keep failing, for any reason, before it is dead-lettered (0: the default)")
}
