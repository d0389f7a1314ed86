package auditguard

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/inventory"
)

// Config is everything `credchain auditguard` needs. Vault's address, CA and namespace come from the
// vault CLI's environment (VAULT_ADDR, VAULT_CACERT, VAULT_NAMESPACE, ...); the token from
// VAULT_TOKEN, --vault-token-file, or a Kubernetes auth login.
type Config struct {
	// Listen are socket audit device targets: tcp://HOST:PORT or unix:///PATH. Repeatable.
	Listen []string
	// ListenMode is the permission of unix:// sockets. Connecting to a unix socket needs write
	// permission on it, so only the guard's user (0600) or also ListenGroup (0660) can send lines.
	// Bits for others are refused: any process on the host could write audit lines. Defaults to
	// 0600; Vault usually runs as its own user, so give 0660 and ListenGroup.
	ListenMode os.FileMode
	// ListenGroup owns unix:// sockets when set: a group name or a numeric gid (a distroless image's
	// /etc/group knows few names). The guard must be a member (Kubernetes: the pod's fsGroup or
	// supplementalGroups). Defaults to "": the guard's own group.
	ListenGroup string
	// MaxConnections bounds open socket connections across every Listen: each costs a 64 KiB read
	// buffer and a goroutine, and every Vault node of a cluster needs only one per device. One
	// more is closed at once (credchain_auditguard_connections_refused_total). Defaults to 16.
	MaxConnections int
	// LineBufferBytes bounds the bytes held in buffers of lines longer than 64 KiB, across every
	// connection and file together: a line that cannot get its buffer from it is skipped whole
	// (lines_dropped_total{reason="buffer_budget"}) instead of growing memory with the number of
	// connections. At least MaxLine. Defaults to 96 MiB: one line of the 64 MiB maximum while
	// others of up to 32 MiB are read.
	LineBufferBytes int64
	// QueueBytes bounds the bytes of the lines waiting in the queue (QueueSize bounds their number):
	// past it relevant lines are dropped (lines_dropped_total{reason="queue_bytes"}) and reconcile
	// repairs what they would have triggered. Relevant entries are a few KiB (Vault HMACs request
	// bodies), so 8192 of them fit with room to spare. Defaults to 16 MiB.
	QueueBytes int64
	// AuditFiles are file audit device logs to tail ("-" reads stdin once). Repeatable.
	AuditFiles []string
	// StateDir holds the snapshot store (state.db) and the event outbox (events.db). Defaults to
	// /var/lib/credchain.
	StateDir string
	// State is where the guard keeps its State (state.go): "bbolt", state.db in StateDir, for a
	// single replica with a volume; or "nats", a JetStream key-value bucket on the Events.NATS
	// servers (--nats-url and its credentials) shared by every replica, which then elect a leader
	// to reconcile (leader.go, docs/scale.md). Defaults to "bbolt".
	State string
	// StateBucket is the key-value bucket of --state=nats; the leader lease and the replicas'
	// heartbeats are in "<StateBucket>-leader". Defaults to "credchain-guard".
	StateBucket string
	// StateReplicas is how many copies JetStream keeps of the state buckets (1, 3 or 5; at most the
	// NATS cluster's size). Defaults to 1.
	StateReplicas int
	// ReplicaID names this replica in the leader lease, its heartbeat and its file offsets.
	// Defaults to $POD_NAME, else the hostname.
	ReplicaID string
	// LeaderTTL is the leader lease: a dead leader's reconcile is taken over within it. At least
	// 3s. Defaults to 15s.
	LeaderTTL time.Duration
	// Inventory reads every cluster's inventory from InventoryBucket on the Events.NATS servers
	// (each cluster's webhook publishes its own with --inventory-publish): events' blast radius
	// and active roles then cover every live cluster, without their Kubernetes credentials.
	// Off by default.
	Inventory bool
	// InventoryBucket is the key-value bucket of the inventories. Defaults to "credchain-inventory".
	InventoryBucket string
	// HealthAddr serves /healthz and /readyz (ready once the first resync from Vault succeeded).
	// Defaults to ":8081"; "0" disables.
	HealthAddr string
	// MetricsAddr serves Prometheus metrics at /metrics; "0" disables. Defaults to ":8080".
	MetricsAddr string
	// ResyncInterval: full rebuild of the role index and policy snapshots. Defaults to 5m.
	ResyncInterval time.Duration
	// ReconcileInterval: restore referenced policies missing from Vault. Defaults to 1m.
	ReconcileInterval time.Duration
	// QueueSize bounds the reader → processing queue. Defaults to 8192.
	QueueSize int
	// MaxLine bounds one audit line in bytes. Defaults to 64 MiB.
	MaxLine int
	// RotateGrace: how long a rotated-away audit file is still read after the new one appears (Vault
	// appends to it until it reopens on SIGHUP). Defaults to 30s.
	RotateGrace time.Duration
	// AuditDisableWait: how long the request entry of an audit device's disable waits for its
	// response before audit.device_disabled is sent from the request alone. Defaults to 5s.
	AuditDisableWait time.Duration
	// FlapDeletes is how many deletes of one referenced policy within FlapWindow make the guard stop
	// restoring it (and alert) instead of fighting whatever keeps deleting it: an IaC run or a
	// reconciler would otherwise get a restore, and everyone an event, every time, forever. The
	// FlapDeletes-th delete is not restored; writing the policy again resumes guarding. Defaults to
	// 5; -1 disables flap detection.
	FlapDeletes int
	// FlapWindow is the window of FlapDeletes. Defaults to 10m: a person who deletes a policy by
	// mistake and again after its restore stays well below 5, a tool running every few minutes
	// does not.
	FlapWindow time.Duration
	// VaultTokenFile is read for the token when set (a mounted Secret), instead of VAULT_TOKEN.
	VaultTokenFile string
	// KubernetesRole logs in with Vault's Kubernetes auth as this role when set (token renewed).
	KubernetesRole string
	// KubernetesMount is the Kubernetes auth mount for the login. Defaults to "kubernetes".
	KubernetesMount string
	// Events delivers every event (always logged) to NATS and Slack through an outbox in StateDir
	// (events.db): nothing lost across outages or guard restarts.
	Events events.DeliveryConfig
	// VaultLocalNode says VAULT_ADDR is the guard's own Vault node (the sidecar topology): the guard
	// then reconciles only while that node is the active one (WithActiveNodeOnly). Off by default.
	VaultLocalNode bool
	// Notifier, when set (tests, embedding), receives every event in place of the log; the
	// configured delivery (Events) gets them too. The same as webhook.Config.Notifier.
	Notifier events.Notifier
	// BlastRadius: events carry the Kubernetes blast radius (ESO stores → ExternalSecrets → Secrets
	// → workloads) in the cluster Kubeconfig finds. Off by default: events name only the Vault roles.
	BlastRadius bool
	// Kubeconfig finds that cluster the way the webhook's --kubeconfig does (internal/kube): a
	// path, "in-cluster", or "" for $KUBECONFIG, in-cluster, ~/.kube/config.
	Kubeconfig string
	// KubernetesJWTFile is the service account token for the login.
	// Defaults to /var/run/secrets/kubernetes.io/serviceaccount/token.
	KubernetesJWTFile string

	// DesiredPolicies is a directory of the IaC's policies, one per .hcl or .json file named after
	// the policy: the desired state (desired.go). A desired policy deleted is restored from its
	// desired body, and a write that changes its rules is policy.drifted. Unset by default.
	DesiredPolicies string
	// Terraform is a Terraform root module whose vault_policy resources are desired policies too
	// (read as `credchain check --terraform` reads them). Unset by default.
	Terraform string
	// DesiredPoll is how often the desired state's directories are fingerprinted, and reloaded when
	// they changed (a git-sync or ConfigMap swap). Defaults to 10s.
	DesiredPoll time.Duration
	// DesiredAuthoritative declares the desired state complete: a policy it does not define is not
	// restored when deleted, even when a role names it; the dangling reference is reported. Needs
	// DesiredPolicies or Terraform. Off by default.
	DesiredAuthoritative bool
	// CorrectDrift writes a drifted desired policy's desired body back. Needs DesiredPolicies or
	// Terraform. Off by default: drift is reported.
	CorrectDrift bool
	// ActiveWindow: a Kubernetes auth role that logged in within it (or that an ESO store uses,
	// with BlastRadius) is active; a deleted policy only inactive roles reference is reported, not
	// restored — once the guard has watched for a whole window (docs/auditguard.md). Defaults to
	// 30 days; negative turns the rule off (every role active; the flag's 0).
	ActiveWindow time.Duration
}

