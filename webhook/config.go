package webhook

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/credchain/credchain/certs"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/inventory"
)

// Config is everything `credchain webhook` needs. SetDefaults fills the documented defaults; it is
// called once, before flags are applied, so an explicit zero from a flag (--grace-period=0) stays
// zero. Validate reports every problem at once before anything starts.
type Config struct {
	// Port is the HTTPS port for /validate. Defaults to 9443.
	Port int
	// Host is the address the HTTPS server binds to. Defaults to "" (all interfaces).
	Host string
	// CertDir holds tls.crt and tls.key; a renewed pair is picked up without restart.
	// Defaults to $TMPDIR/k8s-webhook-server/serving-certs (controller-runtime's default).
	CertDir string
	// HealthAddr serves /healthz and /readyz. Defaults to ":8081".
	HealthAddr string
	// MetricsAddr serves Prometheus metrics; "0" disables. Defaults to ":8080".
	MetricsAddr string
	// Kubeconfig is the kubeconfig path; empty means KUBECONFIG, in-cluster, then ~/.kube/config.
	Kubeconfig string
	// UnmanagedSecrets is what to do with a pull secret no ExternalSecret writes. Defaults to deny.
	UnmanagedSecrets UnmanagedPolicy
	// GracePeriod is how long a new ExternalSecret may go without a Ready condition before workloads
	// using it are denied: a Deployment and its ExternalSecret are often applied together. Defaults to 2m.
	GracePeriod time.Duration
	// StaleFactor: a Ready ExternalSecret not refreshed for StaleFactor×refreshInterval draws a
	// warning. Defaults to 3; a negative value disables the warning; zero is invalid.
	StaleFactor int
	// FailingGrace: a Ready=False ExternalSecret whose last good sync is younger than this is
	// admitted with a warning (ESO keeps the last Secret it wrote, which may still work). Defaults
	// to 0: denied at once.
	FailingGrace time.Duration
	// NonDockerSecrets is what to do with a pull secret whose ExternalSecret writes a Secret type the
	// kubelet ignores for pulls: warn or deny. Defaults to warn.
	NonDockerSecrets UnmanagedPolicy
	// DefaultEnforcement applies to namespaces without the credchain.io/enforcement label.
	// Defaults to enforce.
	DefaultEnforcement Enforcement
	// ExemptNamespaces are never checked. Defaults to kube-system, the webhook's own namespace
	// ($POD_NAMESPACE, else credchain-system) and External Secrets Operator's (external-secrets,
	// the namespace of ESO's chart: ESO cannot back its own pull secret).
	ExemptNamespaces []string
	// Events delivers admission.denied/admission.warned events (always logged) to NATS and Slack.
	Events events.DeliveryConfig
	// StateDir holds the event outbox (events.db) when NATS or Slack is configured.
	// Defaults to $TMPDIR/credchain-webhook (an emptyDir in the install).
	StateDir string
	// EventWindow reports the same object denied for the same reason once per window. Defaults to
	// 10m; must be positive.
	EventWindow time.Duration
	// Notifier, when set (tests, embedding), receives every event in place of the log; the
	// configured delivery (Events) gets them too. The same as auditguard.Config.Notifier.
	Notifier events.Notifier
	// CertMode is "files" (tls.crt/tls.key provided in CertDir, e.g. by cert-manager) or "self"
	// (credchain issues and rotates them, see package certs). Defaults to files.
	CertMode string
	// Certs configures self-managed certificates (CertMode self); its CertDir is CertDir.
	Certs certs.Config
	// ClientCAFile, when set, makes /validate require a client certificate signed by this CA (the
	// API server's, see docs/install.md). Defaults to "": any caller is answered.
	ClientCAFile string
	// WatchFailureGrace is how long an informer watch may fail before /readyz fails and
	// credchain_webhook_watches_failing counts it (a routine watch expiry recovers within a second).
	// Defaults to 30s.
	WatchFailureGrace time.Duration
	// ESOVersion pins the ExternalSecret API version (v1 or v1beta1); empty discovers it, preferring v1.
	ESOVersion string
	// Inventory publishes this cluster's part of the chain to NATS for the guard (see
	// InventoryConfig for each default; off by default).
	Inventory InventoryConfig
}

// SetDefaults fills zero fields with their documented defaults. Call it once, before flags or a
// config file are applied: what is set afterwards, zero included, is kept (and validated).
func (c *Config) SetDefaults() {
	if c.Port == 0 {
		c.Port = 9443
	}
	if c.CertDir == "" {
		c.CertDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	}
	if c.HealthAddr == "" {
		c.HealthAddr = ":8081"
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = ":8080"
	}
	if c.UnmanagedSecrets == "" {
		c.UnmanagedSecrets = UnmanagedDeny
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = 2 * time.Minute
	}
	if c.StaleFactor == 0 {
		c.StaleFactor = 3
	}
	if c.NonDockerSecrets == "" {
		c.NonDockerSecrets = UnmanagedWarn
	}
	if c.DefaultEnforcement == "" {
		c.DefaultEnforcement = EnforcementEnforce
	}
	if c.CertMode == "" {
		c.CertMode = "files"
	}
	c.Certs.CertDir = c.CertDir
	c.Certs.SetDefaults()
	if c.StateDir == "" {
		c.StateDir = filepath.Join(os.TempDir(), "credchain-webhook")
	}
	if c.EventWindow == 0 {
		c.EventWindow = 10 * time.Minute
	}
	if c.WatchFailureGrace == 0 {
		c.WatchFailureGrace = 30 * time.Second
	}
	c.Events.SetDefaults()
	c.Inventory.SetDefaults()
	if c.ExemptNamespaces == nil {
		c.ExemptNamespaces = DefaultExemptNamespaces()
	}
}

