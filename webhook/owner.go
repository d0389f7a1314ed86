package webhook

import (
	"slices"
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

// KubeControllerManager is the identity of kube-controller-manager when it runs without
// --use-service-account-credentials: then every built-in controller writes as this user.
const KubeControllerManager = "system:kube-controller-manager"

// controllerAccounts are, for each controller of checkedControllers, the ServiceAccount (in
// kube-system) it writes as when kube-controller-manager runs with --use-service-account-credentials,
// the default of kubeadm and most distributions.
var controllerAccounts = map[string]string{
	"apps/ReplicaSet":        "replicaset-controller",
	"apps/StatefulSet":       "statefulset-controller",
	"apps/DaemonSet":         "daemon-set-controller",
	"batch/Job":              "job-controller",
	"/ReplicationController": "replication-controller",
	"apps/Deployment":        "deployment-controller",
	"batch/CronJob":          "cronjob-controller",
}

// controllerUser reports whether username is the identity the controller owner (group/Kind)
// writes as.
func controllerUser(owner, username string) bool {
	sa, ok := controllerAccounts[owner]
	return ok && (username == KubeControllerManager || username == "system:serviceaccount:kube-system:"+sa)
}

// ControllerUsernames are the identities of the built-in controllers whose objects are admitted
// without a check, sorted; the registration's matchConditions skip them (MatchConditionExpression).
func ControllerUsernames() []string {
	out := []string{KubeControllerManager}
	for _, sa := range controllerAccounts {
		out = append(out, "system:serviceaccount:kube-system:"+sa)
	}
	slices.Sort(out)
	return out
}

// NodeUserPrefix starts every kubelet's username; a kubelet creates only mirror pods of static
// pods (the NodeRestriction admission plugin allows nothing else), which credchain never checks.
const NodeUserPrefix = "system:node:"

// MatchConditionExpression is the CEL of the registration's matchConditions: the API server does
// not call the webhook for the built-in controllers and the kubelet at all, so a credchain outage
// under failurePolicy Fail never stops a ReplicaSet, DaemonSet, Job or StatefulSet from creating
// pods, nor a node from registering its static pods. manifests/ carry this exact expression
// (TestRegistrationSkipsControllers keeps them equal).
func MatchConditionExpression() string {
	quoted := make([]string, 0, len(controllerAccounts)+1)
	for _, u := range ControllerUsernames() {
		quoted = append(quoted, "'"+u+"'")
	}
	return "!(request.userInfo.username in [" + strings.Join(quoted, ", ") + "]) && !request.userInfo.username.startsWith('" + NodeUserPrefix + "')"
}

// createdByCheckedController reports whether the object's controller (the ownerReference with
// controller: true) is one of checkedControllers[kind] and the request comes from that
// controller's own identity. The API server does not verify ownerReferences, so an object alone
// never proves who made it: a hand-written controller reference on a bare Pod is checked as usual.
// Unreadable metadata reads as false.
func createdByCheckedController(kind string, raw []byte, username string) bool {
	owners := checkedControllers[kind]
	if owners == nil || (username != KubeControllerManager && !strings.HasPrefix(username, "system:serviceaccount:kube-system:")) {
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
				if owner := group + "/" + ownerKind; controller && owners[owner] && controllerUser(owner, username) {
					found = true
				}
				return nil
			})
		})
	})
	return found
}
