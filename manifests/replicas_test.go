package manifests

import (
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/testenv"
)

// replicaValues are the chart values manifests/replicas stands for (its kustomization.yaml says so).
var replicaValues = []string{
	"auditguard.replicas=2", "auditguard.state=nats", "nats.urls={nats://nats.nats.svc:4222}",
	"auditguard.nats.credsSecret=credchain-auditguard-nats", "webhook.nats.credsSecret=credchain-webhook-nats",
	"inventory.publish=true", "inventory.read=true", "webhook.cluster=cluster-1", "auditguard.cluster=cluster-1",
}

var (
	guardDeployment = objectKey{"apps/v1", "Deployment", "credchain-system", "credchain-auditguard"}
	guardPDB        = objectKey{"policy/v1", "PodDisruptionBudget", "credchain-system", "credchain-auditguard"}
	guardPVC        = objectKey{"v1", "PersistentVolumeClaim", "credchain-system", "credchain-auditguard-state"}
	guardService    = objectKey{"v1", "Service", "credchain-system", "credchain-auditguard"}
	webhookDeploy   = objectKey{"apps/v1", "Deployment", "credchain-system", "credchain-webhook"}
)

// TestReplicasChartRendersKustomize keeps the replicas variant's two installs from drifting, as
// TestChartRendersKustomize does for the others.
func TestReplicasChartRendersKustomize(t *testing.T) {
	t.Parallel()
	if err := sameObjects(helmTemplate(t, "credchain-system", replicaValues...), kustomize(t, "replicas")); err != nil {
		t.Errorf("helm template %v differs from kustomize replicas:\n%v", replicaValues, err)
	}
}