// SetDefaults fills zero fields with their documented defaults.
func (c *Config) SetDefaults() {
	if c.StateDir == "" {
		c.StateDir = "/var/lib/credchain"
	}
	if c.HealthAddr == "" {
		c.HealthAddr = ":8081"
	}
	c.setStateDefaults()
	if c.MetricsAddr == "" {
		c.MetricsAddr = ":8080"
	}
	if c.ResyncInterval == 0 {
		c.ResyncInterval = 5 * time.Minute
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = time.Minute
	}
	if c.QueueSize == 0 {
		c.QueueSize = 8192
	}
	if c.ListenMode == 0 {
		c.ListenMode = DefaultListenMode
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.LineBufferBytes == 0 {
		c.LineBufferBytes = DefaultLineBufferBytes
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.RotateGrace == 0 {
		c.RotateGrace = 30 * time.Second
	}
	if c.AuditDisableWait == 0 {
		c.AuditDisableWait = 5 * time.Second
	}
	if c.MaxLine == 0 {
		c.MaxLine = DefaultMaxLine
	}
	if c.FlapDeletes == 0 {
		c.FlapDeletes = 5
	}
	if c.FlapWindow == 0 {
		c.FlapWindow = 10 * time.Minute
	}
	if c.ActiveWindow == 0 {
		c.ActiveWindow = 30 * 24 * time.Hour
	}
	if c.DesiredPoll == 0 {
		c.DesiredPoll = 10 * time.Second
	}
	c.Events.SetDefaults()
	if c.KubernetesMount == "" {
		c.KubernetesMount = "kubernetes"
	}
	if c.KubernetesJWTFile == "" {
		c.KubernetesJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	}
}

// Validate reports every invalid field, joined: the audit sources, the guard's bounds and timings,
// Vault's login, the desired state, then the delivery of events, in that order.
func (c *Config) Validate() error {
	errs := c.validateSources()
	errs = append(errs, c.validateProcessing()...)
	errs = append(errs, c.validateVault()...)
	errs = append(errs, c.validateDesired()...)
	errs = append(errs, c.validateState()...)
	if err := c.Events.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateSources checks the audit sources: that there is one, the --listen values, who may
// connect to their unix sockets, and MaxConnections.
func (c *Config) validateSources() []error {
	var errs []error
	if len(c.Listen) == 0 && len(c.AuditFiles) == 0 {
		errs = append(errs, errors.New("no audit source: give --listen and/or --audit-file"))
	}
	unix := false
	for _, l := range c.Listen {
		network, _, err := ParseListen(l)
		if err != nil {
			errs = append(errs, err)
		}
		unix = unix || network == "unix"
	}
	switch m := c.ListenMode; {
	case m&^os.ModePerm != 0:
		errs = append(errs, fmt.Errorf("--listen-mode %#o: must be permission bits (at most 0777)", uint32(m)))
	case m&0o007 != 0:
		errs = append(errs, fmt.Errorf("--listen-mode %#o: must give others no access (anyone on the host could write audit lines); give Vault's group --listen-group and 0660", uint32(m)))
	case c.ListenGroup != "" && m&0o020 == 0:
		errs = append(errs, fmt.Errorf("--listen-mode %#o: --listen-group %s cannot connect without group write (0660)", uint32(m), c.ListenGroup))
	}
	if c.ListenGroup != "" {
		if !unix {
			errs = append(errs, fmt.Errorf("--listen-group %s: applies to unix:// sockets, and --listen gives none", c.ListenGroup))
		}
		if _, err := ResolveGroup(c.ListenGroup); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("--max-connections %d: must be at least 1", c.MaxConnections))
	}
	return errs
}

// validateProcessing checks what bounds the guard's memory and disk (buffers, queue, state
// directory, line length) and its timings (intervals, waits, flap detection).
func (c *Config) validateProcessing() []error {
	var errs []error
	if c.LineBufferBytes < int64(c.MaxLine) {
		errs = append(errs, fmt.Errorf("--line-buffer-bytes %d: must be at least --max-line (%d), or no line that long could be read", c.LineBufferBytes, c.MaxLine))
	}
	if c.QueueBytes < 1<<16 {
		errs = append(errs, fmt.Errorf("--queue-bytes %d: must be at least 65536", c.QueueBytes))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("--state-dir: must not be empty"))
	}
	if c.ResyncInterval <= 0 {
		errs = append(errs, fmt.Errorf("--resync-interval %s: must be positive", c.ResyncInterval))
	}
	if c.ReconcileInterval <= 0 {
		errs = append(errs, fmt.Errorf("--reconcile-interval %s: must be positive", c.ReconcileInterval))
	}
	if c.QueueSize <= 0 {
		errs = append(errs, fmt.Errorf("--queue-size %d: must be positive", c.QueueSize))
	}
	if c.RotateGrace <= 0 {
		errs = append(errs, fmt.Errorf("--audit-file-rotate-grace %s: must be positive", c.RotateGrace))
	}
	if c.AuditDisableWait <= 0 {
		errs = append(errs, fmt.Errorf("--audit-disable-wait %s: must be positive", c.AuditDisableWait))
	}
	if c.MaxLine < 1<<16 {
		errs = append(errs, fmt.Errorf("--max-line %d: must be at least 65536", c.MaxLine))
	}
	if c.FlapDeletes < -1 || c.FlapDeletes == 1 {
		errs = append(errs, fmt.Errorf("--flap-deletes %d: must be at least 2 (-1 disables)", c.FlapDeletes))
	}
	if c.FlapWindow <= 0 {
		errs = append(errs, fmt.Errorf("--flap-window %s: must be positive", c.FlapWindow))
	}
	return errs
}

// validateVault checks how the guard logs in to Vault: a token file or a Kubernetes auth role,
// not both.
func (c *Config) validateVault() []error {
	if c.VaultTokenFile != "" && c.KubernetesRole != "" {
		return []error{errors.New("--vault-token-file and --vault-k8s-role: give one")}
	}
	return nil
}

// validateDesired checks the desired state's flags. The directories are not required to exist: a
// git-sync sidecar may not have cloned yet, and until they load the guard restores from snapshots
// (reported as guard.desired_state_invalid).
func (c *Config) validateDesired() []error {
	var errs []error
	if c.DesiredPoll <= 0 {
		errs = append(errs, fmt.Errorf("--desired-poll %s: must be positive", c.DesiredPoll))
	}
	if c.DesiredPolicies != "" || c.Terraform != "" {
		return errs
	}
	if c.DesiredAuthoritative {
		errs = append(errs, errors.New("--desired-authoritative: needs the desired state, --desired-policies and/or --terraform"))
	}
	if c.CorrectDrift {
		errs = append(errs, errors.New("--correct-drift: needs the desired state, --desired-policies and/or --terraform"))
	}
	return errs
}

// The values of Config.State.
const (
	StateBBolt = "bbolt"
	StateNATS  = "nats"
)

func (c *Config) setStateDefaults() {
	if c.State == "" {
		c.State = StateBBolt
	}
	if c.StateBucket == "" {
		c.StateBucket = DefaultStateBucket
	}
	if c.StateReplicas == 0 {
		c.StateReplicas = 1
	}
	if c.ReplicaID == "" {
		c.ReplicaID = os.Getenv("POD_NAME")
	}
	if c.ReplicaID == "" {
		c.ReplicaID, _ = os.Hostname()
	}
	if c.LeaderTTL == 0 {
		c.LeaderTTL = DefaultLeaderTTL
	}
	if c.InventoryBucket == "" {
		c.InventoryBucket = inventory.DefaultBucket
	}
}

// validateState checks what the guard shares on NATS: the inventories need NATS and a bucket
// name; --state=nats needs NATS, a bucket name JetStream accepts, a replica ID and a lease long
// enough to renew.
func (c *Config) validateState() []error {
	var errs []error
	if c.Inventory && len(c.Events.NATS.URLs) == 0 {
		errs = append(errs, errors.New("--inventory: needs --nats-url (the inventories are a JetStream key-value bucket there)"))
	}
	if c.Inventory && !validBucket(c.InventoryBucket) {
		errs = append(errs, fmt.Errorf("--inventory-bucket %q: must be letters, digits, '-' and '_'", c.InventoryBucket))
	}
	return append(errs, c.validateSharedState()...)
}

// validateSharedState checks --state and, for nats, what it needs.
func (c *Config) validateSharedState() []error {
	switch c.State {
	case StateBBolt:
		return nil
	case StateNATS:
	default:
		return []error{fmt.Errorf("--state %q: must be %s or %s", c.State, StateBBolt, StateNATS)}
	}
	var errs []error
	if len(c.Events.NATS.URLs) == 0 {
		errs = append(errs, errors.New("--state=nats: needs --nats-url (the state is a JetStream key-value bucket there)"))
	}
	if !validBucket(c.StateBucket) {
		errs = append(errs, fmt.Errorf("--state-bucket %q: must be letters, digits, '-' and '_'", c.StateBucket))
	}
	if c.StateReplicas < 1 || c.StateReplicas > 5 {
		errs = append(errs, fmt.Errorf("--state-replicas %d: must be 1 to 5", c.StateReplicas))
	}
	if c.ReplicaID == "" {
		errs = append(errs, errors.New("--replica-id: must not be empty (set it, or POD_NAME)"))
	}
	if c.LeaderTTL < 3*time.Second {
		errs = append(errs, fmt.Errorf("--leader-ttl %s: must be at least 3s", c.LeaderTTL))
	}
	return errs
}

// validBucket reports whether name is a JetStream key-value bucket name.
func validBucket(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