// ESONamespace is the namespace External Secrets Operator's chart installs into by default.
const ESONamespace = "external-secrets"

// DefaultExemptNamespaces is kube-system, the namespace the webhook runs in and ESO's.
func DefaultExemptNamespaces() []string {
	own := os.Getenv("POD_NAMESPACE")
	if own == "" {
		own = "credchain-system"
	}
	return []string{"kube-system", own, ESONamespace}
}

// Validate reports every invalid field, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d: must be 1-65535", c.Port))
	}
	if c.CertDir == "" {
		errs = append(errs, errors.New("--cert-dir: must not be empty"))
	}
	switch c.UnmanagedSecrets {
	case UnmanagedDeny, UnmanagedWarn, UnmanagedAllow:
	default:
		errs = append(errs, fmt.Errorf("--unmanaged-secrets %q: must be deny, warn or allow", c.UnmanagedSecrets))
	}
	switch c.DefaultEnforcement {
	case EnforcementEnforce, EnforcementWarn, EnforcementOff:
	default:
		errs = append(errs, fmt.Errorf("--default-enforcement %q: must be enforce, warn or off", c.DefaultEnforcement))
	}
	if c.GracePeriod < 0 {
		errs = append(errs, fmt.Errorf("--grace-period %s: must not be negative", c.GracePeriod))
	}
	if c.StaleFactor == 0 {
		errs = append(errs, errors.New("--stale-factor 0: must be positive, or negative to disable the warning"))
	}
	if c.FailingGrace < 0 {
		errs = append(errs, fmt.Errorf("--failing-grace %s: must not be negative", c.FailingGrace))
	}
	switch c.NonDockerSecrets {
	case UnmanagedWarn, UnmanagedDeny:
	default:
		errs = append(errs, fmt.Errorf("--non-docker-secrets %q: must be warn or deny", c.NonDockerSecrets))
	}
	if c.WatchFailureGrace <= 0 {
		errs = append(errs, fmt.Errorf("--watch-failure-grace %s: must be positive", c.WatchFailureGrace))
	}
	if c.EventWindow <= 0 {
		errs = append(errs, fmt.Errorf("--event-window %s: must be positive", c.EventWindow))
	}
	if err := c.Events.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.CertMode {
	case "files":
	case "self":
		if err := c.Certs.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("--cert-mode %q: must be files or self", c.CertMode))
	}
	switch c.ESOVersion {
	case "", "v1", "v1beta1":
	default:
		errs = append(errs, fmt.Errorf("--eso-version %q: must be v1, v1beta1 or empty (discover)", c.ESOVersion))
	}
	if c.Inventory.Publish {
		errs = append(errs, c.validateInventory()...)
	}
	return errors.Join(errs...)
}

// bucketRe is a JetStream KV bucket name.
var bucketRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// validateInventory checks --inventory-publish's needs: a NATS server, a cluster name that is its
// own KV key (two clusters publishing as "default" would overwrite each other's inventory), a
// bucket name, a TTL the heartbeat (TTL/3) can keep.
func (c *Config) validateInventory() []error {
	var errs []error
	if len(c.Events.NATS.URLs) == 0 {
		errs = append(errs, errors.New("--inventory-publish: needs --nats-url"))
	}
	switch err := inventory.ValidClusterName(c.Events.NATS.Cluster); {
	case err != nil:
		errs = append(errs, fmt.Errorf("--inventory-publish: --cluster: %w", err))
	case c.Events.NATS.Cluster == "default":
		errs = append(errs, errors.New("--inventory-publish: needs --cluster naming this cluster: each cluster's inventory is the key of its name, and clusters left at \"default\" would overwrite each other's"))
	}
	if !bucketRe.MatchString(c.Inventory.Bucket) {
		errs = append(errs, fmt.Errorf("--inventory-bucket %q: only letters, digits, '-' and '_'", c.Inventory.Bucket))
	}
	if c.Inventory.TTL < 3*time.Second {
		errs = append(errs, fmt.Errorf("--inventory-ttl %s: must be at least 3s (the webhook re-publishes every third of it)", c.Inventory.TTL))
	}
	if c.Inventory.Replicas < 1 || c.Inventory.Replicas > 5 {
		errs = append(errs, fmt.Errorf("--inventory-replicas %d: must be 1-5 (JetStream's limit)", c.Inventory.Replicas))
	}
	return errs
}
