// Package events is the one event schema credchain emits (docs/events.md), the Notifier interface,
// and durable delivery: an on-disk outbox and the NATS sink.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-logr/logr"
)

// APIVersion versions the event schema (docs/events.md). Consumers must ignore unknown fields.
const APIVersion = "events.credchain.io/v1alpha1"

// Event types the guard emits.
const (
	PolicyDeleted       = "policy.deleted"
	PolicyRestored      = "policy.restored"
	PolicyRestoreFailed = "policy.restore_failed"
	DanglingReference   = "policy.dangling_reference"
	AuditDisabled       = "audit.device_disabled"
	// AuditGuardOnly: every audit device enabled in Vault is a socket device (the guard's among
	// them). Vault refuses a request no device can record, so a guard that is down, or a network
	// path to it that is cut, then stops Vault; sent once each time Vault gets into that state.
	AuditGuardOnly = "audit.guard_only_device"
	// AuthMountDisabled: a Kubernetes auth mount was disabled, and every role on it with it.
	AuthMountDisabled = "auth.mount_disabled"
	// AuthMountMoved: a Kubernetes auth mount was moved (sys/remount); Vault revokes the tokens it
	// issued, and stores still configured with the old path cannot log in.
	AuthMountMoved = "auth.mount_moved"
	// AuthMountUnreadable: the guard cannot read one Kubernetes auth mount's roles (its policy does
	// not cover a nested mount, say); it goes on guarding the others.
	AuthMountUnreadable = "guard.auth_mount_unreadable"
	// PolicyDrifted: a policy the guard's desired state (--desired-policies, --terraform) defines
	// differs from its desired body in its ACL rules (Drift says how); with --correct-drift the
	// guard wrote the desired body back (Action "corrected").
	PolicyDrifted = "policy.drifted"
	// PolicyWeakened: a write to a policy a Kubernetes auth role references took away access a
	// request ESO makes for an ExternalSecret needs (Lost says which): allowed by the role's
	// policies before the write, not after. The blast radius is that of those ExternalSecrets
	// only. Rule is RuleIaC when the desired state defines the policy (its drift handling acts:
	// Action "corrected" with --correct-drift), else RuleSnapshot (the body before the write is
	// the guard's snapshot; nothing is written back).
	PolicyWeakened = "policy.weakened"
	// DesiredStateInvalid: the desired state's directory does not load (a syntax error, a policy
	// Vault would refuse, a name defined twice); the guard keeps acting on the last one that did.
	DesiredStateInvalid = "guard.desired_state_invalid"
	AdmissionDenied     = "admission.denied"
	AdmissionWarned     = "admission.warned"
)