// TestReplicasRender: both installs of two guard replicas on NATS render what replicas need — two
// replicas on shared state in NATS (no volume to re-attach), each named by its pod, spread over
// nodes, one kept through drains, rolled without a gap, and Vault's Service publishing only Ready
// replicas; the webhook publishes its cluster's inventory.
func TestReplicasRender(t *testing.T) {
	t.Parallel()
	for name, render := range map[string]func(t *testing.T) []byte{
		"chart":               func(t *testing.T) []byte { return helmTemplate(t, "credchain-system", replicaValues...) },
		"kustomize replicas/": func(t *testing.T) []byte { return kustomize(t, "replicas") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			objs, err := parseObjects(render(t))
			if err != nil {
				t.Fatal(err)
			}
			guard, ok := objs[guardDeployment]
			if !ok {
				t.Fatalf("%s not rendered", guardDeployment)
			}
			for path, want := range map[string]any{
				"spec.replicas":      2.0,
				"spec.strategy.type": "RollingUpdate",
				"spec.strategy.rollingUpdate.maxUnavailable": 0.0,
				"spec.template.spec.containers.0.env.0":      map[string]any{"name": "POD_NAME", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.name"}}},
				"spec.template.spec.volumes.0":               map[string]any{"name": "state", "emptyDir": map[string]any{}},
				"spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.0": map[string]any{"weight": 100.0, "podAffinityTerm": map[string]any{"topologyKey": "kubernetes.io/hostname", "labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "credchain-auditguard"}}}},
				"spec.template.spec.volumes.1.secret.secretName":                                                "credchain-auditguard-nats",
			} {
				if got := field(guard, path); !reflect.DeepEqual(got, want) {
					t.Errorf("%s %s = %#v, want %#v", guardDeployment, path, got, want)
				}
			}
			args := strings.Join(stringList(field(guard, "spec.template.spec.containers.0.args")), " ")
			for _, want := range []string{"--state-dir=/var/lib/credchain", "--state=nats", "--inventory", "--cluster=cluster-1",
				"--nats-url=nats://nats.nats.svc:4222", "--nats-creds=/etc/credchain/nats-creds/nats.creds"} {
				if !slices.Contains(strings.Fields(args), want) {
					t.Errorf("guard args %s lack %s", args, want)
				}
			}
			if _, ok := objs[guardPVC]; ok {
				t.Errorf("%s rendered: with state in NATS a claim only pins a replica to a volume", guardPVC)
			}
			pdb := objs[guardPDB]
			if got := field(pdb, "spec.minAvailable"); got != 1.0 {
				t.Errorf("%s spec.minAvailable = %v, want 1", guardPDB, got)
			}
			if got := field(pdb, "spec.selector.matchLabels"); !reflect.DeepEqual(got, map[string]any{"app.kubernetes.io/name": "credchain-auditguard"}) {
				t.Errorf("%s selects %v, not the guard's pods", guardPDB, got)
			}
			if v, ok := field(objs[guardService], "spec").(map[string]any)["publishNotReadyAddresses"]; ok && v != false {
				t.Errorf("%s publishes not-ready replicas: Vault's socket device would dial a replica that cannot take it", guardService)
			}
			webhookArgs := stringList(field(objs[webhookDeploy], "spec.template.spec.containers.0.args"))
			for _, want := range []string{"--inventory-publish", "--cluster=cluster-1", "--nats-creds=/etc/credchain/nats-creds/nats.creds"} {
				if !slices.Contains(webhookArgs, want) {
					t.Errorf("webhook args %v lack %s", webhookArgs, want)
				}
			}
		})
	}
}

// stringList is a rendered list of strings (args), nil when v is none.
func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// TestChartReplicaValues checks the values of the NATS state and the inventories one by one: each
// renders its flag only when set (the commands' own defaults apply otherwise), and a replica count
// of 1 on NATS needs neither a PodDisruptionBudget nor a spread.
func TestChartReplicaValues(t *testing.T) {
	t.Parallel()
	onNATS := []string{"auditguard.state=nats", "nats.urls={nats://nats.nats.svc:4222}"}
	guardArgs := "spec.template.spec.containers.0.args"
	for name, tc := range map[string]struct {
		set      []string
		guard    map[string]any // field path → value
		webhook  map[string]any
		args     []string // in the guard's args, in this order
		hookArgs []string // in the webhook's args, in this order
		pdb      bool
	}{
		"one replica on NATS: no claim, no PDB, no spread, rolling": {set: onNATS,
			guard: map[string]any{"spec.replicas": 1.0, "spec.strategy.type": "RollingUpdate", "spec.template.spec.affinity": nil,
				"spec.template.spec.volumes.0.emptyDir": map[string]any{}},
			args: []string{"--state=nats", "--nats-url=nats://nats.nats.svc:4222"}},
		"bucket, JetStream replicas and lease TTL": {set: append([]string{"auditguard.replicas=3", "auditguard.stateBucket=guard-eu",
			"auditguard.stateReplicas=3", "auditguard.leaderTTL=30s"}, onNATS...),
			guard: map[string]any{"spec.replicas": 3.0}, pdb: true,
			args: []string{"--state=nats", "--state-bucket=guard-eu", "--state-replicas=3", "--leader-ttl=30s"}},
		"state flags render only with state nats": {set: []string{"auditguard.stateBucket=guard-eu", "auditguard.leaderTTL=30s"},
			guard: map[string]any{"spec.strategy.type": "Recreate", guardArgs: []any{"auditguard", "--listen=tcp://0.0.0.0:9090",
				"--state-dir=/var/lib/credchain", "--blast-radius", "--vault-k8s-role=credchain-auditguard"}}},
		"inventory: the webhook publishes, the guard reads": {set: append([]string{"inventory.publish=true", "inventory.read=true",
			"inventory.bucket=inv", "inventory.ttl=2m", "inventory.replicas=3", "webhook.cluster=prod-eu"}, onNATS...),
			args:     []string{"--inventory", "--inventory-bucket=inv", "--nats-url=nats://nats.nats.svc:4222"},
			hookArgs: []string{"--cluster=prod-eu", "--nats-url=nats://nats.nats.svc:4222", "--inventory-publish", "--inventory-bucket=inv", "--inventory-ttl=2m", "--inventory-replicas=3"}},
		"a component's own NATS block wins over the shared one": {set: append([]string{"auditguard.nats.urls={nats://guard:4222}",
			"auditguard.nats.credsFile=/x/creds", "auditguard.nats.credsSecret=ignored", "auditguard.nats.caFile=/x/ca", "nats.caSecret=nats-ca"}, onNATS...),
			guard: map[string]any{"spec.template.spec.volumes.1": nil},
			args:  []string{"--nats-url=nats://guard:4222", "--nats-creds=/x/creds", "--nats-ca=/x/ca"},
			// The webhook has no NATS of its own: it takes the shared URLs and CA.
			hookArgs: []string{"--nats-url=nats://nats.nats.svc:4222", "--nats-ca=/etc/credchain/nats-ca/ca.crt"},
			webhook:  map[string]any{"spec.template.spec.volumes.2.secret.secretName": "nats-ca", "spec.template.spec.containers.0.volumeMounts.2.mountPath": "/etc/credchain/nats-ca"}},
		"an nkey user's seed from a Secret (docs/scale.md's nats-server users)": {set: append([]string{"auditguard.nats.nkeySeedSecret=guard-nkey"}, onNATS...),
			guard: map[string]any{"spec.template.spec.volumes.1": map[string]any{"name": "nats-nkey", "secret": map[string]any{"secretName": "guard-nkey"}},
				"spec.template.spec.containers.0.volumeMounts.1.mountPath": "/etc/credchain/nats-nkey"},
			args: []string{"--state=nats", "--nats-url=nats://nats.nats.svc:4222", "--nats-nkey-seed=/etc/credchain/nats-nkey/nkey.seed"}},
		"own affinity and a zone spread replace the default anti-affinity": {set: append([]string{"auditguard.replicas=2",
			`json:auditguard.affinity={"nodeAffinity":{}}`,
			`json:auditguard.topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway"}]`}, onNATS...),
			pdb: true,
			guard: map[string]any{"spec.template.spec.affinity": map[string]any{"nodeAffinity": map[string]any{}},
				"spec.template.spec.topologySpreadConstraints.0.topologyKey": "topology.kubernetes.io/zone"}},
		"PDB off": {set: append([]string{"auditguard.replicas=2", "auditguard.podDisruptionBudget.enabled=false"}, onNATS...)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			objs, err := parseObjects(helmTemplate(t, "credchain-system", tc.set...))
			if err != nil {
				t.Fatal(err)
			}
			for obj, fields := range map[objectKey]map[string]any{guardDeployment: tc.guard, webhookDeploy: tc.webhook} {
				for path, want := range fields {
					if got := field(objs[obj], path); !reflect.DeepEqual(got, want) {
						t.Errorf("%s %s = %#v, want %#v", obj, path, got, want)
					}
				}
			}
			if got := stringList(field(objs[guardDeployment], guardArgs)); !inOrder(got, tc.args) {
				t.Errorf("guard args %v, want %v among them in this order", got, tc.args)
			}
			if got := stringList(field(objs[webhookDeploy], guardArgs)); !inOrder(got, tc.hookArgs) {
				t.Errorf("webhook args %v, want %v among them in this order", got, tc.hookArgs)
			}
			if _, ok := objs[guardPDB]; ok != tc.pdb {
				t.Errorf("%s rendered: %v, want %v", guardPDB, ok, tc.pdb)
			}
		})
	}
}

// inOrder reports whether want is a subsequence of got.
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestChartRejectsReplicaValues: the values that would render a guard restoring from the wrong state
// fail the render, saying what to set. values.schema.json catches the replica count first (helm
// validates before it renders), naming the value; the template's fail explains why, for renders
// that skip the schema.
func TestChartRejectsReplicaValues(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		set        []string
		skipSchema bool
		want       string
	}{
		"two replicas on bbolt, schema": {set: []string{"auditguard.replicas=2"}, want: "at '/auditguard/state': value must be 'nats'"},
		"two replicas on bbolt, template": {set: []string{"auditguard.replicas=2"}, skipSchema: true,
			want: "auditguard.replicas=2 needs auditguard.state=nats: with state bbolt every replica would keep its own snapshot store"},
		"an unknown state":                         {set: []string{"auditguard.state=jetstream"}, want: "/auditguard/state"},
		"state nats without NATS":                  {set: []string{"auditguard.state=nats"}, want: "auditguard.state=nats and inventory.read need NATS: set nats.urls"},
		"inventory read without NATS":              {set: []string{"inventory.read=true"}, want: "need NATS: set nats.urls"},
		"inventory publish without NATS":           {set: []string{"inventory.publish=true", "webhook.cluster=a"}, want: "inventory.publish needs NATS"},
		"inventory publish without a name":         {set: []string{"inventory.publish=true", "nats.urls={nats://n:4222}"}, want: "inventory.publish needs webhook.cluster"},
		"a bucket name NATS refuses":               {set: []string{"auditguard.stateBucket=guard.eu"}, want: "/auditguard/stateBucket"},
		"more JetStream replicas than NATS allows": {set: []string{"inventory.replicas=7"}, want: "/inventory/replicas"},
		"a typo under inventory":                   {set: []string{"inventory.reads=true"}, want: "/inventory"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := []string{"template", "credchain", chart}
			if tc.skipSchema {
				args = append(args, "--skip-schema-validation")
			}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(testenv.Helm(t), args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("%v: want an error containing %q, got %v:\n%.800s", tc.set, tc.want, err, out)
			}
		})
	}
}

