package manifests

import (
	"encoding/base64"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/credchain/credchain/internal/testenv"
)

// knobs moves every value the chart has away from its default at once, so TestInstallsApply
// validates those shapes against the real API server too (TestChartValues checks what they render).
var knobs = []string{
	"image.repository=registry.example/credchain", "image.digest=sha256:" + strings.Repeat("ab", 32), "image.pullPolicy=IfNotPresent",
	"imagePullSecrets[0].name=regcred", "commonLabels.team=platform",
	"webhook.replicas=3", "webhook.failurePolicy=Ignore", "webhook.timeoutSeconds=5",
	"webhook.exemptNamespaces={kube-system,monitoring}", "webhook.objectSelector.matchLabels.credchain=on",
	"webhook.unmanagedSecrets=warn", "webhook.gracePeriod=5m", "webhook.staleFactor=-1",
	"webhook.defaultEnforcement=warn", "webhook.esoVersion=v1", "webhook.eventWindow=1m", "webhook.logLevel=1",
	"webhook.cluster=prod-eu", "webhook.nats.urls={nats://nats.nats.svc:4222}", "webhook.nats.createStream=true",
	"webhook.port=10443", "webhook.podDisruptionBudget.minAvailable=2", "webhook.priorityClassName=system-cluster-critical",
	"certs.mode=files", "certs.secretName=corp-webhook-tls", "certs.caBundle=" + base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\n")),
	"auditguard.vault.addr=https://vault.example:8200", "auditguard.vault.namespace=admin", "auditguard.vault.caSecret=vault-ca",
	"auditguard.vault.k8sMount=k8s-prod", "auditguard.kube=", "auditguard.auditFiles={/vault/audit/audit.log}",
	"auditguard.queueSize=16384", "auditguard.resyncInterval=10m", "auditguard.reconcileInterval=30s", "auditguard.maxLine=1048576",
	"auditguard.maxConnections=8", "auditguard.lineBufferBytes=8388608", "auditguard.queueBytes=4194304",
	"auditguard.auditFileRotateGrace=2m", "auditguard.auditDisableWait=10s", "auditguard.flapDeletes=3", "auditguard.flapWindow=1h",
	"auditguard.slackWebhookFile=/etc/credchain/slack/url",
	"auditguard.persistence.storageClass=fast", "auditguard.persistence.size=5Gi",
	"networkPolicy.webhook.enabled=true", "networkPolicy.webhook.apiServerCIDRs={10.0.0.0/24}",
	"networkPolicy.auditguard.vault.podSelector.matchLabels.app=vault",
}

