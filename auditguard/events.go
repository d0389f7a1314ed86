package auditguard

import "github.com/credchain/credchain/internal/events"

// The guard's events use the one schema in internal/events (docs/events.md).
type (
	Event        = events.Event
	Actor        = events.Actor
	RoleRef      = events.RoleRef
	Notifier     = events.Notifier
	NotifierFunc = events.NotifierFunc
	LogNotifier  = events.LogNotifier
	// SnapshotMeta records when and from whom a snapshot's version came.
	SnapshotMeta = events.Provenance
)

// Event types the guard emits.
const (
	EventAPIVersion          = events.APIVersion
	EventPolicyDeleted       = events.PolicyDeleted
	EventPolicyRestored      = events.PolicyRestored
	EventPolicyRestoreFailed = events.PolicyRestoreFailed
	EventDanglingReference   = events.DanglingReference
	EventAuditDisabled       = events.AuditDisabled
	EventAuditGuardOnly      = events.AuditGuardOnly
	EventMountDisabled       = events.AuthMountDisabled
	EventMountMoved          = events.AuthMountMoved
	EventMountUnreadable     = events.AuthMountUnreadable
)
