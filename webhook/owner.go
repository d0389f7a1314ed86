package webhook

import (
	"strings"

	js "github.com/credchain/credchain/internal/jsonscan"
)

// checkedControllers lists, for each kind a controller creates, the controllers (group/Kind) whose
// own pod template credchain checks when that controller is written. Objects they create are
// admitted without a second check: their template was checked (or left unchanged) on the owner,
// and denying them would stop scale-ups, node drains, evictions and self-healing of running
// workloads — during an incident, exactly when a failing ExternalSecret would trigger it. Objects
// created by any other controller (an operator's custom resource, say) are still checked, since
// nothing checked their owner's template.
var checkedControllers = map[string]map[string]bool{
	"Pod": {
		"apps/ReplicaSet": true, "apps/StatefulSet": true, "apps/DaemonSet": true,
		"batch/Job": true, "/ReplicationController": true,
	},
	"ReplicaSet": {"apps/Deployment": true},
	"Job":        {"batch/CronJob": true},
}

// createdByCheckedController reports whether the object's controller (the ownerReference with
// controller: true) is one of checkedControllers[kind]. Unreadable metadata reads as false: the
// object is then checked as usual.
func createdByCheckedController(kind string, raw []byte) bool {
	owners := checkedControllers[kind]
	if owners == nil {
		return false
	}
	found := false
	_ = js.Members(raw, func(k, v []byte) error {
		if !js.KeyIs(k, "metadata") {
			return nil
		}
		return js.Members(v, func(k, v []byte) error {
			if !js.KeyIs(k, "ownerReferences") {
				return nil
			}
			return js.Elements(v, func(e []byte) error {
				var apiVersion, ownerKind string
				controller := false
				if err := js.Members(e, func(k, v []byte) error {
					switch {
					case js.KeyIs(k, "apiVersion"):
						return js.String(v, &apiVersion)
					case js.KeyIs(k, "kind"):
						return js.String(v, &ownerKind)
					case js.KeyIs(k, "controller"):
						controller = strings.TrimSpace(string(v)) == "true"
					}
					return nil
				}); err != nil {
					return err
				}
				group, _, hasGroup := strings.Cut(apiVersion, "/")
				if !hasGroup {
					group = "" // "v1": the core group
				}
				if controller && owners[group+"/"+ownerKind] {
					found = true
				}
				return nil
			})
		})
	})
	return found
}