// TestChartValues checks what the chart's values render: each flag of both commands, the cert modes'
// volumes, RBAC and registration, and the switches that remove objects. Values left at their
// defaults render nothing (the command's own defaults apply), which TestChartRendersKustomize covers.
func TestChartValues(t *testing.T) {
	t.Parallel()
	webhook := objectKey{"apps/v1", "Deployment", "", "credchain-webhook"}
	guard := objectKey{"apps/v1", "Deployment", "", "credchain-auditguard"}
	vwc := objectKey{"admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "credchain"}
	guardPolicy := objectKey{"networking.k8s.io/v1", "NetworkPolicy", "", "credchain-auditguard"}
	for name, tc := range map[string]struct {
		ns   string
		set  []string
		want map[objectKey]map[string]any // object (namespace filled in) → field path → value
		gone []objectKey
	}{
		"every knob": {ns: "credchain-knobs", set: knobs, want: map[objectKey]map[string]any{
			webhook: {
				"spec.replicas":                         3.0,
				"spec.template.spec.containers.0.image": "registry.example/credchain@sha256:" + strings.Repeat("ab", 32),
				"spec.template.spec.containers.0.args": []any{"webhook", "--cert-mode=files", "--cert-dir=/certs",
					"--state-dir=/var/lib/credchain-webhook", "--port=10443", "--exempt-namespaces=kube-system,monitoring,credchain-knobs",
					"--unmanaged-secrets=warn", "--grace-period=5m", "--stale-factor=-1", "--default-enforcement=warn",
					"--eso-version=v1", "--event-window=1m", "--cluster=prod-eu", "--nats-url=nats://nats.nats.svc:4222",
					"--nats-create-stream", "-v=1"},
				"spec.template.spec.volumes.0.secret.secretName": "corp-webhook-tls",
				"metadata.labels.team":                           "platform",
			},
			guard: {
				"spec.template.spec.containers.0.args": []any{"auditguard", "--listen=tcp://0.0.0.0:9090",
					"--state-dir=/var/lib/credchain", "--vault-k8s-role=credchain-auditguard", "--vault-k8s-mount=k8s-prod",
					"--audit-file=/vault/audit/audit.log", "--queue-size=16384", "--resync-interval=10m",
					"--reconcile-interval=30s", "--max-line=1048576", "--max-connections=8", "--line-buffer-bytes=8388608",
					"--queue-bytes=4194304", "--audit-file-rotate-grace=2m", "--audit-disable-wait=10s",
					"--flap-deletes=3", "--flap-window=1h", "--slack-webhook-file=/etc/credchain/slack/url"},
				"spec.template.spec.containers.0.env.1.value": "admin",
				"spec.template.spec.containers.0.env.2.value": "/etc/credchain/vault-ca/ca.crt",
			},
			vwc: {
				"webhooks.0.failurePolicy":                               "Ignore",
				"webhooks.0.timeoutSeconds":                              5.0,
				"webhooks.0.clientConfig.service.namespace":              "credchain-knobs",
				"webhooks.0.namespaceSelector.matchExpressions.0.values": []any{"kube-system", "monitoring", "credchain-knobs"},
				"webhooks.0.objectSelector.matchLabels.credchain":        "on",
			},
			{"v1", "PersistentVolumeClaim", "", "credchain-auditguard-state"}: {"spec.storageClassName": "fast", "spec.resources.requests.storage": "5Gi"},
			{"networking.k8s.io/v1", "NetworkPolicy", "", "credchain-webhook"}: {
				"spec.ingress.0.ports.0.port": 10443.0, "spec.ingress.0.from.0.ipBlock.cidr": "10.0.0.0/24"},
			{"networking.k8s.io/v1", "NetworkPolicy", "", "credchain-auditguard"}: {
				"spec.ingress.0.from.0.podSelector.matchLabels.app":   "vault",
				"spec.ingress.0.from.0.namespaceSelector.matchLabels": map[string]any{"kubernetes.io/metadata.name": "vault"}},
		}, gone: []objectKey{{"rbac.authorization.k8s.io/v1", "Role", "", "credchain-webhook-certs"}}},
		"self-managed certificates in another namespace": {ns: "platform", set: []string{"certs.self.certLifetime=720h", "certs.self.extraDNSNames={webhook.example}"},
			want: map[objectKey]map[string]any{webhook: {"spec.template.spec.containers.0.args": []any{"webhook", "--cert-mode=self",
				"--cert-dir=/certs", "--state-dir=/var/lib/credchain-webhook", "--cert-secret-namespace=platform",
				"--cert-dns-names=credchain-webhook.platform.svc,credchain-webhook.platform.svc.cluster.local,webhook.example",
				"--cert-lifetime=720h"}}}}, // --exempt-namespaces defaults to kube-system,$POD_NAMESPACE
		"numbers from a values file stay integers": {set: []string{"json:auditguard.maxLine=1048576", "json:webhook.staleFactor=-1"},
			want: map[objectKey]map[string]any{
				guard:   {"spec.template.spec.containers.0.args.5": "--max-line=1048576"},
				webhook: {"spec.template.spec.containers.0.args.4": "--stale-factor=-1"}}},
		"guard off": {set: []string{"auditguard.enabled=false"}, gone: []objectKey{guard,
			{"v1", "Service", "", "credchain-auditguard"}, {"rbac.authorization.k8s.io/v1", "ClusterRole", "", "credchain-auditguard"}, guardPolicy}},
		"by default only Vault's namespace reaches the audit port; probes and metrics stay open": {
			want: map[objectKey]map[string]any{guardPolicy: {
				"spec.ingress.0.ports.0.port":                         9090.0,
				"spec.ingress.0.from.0.namespaceSelector.matchLabels": map[string]any{"kubernetes.io/metadata.name": "vault"},
				"spec.ingress.0.from.0.podSelector":                   map[string]any{},
				"spec.ingress.1.ports":                                []any{map[string]any{"port": 8081.0, "protocol": "TCP"}, map[string]any{"port": 8080.0, "protocol": "TCP"}},
				"spec.ingress.1.from":                                 nil,
			}},
			gone: []objectKey{{"networking.k8s.io/v1", "NetworkPolicy", "", "credchain-webhook"}}},
		"Vault's namespace selector replaces the default whole": {
			set: []string{`json:networkPolicy.auditguard.vault.namespaceSelector={"matchLabels":{"team":"vault"}}`},
			want: map[objectKey]map[string]any{guardPolicy: {
				"spec.ingress.0.from.0.namespaceSelector.matchLabels": map[string]any{"team": "vault"}}}},
		"guard NetworkPolicy off": {set: []string{"networkPolicy.auditguard.enabled=false"}, gone: []objectKey{guardPolicy}},
		"guard off drops its alerts": {set: []string{"auditguard.enabled=false", "monitoring.prometheusRule.enabled=true"},
			want: map[objectKey]map[string]any{{"monitoring.coreos.com/v1", "PrometheusRule", "", "credchain"}: {
				"spec.groups.0.name": "credchain.eso", "spec.groups.1.name": "credchain.webhook", "spec.groups.2.name": "credchain.events",
				"spec.groups.3": nil}}},
		"guard without persistence": {set: []string{"auditguard.persistence.enabled=false"},
			want: map[objectKey]map[string]any{guard: {"spec.template.spec.volumes.0.emptyDir": map[string]any{}}},
			gone: []objectKey{{"v1", "PersistentVolumeClaim", "", "credchain-auditguard-state"}}},
		"no namespace object under helm install --create-namespace": {set: []string{"namespace.create=false"},
			gone: []objectKey{{"v1", "Namespace", "", "credchain-system"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := tc.ns
			if ns == "" {
				ns = "credchain-system"
			}
			objs, err := parseObjects(helmTemplate(t, ns, tc.set...))
			if err != nil {
				t.Fatal(err)
			}
			for k, fields := range tc.want {
				if k.Kind != "ValidatingWebhookConfiguration" {
					k.Namespace = ns
				}
				obj, ok := objs[k]
				if !ok {
					t.Errorf("%s not rendered", k)
					continue
				}
				for path, want := range fields {
					if got := field(obj, path); !reflect.DeepEqual(got, want) {
						t.Errorf("%s %s = %#v, want %#v", k, path, got, want)
					}
				}
			}
			for _, k := range tc.gone {
				if k.Kind != "Namespace" && !strings.HasPrefix(k.Kind, "Cluster") {
					k.Namespace = ns
				}
				if _, ok := objs[k]; ok {
					t.Errorf("%s rendered, want none", k)
				}
			}
		})
	}
}

// field walks a dotted path of map keys and list indexes.
func field(obj any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch o := obj.(type) {
		case map[string]any:
			obj = o[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(o) {
				return nil
			}
			obj = o[i]
		default:
			return nil
		}
	}
	return obj
}

// TestChartRejectsValues: values.schema.json turns the typos that would silently render another
// install into errors naming the value.
func TestChartRejectsValues(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ set, path string }{
		"unknown cert mode":         {"certs.mode=cert_manager", "/certs/mode"},
		"lower-case policy":         {"webhook.failurePolicy=fail", "/webhook/failurePolicy"},
		"unknown unmanaged mode":    {"webhook.unmanagedSecrets=block", "/webhook/unmanagedSecrets"},
		"timeout over 30s":          {"webhook.timeoutSeconds=60", "/webhook/timeoutSeconds"},
		"flap deletes of 1":         {"auditguard.flapDeletes=1", "/auditguard/flapDeletes"},
		"line buffers under 64 KiB": {"auditguard.lineBufferBytes=1000", "/auditguard/lineBufferBytes"},
		// Moved under networkPolicy.webhook: left at the old place it would render no policy.
		"networkPolicy.enabled":              {"networkPolicy.enabled=true", "/networkPolicy"},
		"a guard policy admitting every pod": {"json:networkPolicy.auditguard.vault.namespaceSelector={}", "an empty namespaceSelector and podSelector admit every pod"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			flag, set := "--set", tc.set
			if v, ok := strings.CutPrefix(set, "json:"); ok {
				flag, set = "--set-json", v
			}
			out, err := exec.Command(testenv.Helm(t), "template", "credchain", chart, flag, set).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.path) {
				t.Errorf("--set %s: want an error naming %s, got %v:\n%.500s", tc.set, tc.path, err, out)
			}
		})
	}
}