// TestReplicasApply applies the replicas variant, kustomize's and the chart's with every NATS value
// set, server-side to a real API server: the PodDisruptionBudget, the downward-API env and the
// rolling strategy pass the real schema validation.
func TestReplicasApply(t *testing.T) {
	kubeconfig, _ := apiServer(t)
	everything := append(slices.Clone(replicaValues), "auditguard.stateBucket=guard-eu", "auditguard.stateReplicas=3",
		"auditguard.leaderTTL=30s", "inventory.bucket=inv", "inventory.ttl=2m", "inventory.replicas=3", "nats.caSecret=nats-ca",
		`json:auditguard.topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app.kubernetes.io/name":"credchain-auditguard"}}}]`)
	for name, stream := range map[string]func(t *testing.T) []byte{
		"kustomize manifests/replicas":                          func(t *testing.T) []byte { return kustomize(t, "replicas") },
		"helm replicas with every NATS value in credchain-nats": func(t *testing.T) []byte { return helmTemplate(t, "credchain-nats", everything...) },
	} {
		t.Run(name, func(t *testing.T) {
			s := stream(t)
			objs, err := parseObjects(s)
			if err != nil {
				t.Fatal(err)
			}
			out, err := applyStream(t, kubeconfig, s)
			if err != nil {
				t.Fatalf("kubectl apply --server-side: %v\n%s", err, out)
			}
			if n := strings.Count(out, " serverside-applied"); n != len(objs) {
				t.Errorf("%d of %d objects applied:\n%s", n, len(objs), out)
			}
			if !strings.Contains(out, "poddisruptionbudget.policy/credchain-auditguard serverside-applied") {
				t.Errorf("no guard PodDisruptionBudget applied:\n%s", out)
			}
		})
	}
}