// Event is one thing the guard saw or did. It never carries tokens, accessors or HMACs.
type Event struct {
	APIVersion string `json:"apiVersion"`
	// ID identifies the event across retries (it is the NATS message ID, so JetStream drops a
	// re-sent duplicate). Assigned when the event enters the outbox.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Cluster is the installation that emitted the event (--cluster).
	Cluster string `json:"cluster,omitempty"`
	// Vault is the address of the Vault the guard watches.
	Vault string `json:"vault,omitempty"`
	// Namespace is the Vault Enterprise namespace path ("" for root).
	Namespace string `json:"namespace,omitempty"`
	// Policy is the policy concerned (lower-cased, as Vault stores it).
	Policy string `json:"policy,omitempty"`
	// Object names what the event is about when it is not a policy (an audit device path).
	Object string `json:"object,omitempty"`
	// Actor is who did it, from the audit entry; nil when the guard found it by reconcile.
	Actor *Actor `json:"actor,omitempty"`
	// Roles are the Kubernetes auth roles that reference Policy: what would have broken.
	Roles []RoleRef `json:"roles,omitempty"`
	// BlastRadius is what depends on Roles in Kubernetes: the ESO stores that log in with them, the
	// ExternalSecrets using those stores, the Secrets they write and the workloads pulling with them.
	// Set when the guard is given a cluster (--blast-radius).
	BlastRadius *BlastRadius `json:"blastRadius,omitempty"`
	// Workload is the object an admission event is about.
	Workload *ObjectRef `json:"workload,omitempty"`
	// Reason is the machine-readable cause of an admission event (not_synced, unmanaged, ...).
	Reason string `json:"reason,omitempty"`
	// Action is what the guard did: "restored", "recorded", "none".
	Action string `json:"action,omitempty"`
	// RestoreLatencyMS is from the audit entry's arrival to the restore write returning.
	RestoreLatencyMS float64 `json:"restoreLatencyMs,omitempty"`
	// SnapshotFrom says where the restored body came from.
	SnapshotFrom *Provenance `json:"snapshotFrom,omitempty"`
	// Rule is which of the guard's rules decided what it did about a policy: RuleIaC,
	// RuleAuthoritative, RuleActiveRole, RuleInactiveRole or RuleSnapshot (docs/auditguard.md's
	// decision table).
	Rule string `json:"rule,omitempty"`
	// Active is, for RuleActiveRole, the role that made the policy worth restoring and why it
	// counts as active.
	Active *ActiveRole `json:"active,omitempty"`
	// Drift is, for policy.drifted, how the policy in Vault differs from its desired body.
	Drift *Drift `json:"drift,omitempty"`
	// Lost is, for policy.weakened, each request ESO makes that the write took away.
	Lost []LostAccess `json:"lost,omitempty"`
	// Message is one human sentence.
	Message string `json:"message"`
	// Explain are the commands that walk the chain of the workloads the event is about (its
	// Workload, else the first three of its blast radius), link by link: `credchain explain
	// deployment/order-service -n prod`. Derived when the event is queued or logged.
	Explain []string `json:"explain,omitempty"`
	// Error is set for failures.
	Error string `json:"error,omitempty"`
	// Truncated lists the fields Cap shortened to fit its caps ("message", "workload.name",
	// "blastRadius.workloads", ...): the event is incomplete there, the full text is in the
	// component's own log of the decision, if anywhere.
	Truncated []string `json:"truncated,omitempty"`
}

// The rules that decide what the guard does about a policy (Event.Rule).
const (
	// RuleIaC: the desired state defines the policy; its desired body is what Vault must hold.
	RuleIaC = "iac"
	// RuleAuthoritative: the desired state is complete (--desired-authoritative) and does not
	// define the policy, so its delete was meant and is not undone.
	RuleAuthoritative = "iac-authoritative"
	// RuleSnapshot: the desired state says nothing about the policy; the guard's snapshot of it
	// (the last body it read from Vault) is what it restores.
	RuleSnapshot = "snapshot"
	// RuleInactiveRole: only inactive Kubernetes auth roles reference the policy (no ESO store
	// uses them and none logged in within --active-window): its delete was a cleanup, left alone.
	RuleInactiveRole = "inactive-role"
	// RuleActiveRole: the desired state says nothing about the policy and an active Kubernetes
	// auth role references it (Event.Active says which and why): the guard's snapshot is what it
	// restores. RuleSnapshot instead when the active-role rule is off (--active-window 0).
	RuleActiveRole = "active-role"
)

// ActiveRole is why a role counts as active (issue 15 item 2): an ESO store logs in with it, it
// logged in within the window, or the guard has not watched a whole window yet and cannot tell.
type ActiveRole struct {
	Role RoleRef `json:"role"`
	// Why is ActiveByStore, ActiveByLogin or ActiveUnwatched.
	Why string `json:"why"`
	// Store is, for ActiveByStore, the ESO store that logs in with the role ("SecretStore
	// prod/vault-backend", "ClusterSecretStore vault").
	Store string `json:"store,omitempty"`
	// LastLogin is, for ActiveByLogin, the role's last login the guard saw.
	LastLogin *time.Time `json:"lastLogin,omitempty"`
	// Since is, for ActiveUnwatched, when the guard started watching logins.
	Since *time.Time `json:"since,omitempty"`
}

