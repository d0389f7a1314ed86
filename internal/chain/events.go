package chain

import "github.com/credchain/credchain/internal/events"

// The chain model as events carry it: the guard's blast radius and each cluster's inventory are
// both an Impact, sent as events.BlastRadius.

// BlastRadius is im as an event's blast radius.
func (im Impact) BlastRadius() events.BlastRadius {
	return events.BlastRadius{Stores: ObjectRefs(im.Stores), ExternalSecrets: ObjectRefs(im.ExternalSecrets),
		Secrets: ObjectRefs(im.Secrets), Workloads: ObjectRefs(im.Workloads)}
}

// ObjectRefs is refs as events name objects; nil for none.
func ObjectRefs(refs []Ref) []events.ObjectRef {
	if len(refs) == 0 {
		return nil
	}
	out := make([]events.ObjectRef, len(refs))
	for i, r := range refs {
		out[i] = events.ObjectRef{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
	}
	return out
}
