package app

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/credchain/credchain/webhook"
)

func TestWebhookCommand(t *testing.T) {
	defaults := webhook.Config{}
	defaults.SetDefaults()
	tests := map[string]struct {
		args    []string
		want    func(*webhook.Config)
		wantErr string
	}{
		"defaults": {args: nil, want: func(*webhook.Config) {}},
		"every flag": {
			args: []string{"--port", "10250", "--host", "127.0.0.1", "--cert-dir", "/certs", "--health-addr", ":9000",
				"--metrics-addr", "0", "--kubeconfig", "/kc", "--unmanaged-secrets", "warn", "--grace-period", "5m",
				"--stale-factor", "-1", "--default-enforcement", "warn", "--exempt-namespaces", "a,b", "--eso-version", "v1beta1"},
			want: func(c *webhook.Config) {
				c.Port, c.Host, c.CertDir, c.HealthAddr, c.MetricsAddr, c.Kubeconfig = 10250, "127.0.0.1", "/certs", ":9000", "0", "/kc"
				c.UnmanagedSecrets, c.GracePeriod, c.StaleFactor, c.DefaultEnforcement = webhook.UnmanagedWarn, 5*time.Minute, -1, webhook.EnforcementWarn
				c.ExemptNamespaces, c.ESOVersion = []string{"a", "b"}, "v1beta1"
				c.Certs.CertDir = "/certs" // follows --cert-dir
			},
		},
		"an explicit zero is kept, not replaced by the default": {
			args: []string{"--grace-period", "0", "--failing-grace", "1h", "--non-docker-secrets", "deny"},
			want: func(c *webhook.Config) {
				c.GracePeriod, c.FailingGrace, c.NonDockerSecrets = 0, time.Hour, webhook.UnmanagedDeny
			},
		},
		"--stale-factor 0 is rejected, not turned into 3": {
			args:    []string{"--stale-factor", "0", "--event-window", "0s", "--non-docker-secrets", "allow", "--failing-grace", "-1m"},
			wantErr: "invalid configuration: --stale-factor 0: must be positive, or negative to disable the warning\n--failing-grace -1m0s: must not be negative\n--non-docker-secrets \"allow\": must be warn or deny\n--event-window 0s: must be positive",
		},
		"event delivery limits": {
			args: []string{"--event-outbox-max-events", "500", "--event-outbox-max-bytes", "1048576", "--event-max-attempts", "7", "--event-max-age", "2h"},
			want: func(c *webhook.Config) {
				c.Events.Limits.MaxPending, c.Events.Limits.MaxPendingBytes = 500, 1<<20
				c.Events.Limits.MaxAttempts, c.Events.Limits.MaxAge = 7, 2*time.Hour
			},
		},
		"self-managed certificates derive their defaults": {
			args: []string{"--cert-mode", "self", "--cert-secret-namespace", "platform", "--cert-lifetime", "1h"},
			want: func(c *webhook.Config) {
				c.CertMode = "self"
				c.Certs.SecretNamespace, c.Certs.CertLifetime, c.Certs.RenewBefore = "platform", time.Hour, 20*time.Minute
				c.Certs.DNSNames = []string{"credchain-webhook.platform.svc", "credchain-webhook.platform.svc.cluster.local"}
			},
		},
		"inventory publishing": {
			args: []string{"--inventory-publish", "--nats-url", "nats://nats:4222", "--cluster", "prod-eu-1", "--inventory-bucket", "inv",
				"--inventory-ttl", "30s", "--inventory-replicas", "3"},
			want: func(c *webhook.Config) {
				c.Events.NATS.URLs, c.Events.NATS.Cluster = []string{"nats://nats:4222"}, "prod-eu-1"
				c.Inventory = webhook.InventoryConfig{Publish: true, Bucket: "inv", TTL: 30 * time.Second, Replicas: 3}
			},
		},
		"inventory publishing needs NATS and a cluster name of its own": {
			args: []string{"--inventory-publish", "--inventory-ttl", "1s", "--inventory-replicas", "0", "--inventory-bucket", "a.b"},
			wantErr: "invalid configuration: --inventory-publish: needs --nats-url\n--inventory-publish: needs --cluster naming this cluster: each cluster's inventory is the key of its name, and clusters left at \"default\" would overwrite each other's\n" +
				"--inventory-bucket \"a.b\": only letters, digits, '-' and '_'\n--inventory-ttl 1s: must be at least 3s (the webhook re-publishes every third of it)\n--inventory-replicas 0: must be 1-5 (JetStream's limit)",
		},
		"inventory settings are not checked when not publishing": {
			args: []string{"--inventory-ttl", "1s"},
			want: func(c *webhook.Config) { c.Inventory.TTL = time.Second },
		},
		"every error at once": {
			args:    []string{"--port", "70000", "--unmanaged-secrets", "maybe", "--default-enforcement", "strict", "--grace-period", "-1s", "--eso-version", "v2", "--cert-mode", "self", "--cert-lifetime", "1h", "--cert-renew-before", "2h"},
			wantErr: "invalid configuration: --port 70000: must be 1-65535\n--unmanaged-secrets \"maybe\": must be deny, warn or allow\n--default-enforcement \"strict\": must be enforce, warn or off\n--grace-period -1s: must not be negative\n--cert-renew-before 2h0m0s must be shorter than --cert-lifetime 1h0m0s\n--eso-version \"v2\": must be v1, v1beta1 or empty (discover)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := execute(t, "webhook", tc.args, func(run func(context.Context, webhook.Config, logr.Logger) error) Runners {
				return Runners{Webhook: run}
			})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if got != nil {
					t.Fatal("run called with an invalid config")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults
			want.ExemptNamespaces = append([]string(nil), defaults.ExemptNamespaces...)
			tc.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("config:\n got %+v\nwant %+v", *got, want)
			}
		})
	}
}

// execute runs the root command with a subcommand and its args, with runners built by with around a
// run function that records the configuration it is given (nil when the command never ran it).
func execute[C any](t *testing.T, sub string, args []string, with func(func(context.Context, C, logr.Logger) error) Runners) (*C, error) {
	t.Helper()
	var got *C
	cmd := NewRootCommand(t.Context(), with(func(_ context.Context, c C, _ logr.Logger) error {
		got = &c
		return nil
	}))
	cmd.SetArgs(append([]string{sub}, args...))
	err := cmd.Execute()
	return got, err
}

func TestRunErrorIsReturned(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	cmd := NewRootCommand(t.Context(), Runners{Webhook: func(context.Context, webhook.Config, logr.Logger) error { return boom }})
	cmd.SetArgs([]string{"webhook"})
	if err := cmd.Execute(); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}
