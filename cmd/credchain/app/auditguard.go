package app

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/credchain/credchain/auditguard"
)

func newAuditguardCommand(ctx context.Context, run func(context.Context, auditguard.Config, logr.Logger) error, newLogger func() logr.Logger) *cobra.Command {
	var cfg auditguard.Config
	// Defaults once, before flags: flag defaults are the Config defaults (shown in --help), and a
	// value given on the command line, zero included, is kept and validated.
	cfg.SetDefaults()
	cmd := &cobra.Command{
		Use:   "auditguard",
		Short: "Stream Vault's audit log and restore deleted policies that Kubernetes auth roles still reference",
		Long: `auditguard is the target of a Vault socket audit device (and/or tails a file audit device).
It must never be Vault's only audit device: Vault refuses every request when no device can log it.
Enable a file device beside it. Vault's address, CA and namespace come from VAULT_ADDR, VAULT_CACERT,
VAULT_NAMESPACE; the token from VAULT_TOKEN, --vault-token-file or --vault-k8s-role.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration: %w", err)
			}
			return run(ctx, cfg, newLogger())
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&cfg.Listen, "listen", nil, "socket audit device target, tcp://HOST:PORT or unix:///PATH (repeatable)")
	f.Var((*fileMode)(&cfg.ListenMode), "listen-mode", "permission of unix:// sockets, octal; never for others (give Vault's group --listen-group and 0660)")
	f.StringVar(&cfg.ListenGroup, "listen-group", "", "group owning unix:// sockets, a name or numeric gid (default: the guard's own)")
	f.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "open audit socket connections accepted across every --listen; more are closed at once")
	f.StringArrayVar(&cfg.AuditFiles, "audit-file", nil, "file audit device log to tail, - for stdin (repeatable)")
	f.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "directory for the policy snapshot store")
	addSharedFlags(f, &cfg)
	f.StringVar(&cfg.HealthAddr, "health-addr", cfg.HealthAddr, "address serving /healthz and /readyz (\"0\" disables)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", cfg.MetricsAddr, "address serving Prometheus /metrics (\"0\" disables)")
	f.DurationVar(&cfg.ResyncInterval, "resync-interval", cfg.ResyncInterval, "full rebuild of the role index and policy snapshots")
	f.DurationVar(&cfg.ReconcileInterval, "reconcile-interval", cfg.ReconcileInterval, "how often referenced policies missing from Vault are restored")
	f.IntVar(&cfg.QueueSize, "queue-size", cfg.QueueSize, "relevant entries buffered between the readers and processing")
	f.IntVar(&cfg.MaxLine, "max-line", cfg.MaxLine, "longest audit line accepted, in bytes")
	f.Int64Var(&cfg.LineBufferBytes, "line-buffer-bytes", cfg.LineBufferBytes, "bytes of lines over 64 KiB buffered at once across every connection and file; a line that does not fit is skipped (at least --max-line)")
	f.Int64Var(&cfg.QueueBytes, "queue-bytes", cfg.QueueBytes, "bytes of relevant entries buffered between the readers and processing")
	f.DurationVar(&cfg.RotateGrace, "audit-file-rotate-grace", cfg.RotateGrace, "how long a rotated-away --audit-file is still read after the new file appears (Vault writes to it until it reopens)")
	f.DurationVar(&cfg.AuditDisableWait, "audit-disable-wait", cfg.AuditDisableWait, "how long an audit device's disable waits for its response entry before it is reported from the request entry alone")
	f.IntVar(&cfg.FlapDeletes, "flap-deletes", cfg.FlapDeletes, "stop restoring a policy (and alert) at this many deletes of it within --flap-window (-1 disables)")
	f.DurationVar(&cfg.FlapWindow, "flap-window", cfg.FlapWindow, "window of --flap-deletes")
	f.StringVar(&cfg.VaultTokenFile, "vault-token-file", "", "file holding the Vault token (default: $VAULT_TOKEN)")
	f.BoolVar(&cfg.VaultLocalNode, "vault-local-node", false, "VAULT_ADDR is this guard's own Vault node (a sidecar): reconcile only while it is the active node")
	f.StringVar(&cfg.KubernetesRole, "vault-k8s-role", "", "log in with Vault's Kubernetes auth as this role (token renewed)")
	f.StringVar(&cfg.KubernetesMount, "vault-k8s-mount", cfg.KubernetesMount, "Kubernetes auth mount for --vault-k8s-role")
	f.StringVar(&cfg.KubernetesJWTFile, "vault-k8s-jwt-file", cfg.KubernetesJWTFile, "service account token for --vault-k8s-role")
	f.BoolVar(&cfg.BlastRadius, "blast-radius", false, "events carry the Kubernetes blast radius (ESO stores → ExternalSecrets → Secrets → workloads) of the --kubeconfig cluster")
	f.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig path or in-cluster, for --blast-radius (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	f.Var(kubeShorthand{&cfg}, "kube", "--blast-radius with --kubeconfig=VALUE")
	_ = f.MarkDeprecated("kube", "use --blast-radius and --kubeconfig (the webhook's flag)")
	f.StringVar(&cfg.DesiredPolicies, "desired-policies", "", "directory of the IaC's policies (NAME.hcl, NAME.json): restored from their desired body when deleted, drift reported")
	f.StringVar(&cfg.Terraform, "terraform", "", "Terraform root module whose vault_policy resources are desired policies too")
	f.DurationVar(&cfg.DesiredPoll, "desired-poll", cfg.DesiredPoll, "how often the desired state's directories are checked for changes")
	f.BoolVar(&cfg.DesiredAuthoritative, "desired-authoritative", false, "the desired state is complete: a deleted policy it does not define stays deleted even when a role names it (the reference is reported)")
	f.BoolVar(&cfg.CorrectDrift, "correct-drift", false, "write a drifted desired policy's desired body back")
	f.Var((*activeWindow)(&cfg.ActiveWindow), "active-window", "a role that logged in within it (or an ESO store uses, with --blast-radius) is active; a deleted policy only inactive roles name stays deleted (0 disables: every role active)")
	addDeliveryFlags(f, &cfg.Events)
	return cmd
}

// fileMode is a pflag.Value of an octal permission (0660), printed the same way.
type fileMode os.FileMode

func (m *fileMode) String() string { return fmt.Sprintf("%#o", uint32(*m)) }

func (m *fileMode) Set(s string) error {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return fmt.Errorf("want an octal mode such as 0660: %w", err)
	}
	*m = fileMode(v)
	return nil
}

func (m *fileMode) Type() string { return "mode" }

// activeWindow is a pflag.Value of --active-window: a duration, also in days (30d), where 0 turns
// the rule off (Config.ActiveWindow negative).
type activeWindow time.Duration

func (w *activeWindow) String() string {
	d := time.Duration(*w)
	switch {
	case d < 0:
		return "0"
	case d%(24*time.Hour) == 0 && d > 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (w *activeWindow) Set(s string) error {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return fmt.Errorf("want a duration such as 30d or 720h: %w", err)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("want a duration such as 30d or 720h: %w", err)
		}
	}
	if d < 0 {
		return fmt.Errorf("must not be negative (0 disables)")
	}
	if d == 0 {
		d = -1
	}
	*w = activeWindow(d)
	return nil
}

func (w *activeWindow) Type() string { return "duration" }

// kubeShorthand is the deprecated --kube PATH|in-cluster: --blast-radius with --kubeconfig=PATH.
type kubeShorthand struct{ cfg *auditguard.Config }

func (k kubeShorthand) String() string {
	if k.cfg == nil || !k.cfg.BlastRadius {
		return ""
	}
	return k.cfg.Kubeconfig
}

func (k kubeShorthand) Set(s string) error {
	k.cfg.BlastRadius, k.cfg.Kubeconfig = s != "", s
	return nil
}

func (kubeShorthand) Type() string { return "string" }

// addSharedFlags registers the flags of what the guard shares on NATS: its state with other
// replicas, and the clusters' inventories.
func addSharedFlags(f *pflag.FlagSet, cfg *auditguard.Config) {
	f.StringVar(&cfg.State, "state", cfg.State, "where the guard keeps snapshots, holds and logins: bbolt (state.db in --state-dir, one replica) or nats (a JetStream key-value bucket on --nats-url, shared by replicas)")
	f.StringVar(&cfg.StateBucket, "state-bucket", cfg.StateBucket, "key-value bucket of --state=nats; the leader lease is in <bucket>-leader")
	f.IntVar(&cfg.StateReplicas, "state-replicas", cfg.StateReplicas, "JetStream copies of the --state=nats buckets (1, 3 or 5)")
	f.StringVar(&cfg.ReplicaID, "replica-id", cfg.ReplicaID, "this replica's name in the leader lease and heartbeats (default: $POD_NAME, else the hostname)")
	f.DurationVar(&cfg.LeaderTTL, "leader-ttl", cfg.LeaderTTL, "leader lease of --state=nats: a dead leader's reconcile is taken over within it (at least 3s)")
	f.BoolVar(&cfg.Inventory, "inventory", false, "read every cluster's inventory (published by each cluster's webhook with --inventory-publish) for the blast radius and active roles")
	f.StringVar(&cfg.InventoryBucket, "inventory-bucket", cfg.InventoryBucket, "key-value bucket of the clusters' inventories on --nats-url")
}
