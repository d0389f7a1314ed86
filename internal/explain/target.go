package explain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/credchain/credchain/internal/chain"
)

// KindExternalSecret is the one target kind that is not a workload: explain starts at it.
const KindExternalSecret = "ExternalSecret"

// Target is what to explain: a workload of chain.WorkloadKinds, or an ExternalSecret.
type Target struct {
	Kind, Namespace, Name string
}

func (t Target) String() string { return t.Kind + " " + t.Namespace + "/" + t.Name }

// kindNames are the names kubectl accepts for each kind (singular, plural, short), lower-case.
var kindNames = map[string][]string{
	"Deployment":            {"deployment", "deployments", "deploy"},
	"StatefulSet":           {"statefulset", "statefulsets", "sts"},
	"DaemonSet":             {"daemonset", "daemonsets", "ds"},
	"ReplicaSet":            {"replicaset", "replicasets", "rs"},
	"Job":                   {"job", "jobs"},
	"CronJob":               {"cronjob", "cronjobs", "cj"},
	"Pod":                   {"pod", "pods", "po"},
	"ReplicationController": {"replicationcontroller", "replicationcontrollers", "rc"},
	KindExternalSecret:      {"externalsecret", "externalsecrets", "es"},
}

// ParseTarget reads KIND/NAME as kubectl writes it ("deployment/order-service", "deploy/x",
// "externalsecret/x", a kind with its group: "deployments.apps/x") in namespace.
func ParseTarget(arg, namespace string) (Target, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok || kind == "" || name == "" || strings.Contains(name, "/") {
		return Target{}, fmt.Errorf("%q: want KIND/NAME, e.g. deployment/order-service or externalsecret/order-service-regcred", arg)
	}
	kindText, group := kind, ""
	if k, g, ok := strings.Cut(kind, "."); ok {
		kind, group = k, g
	}
	k := kindOf(strings.ToLower(kind))
	if k == "" || !groupFits(k, group) {
		return Target{}, fmt.Errorf("%q: explain does not know kind %q; give one of %s", arg, kindText, knownKinds())
	}
	return Target{Kind: k, Namespace: namespace, Name: name}, nil
}

func kindOf(lower string) string {
	for k, names := range kindNames {
		if slices.Contains(names, lower) {
			return k
		}
	}
	return ""
}

// kindGroups are the API groups of the kinds that have one (Pod and ReplicationController are core).
var kindGroups = map[string]string{"Deployment": "apps", "StatefulSet": "apps", "DaemonSet": "apps", "ReplicaSet": "apps",
	"Job": "batch", "CronJob": "batch", KindExternalSecret: chain.ESOGroup}

// groupFits accepts a kind written with its API group, as kubectl does: "deployments.apps" or,
// with the version, "deployments.v1.apps".
func groupFits(kind, group string) bool {
	if group == "" {
		return true
	}
	if v, rest, ok := strings.Cut(group, "."); ok && len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		group = rest
	}
	return kindGroups[kind] == group
}

func knownKinds() string {
	var out []string
	for k := range kindNames {
		out = append(out, strings.ToLower(k))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