// Why a role is active (ActiveRole.Why).
const (
	ActiveByStore   = "store"
	ActiveByLogin   = "login"
	ActiveUnwatched = "unwatched"
)

// String is the reason as a clause: "auth/kubernetes/role/eso is active: ESO store SecretStore
// prod/vault-backend logs in with it".
func (a ActiveRole) String() string {
	role := "auth/" + a.Role.Mount + "/role/" + a.Role.Name + " is active: "
	switch a.Why {
	case ActiveByStore:
		return role + "ESO store " + a.Store + " logs in with it"
	case ActiveByLogin:
		if a.LastLogin != nil {
			return role + "it last logged in at " + a.LastLogin.UTC().Format(time.RFC3339)
		}
		return role + "it logged in recently"
	case ActiveUnwatched:
		if a.Since != nil {
			return role + "the guard has watched logins only since " + a.Since.UTC().Format(time.RFC3339) + ", less than a whole window"
		}
		return role + "the guard has not watched logins for a whole window"
	}
	return role + a.Why
}

// Drift is how a policy in Vault differs from its desired body, compared as ACL rules (a rule is
// its path and kind; what it grants is its capabilities and restrictions), so formatting,
// comments and the order of rules are no drift.
type Drift struct {
	// Added are rules Vault's policy has and the desired body does not.
	Added []RuleChange `json:"added,omitempty"`
	// Removed are rules the desired body has and Vault's policy does not.
	Removed []RuleChange `json:"removed,omitempty"`
	// Changed are rules both have that grant differently.
	Changed []RuleChange `json:"changed,omitempty"`
}

// RuleChange is one rule of a Drift: its path as written, and what it grants in the desired body
// and in Vault ("read, list"; restrictions after a ";"), empty on the side that lacks it.
type RuleChange struct {
	Path    string `json:"path"`
	Desired string `json:"desired,omitempty"`
	Vault   string `json:"vault,omitempty"`
}

// LostAccess is one request ESO makes for an ExternalSecret that a policy write took away: the
// policies of the role its store logs in with allowed it before the write and do not after.
type LostAccess struct {
	ExternalSecret ObjectRef `json:"externalSecret"`
	// Role is the Kubernetes auth role the ExternalSecret's store logs in with.
	Role RoleRef `json:"role"`
	// Path is the Vault API path ESO requests, Capability what it needs there ("read", "list").
	Path       string `json:"path"`
	Capability string `json:"capability"`
	// Why is the spec field the request comes from: `spec.data[0].remoteRef.key "order-service"`.
	Why string `json:"why,omitempty"`
}

// Actor is the person or machine behind an audited request; only plain audit fields.
type Actor struct {
	DisplayName   string `json:"displayName,omitempty"`
	EntityID      string `json:"entityId,omitempty"`
	RemoteAddress string `json:"remoteAddress,omitempty"`
	// AuthMount is how the actor logs in: the auth mount path(s) of its identity entity's aliases
	// (e.g. "auth/userpass/"); empty for tokens without an entity, such as root tokens.
	AuthMount string `json:"authMount,omitempty"`
	// Metadata is the token's auth metadata as Vault logs it in plain text (e.g. username for
	// userpass; role, service_account_name and service_account_namespace for kubernetes).
	Metadata  map[string]string `json:"metadata,omitempty"`
	RequestID string            `json:"requestId,omitempty"`
	Operation string            `json:"operation,omitempty"`
	Path      string            `json:"path,omitempty"`
	// Source says where these fields come from, so nobody reads a claim as proof:
	// ActorFromAuditEntry or ActorFromAdmission.
	Source string `json:"source,omitempty"`
}

