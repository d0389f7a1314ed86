package chain

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// EventTime is when a Kubernetes Event last happened, whichever of the API's several timestamps is
// set: ESO reports a provider's real error (Vault's 403) only in its Warning events, and the newest
// one is the one that explains the ExternalSecret's state now.
func EventTime(ev *corev1.Event) time.Time {
	switch {
	case ev.Series != nil && !ev.Series.LastObservedTime.IsZero():
		return ev.Series.LastObservedTime.Time
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	default:
		return ev.CreationTimestamp.Time
	}
}
