package app

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/credchain/credchain/webhook"
)

func newWebhookCommand(ctx context.Context, run func(context.Context, webhook.Config, logr.Logger) error, newLogger func() logr.Logger) *cobra.Command {
	var cfg webhook.Config
	// Defaults once, before flags: flag defaults are the Config defaults (shown in --help), and a
	// value given on the command line, zero included, is kept.
	cfg.SetDefaults()
	var unmanaged, enforcement, nonDocker string
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the admission webhook that denies workloads whose pull secrets are not backed by a synced ExternalSecret",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.UnmanagedSecrets = webhook.UnmanagedPolicy(unmanaged)
			cfg.DefaultEnforcement = webhook.Enforcement(enforcement)
			cfg.NonDockerSecrets = webhook.UnmanagedPolicy(nonDocker)
			// Only the certificate settings derived from other flags (--cert-dir, the secret's
			// namespace, the lifetime) are completed after parsing.
			cfg.Certs.CertDir = cfg.CertDir
			cfg.Certs.SetDefaults()
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration: %w", err)
			}
			return run(ctx, cfg, newLogger())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Port, "port", cfg.Port, "HTTPS port serving "+webhook.Path)
	f.StringVar(&cfg.Host, "host", cfg.Host, "address the HTTPS server binds to (empty: all)")
	f.StringVar(&cfg.CertDir, "cert-dir", cfg.CertDir, "directory with tls.crt and tls.key (reloaded on change)")
	f.StringVar(&cfg.HealthAddr, "health-addr", cfg.HealthAddr, "address serving /healthz and /readyz")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", cfg.MetricsAddr, "address serving Prometheus metrics (\"0\" disables)")
	f.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig path (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	f.StringVar(&unmanaged, "unmanaged-secrets", string(cfg.UnmanagedSecrets), "pull secrets no ExternalSecret writes: deny, warn or allow")
	f.DurationVar(&cfg.GracePeriod, "grace-period", cfg.GracePeriod, "how long a new ExternalSecret may lack a Ready condition before workloads using it are denied")
	f.IntVar(&cfg.StaleFactor, "stale-factor", cfg.StaleFactor, "warn when a Ready ExternalSecret was last refreshed more than this many refresh intervals ago (negative disables)")
	f.DurationVar(&cfg.FailingGrace, "failing-grace", cfg.FailingGrace, "admit with a warning while a failing ExternalSecret's last good sync is younger than this (0: deny at once)")
	f.StringVar(&nonDocker, "non-docker-secrets", string(cfg.NonDockerSecrets), "pull secrets whose ExternalSecret writes a Secret type the kubelet ignores: warn or deny")
	f.StringVar(&enforcement, "default-enforcement", string(cfg.DefaultEnforcement), "enforcement for namespaces without the "+webhook.EnforcementLabel+" label: enforce, warn or off")
	f.StringSliceVar(&cfg.ExemptNamespaces, "exempt-namespaces", cfg.ExemptNamespaces, "namespaces never checked")
	f.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "directory for the event outbox (when NATS or Slack is configured)")
	f.StringVar(&cfg.ClientCAFile, "client-ca-file", cfg.ClientCAFile, "require a client certificate signed by this CA on /validate (the API server's; default: none)")
	f.DurationVar(&cfg.WatchFailureGrace, "watch-failure-grace", cfg.WatchFailureGrace, "how long an informer watch may fail before /readyz fails (decisions would come from a stale cache)")
	f.DurationVar(&cfg.EventWindow, "event-window", cfg.EventWindow, "report the same object denied for the same reason once per window")
	addDeliveryFlags(f, &cfg.Events)
	f.StringVar(&cfg.CertMode, "cert-mode", cfg.CertMode, "files: tls.crt/tls.key provided in --cert-dir (e.g. by cert-manager); self: credchain issues and rotates them")
	f.StringVar(&cfg.Certs.SecretNamespace, "cert-secret-namespace", cfg.Certs.SecretNamespace, "--cert-mode=self: namespace of the certificate Secret and the leader-election Lease")
	f.StringVar(&cfg.Certs.SecretName, "cert-secret-name", cfg.Certs.SecretName, "--cert-mode=self: the certificate Secret")
	cfg.Certs.DNSNames, cfg.Certs.RenewBefore = nil, 0 // derived in SetDefaults from the namespace and lifetime
	f.StringSliceVar(&cfg.Certs.DNSNames, "cert-dns-names", nil, "--cert-mode=self: serving certificate DNS names; IPs become IP SANs (default credchain-webhook.<secret namespace>.svc and .svc.cluster.local)")
	f.StringVar(&cfg.Certs.WebhookConfigName, "cert-webhook-config", cfg.Certs.WebhookConfigName, "--cert-mode=self: ValidatingWebhookConfiguration whose caBundle is kept current")
	f.DurationVar(&cfg.Certs.CALifetime, "ca-lifetime", cfg.Certs.CALifetime, "--cert-mode=self: CA lifetime")
	f.DurationVar(&cfg.Certs.CertLifetime, "cert-lifetime", cfg.Certs.CertLifetime, "--cert-mode=self: serving certificate lifetime")
	f.DurationVar(&cfg.Certs.RenewBefore, "cert-renew-before", 0, "--cert-mode=self: renew when less than this is left (default a third of --cert-lifetime)")
	f.StringVar(&cfg.ESOVersion, "eso-version", "", "ExternalSecret API version, v1 or v1beta1 (default: discover, preferring v1)")
	addInventoryFlags(f, &cfg.Inventory)
	return cmd
}

// addInventoryFlags are the cluster inventory's (docs/inventory.md); the NATS connection and the
// cluster name are the event delivery's flags (--nats-url, --nats-creds, ..., --cluster).
func addInventoryFlags(f *pflag.FlagSet, c *webhook.InventoryConfig) {
	f.BoolVar(&c.Publish, "inventory-publish", c.Publish, "publish this cluster's part of the chain (Vault stores, ExternalSecrets, Secrets, workloads) to a NATS KV bucket under --cluster, for the guard's blast radius across clusters; needs --nats-url")
	f.StringVar(&c.Bucket, "inventory-bucket", c.Bucket, "--inventory-publish: the KV bucket (created when missing)")
	f.DurationVar(&c.TTL, "inventory-ttl", c.TTL, "--inventory-publish: how long the guard keeps this cluster after its last publish (the bucket's max age; re-published every third of it)")
	f.IntVar(&c.Replicas, "inventory-replicas", c.Replicas, "--inventory-publish: replicas of the bucket on the NATS cluster")
}