// Actor sources.
const (
	// ActorFromAuditEntry: the actor is as the audit entry names it. The guard reads entries from
	// a socket or a file that anyone able to reach them can write to; it confirms the change
	// itself by reading Vault before acting, but it cannot confirm who made it.
	ActorFromAuditEntry = "audit-entry"
	// ActorFromAdmission: the user the Kubernetes API server authenticated and sent to the
	// webhook.
	ActorFromAdmission = "admission-request"
)

// RoleRef is one Kubernetes auth role.
type RoleRef struct {
	Mount string `json:"mount"`
	Name  string `json:"name"`
}

// Notifier receives events. Implementations must be safe for concurrent use; Notify must not block
// the guard for long (the NATS and Slack notifiers queue to an outbox).
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// LogNotifier writes each event as one structured log line, capped like the outbox's copy (Cap):
// a multi-MB name must not make a multi-MB log line.
type LogNotifier struct{ Log logr.Logger }

var _ Notifier = LogNotifier{}

// Notify implements Notifier.
func (n LogNotifier) Notify(_ context.Context, e Event) error {
	e = withExplain(Cap(e))
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	n.Log.Info("event", "type", e.Type, "event", json.RawMessage(b))
	return nil
}

// NotifierFunc adapts a function.
type NotifierFunc func(context.Context, Event) error

// Notify implements Notifier.
func (f NotifierFunc) Notify(ctx context.Context, e Event) error { return f(ctx, e) }

// Provenance records when and from whom a restored policy body came.
type Provenance struct {
	// ReadAt is when the guard read this body from Vault.
	ReadAt time.Time `json:"readAt"`
	// Source is "startup", "resync" or "audit" (re-read after a write seen in the stream), or
	// "iac" for a desired body (ReadAt is then when the desired state was loaded).
	Source string `json:"source"`
	// Origin is where a desired body is defined: the policy file, or the Terraform resource's
	// address and file:line ("vault_policy.eso_order_service (infra/main.tf:12)").
	Origin string `json:"origin,omitempty"`
	// Writer is who wrote this version, when it was seen in the audit stream.
	Writer *Actor `json:"writer,omitempty"`
}

// String names an actor for a human: display name, entity and address.
func (a *Actor) String() string {
	if a == nil {
		return "unknown"
	}
	s := a.DisplayName
	if s == "" {
		s = "an unnamed token"
	}
	if a.EntityID != "" {
		s += " (entity " + a.EntityID + ")"
	}
	if a.RemoteAddress != "" {
		s += " from " + a.RemoteAddress
	}
	return s
}

// Multi notifies every notifier in order and joins their errors.
type Multi []Notifier

var _ Notifier = Multi(nil)

// Notify implements Notifier.
func (m Multi) Notify(ctx context.Context, e Event) error {
	var errs []error
	for _, n := range m {
		if err := n.Notify(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// BlastRadius lists the Kubernetes objects downstream of a Vault role, in dependency order.
type BlastRadius struct {
	Stores          []ObjectRef `json:"stores,omitempty"`
	ExternalSecrets []ObjectRef `json:"externalSecrets,omitempty"`
	Secrets         []ObjectRef `json:"secrets,omitempty"`
	Workloads       []ObjectRef `json:"workloads,omitempty"`
}

// InCluster is a copy of br with every entry naming cluster (br is left as it is).
func (br BlastRadius) InCluster(cluster string) *BlastRadius {
	set := func(refs []ObjectRef) []ObjectRef {
		if len(refs) == 0 {
			return nil
		}
		out := make([]ObjectRef, len(refs))
		for i, r := range refs {
			r.Cluster = cluster
			out[i] = r
		}
		return out
	}
	return &BlastRadius{Stores: set(br.Stores), ExternalSecrets: set(br.ExternalSecrets), Secrets: set(br.Secrets), Workloads: set(br.Workloads)}
}

// ObjectRef names a Kubernetes object.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Cluster is the cluster the object is in, when the guard knows it from the clusters'
	// inventories (internal/inventory); empty for the guard's own cluster and in admission events.
	Cluster string `json:"cluster,omitempty"`
}

// String is kind namespace/name.
func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}
