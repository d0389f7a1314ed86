package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/credchain/credchain/internal/testenv"
)

// rulesFile writes the PrometheusRule's spec (its rule groups) where Prometheus' tools can load it.
func rulesFile(t *testing.T) string {
	t.Helper()
	objs, err := parseObjects(mustRead(t, "monitoring/prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := yaml.Marshal(objs[objectKey{"monitoring.coreos.com/v1", "PrometheusRule", "credchain-system", "credchain"}]["spec"])
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, rules, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Label sets of the scraped pods, as a PodMonitor target labels them.
const (
	guardPod = `namespace="credchain-system",pod="credchain-auditguard-0",job="credchain-system/credchain-auditguard"`
	webhookA = `namespace="credchain-system",pod="credchain-webhook-7d9f-a",job="credchain-system/credchain-webhook"`
	webhookB = `namespace="credchain-system",pod="credchain-webhook-7d9f-b",job="credchain-system/credchain-webhook"`
	esoPod   = `namespace="external-secrets",pod="external-secrets-5c6d",job="external-secrets/external-secrets"`
	// ESO labels the series with the ExternalSecret's namespace; a scrape that does not honor
	// labels keeps the target's and renames ESO's to exported_namespace.
	esFailing = `externalsecret_status_condition{` + esoPod + `,exported_namespace="prod",name="order-service-regcred",condition="Ready",status="False"}`
	esSynced  = `externalsecret_status_condition{` + esoPod + `,exported_namespace="prod",name="order-service-regcred",condition="Ready",status="True"}`
)

// healthy is three hours (one sample a minute) of a cluster where everything works: every alert
// case starts from it and changes what its failure changes.
func healthy() map[string]string {
	s := map[string]string{
		`up{` + guardPod + `}`: "1x180",
		`up{` + webhookA + `}`: "1x180",
		`up{` + webhookB + `}`: "1x180",
		`up{` + esoPod + `}`:   "1x180",
		esFailing:              "0x180",
		esSynced:               "1x180",

		`credchain_auditguard_restores_total{` + guardPod + `,result="ok"}`:                                  "0+1x180",
		`credchain_auditguard_restores_total{` + guardPod + `,result="failed"}`:                              "0x180",
		`credchain_auditguard_lines_dropped_total{` + guardPod + `,reason="queue_full"}`:                     "0x180",
		`credchain_auditguard_lines_dropped_total{` + guardPod + `,reason="too_long"}`:                       "0x180",
		`credchain_auditguard_lines_dropped_total{` + guardPod + `,reason="buffer_budget"}`:                  "0x180",
		`credchain_auditguard_connections_refused_total{` + guardPod + `}`:                                   "0x180",
		`credchain_auditguard_socket_connections{` + guardPod + `}`:                                          "3x180",
		`credchain_auditguard_blast_radius_ready{` + guardPod + `}`:                                          "1x180",
		`credchain_auditguard_audit_devices_socket_only{` + guardPod + `}`:                                   "0x180",
		`credchain_auditguard_desired_state_valid{` + guardPod + `}`:                                         "1x180",
		`credchain_auditguard_last_resync_timestamp_seconds{` + guardPod + `}`:                               "0+60x180", // each minute's time()
		`credchain_events_pending{` + guardPod + `,sink="nats"}`:                                             "0x180",
		`credchain_events_delivered_total{` + guardPod + `,sink="nats"}`:                                     "0+1x180",
		`credchain_events_dead_lettered_total{` + guardPod + `,sink="nats",reason="rejected"}`:               "0x180",
		`credchain_webhook_certificate_expiry_timestamp_seconds{` + webhookA + `}`:                           "7776000x180", // 90 days after time 0
		`credchain_webhook_certificate_expiry_timestamp_seconds{` + webhookB + `}`:                           "7776000x180",
		`credchain_webhook_decisions_total{` + webhookA + `,decision="allowed"}`:                             "0+300x180",
		`credchain_webhook_decisions_total{` + webhookA + `,decision="denied"}`:                              "0+3x180",
		`credchain_webhook_decisions_total{` + webhookA + `,decision="errored"}`:                             "0x180",
		`controller_runtime_webhook_latency_seconds_bucket{` + webhookA + `,webhook="/validate",le="0.005"}`: "0+300x180",
		`controller_runtime_webhook_latency_seconds_bucket{` + webhookA + `,webhook="/validate",le="0.1"}`:   "0+303x180",
		`controller_runtime_webhook_latency_seconds_bucket{` + webhookA + `,webhook="/validate",le="1"}`:     "0+303x180",
		`controller_runtime_webhook_latency_seconds_bucket{` + webhookA + `,webhook="/validate",le="2.5"}`:   "0+303x180",
		`controller_runtime_webhook_latency_seconds_bucket{` + webhookA + `,webhook="/validate",le="+Inf"}`:  "0+303x180",
	}
	// credchain's decision histogram, with its real buckets: everything within 5µs–1ms.
	for _, le := range decisionBuckets {
		v := "0+303x180"
		if le == "5e-06" || le == "1e-05" {
			v = "0+100x180"
		}
		s[`credchain_webhook_decision_duration_seconds_bucket{`+webhookA+`,le="`+le+`"}`] = v
	}
	return s
}

// decisionBuckets are credchain_webhook_decision_duration_seconds' bucket bounds (webhook/metrics.go).
var decisionBuckets = []string{"5e-06", "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.005", "0.05", "+Inf"}

// slowDecisions: from minute 150 every decision takes 5–50ms (the buckets up to 5ms stop growing).
func slowDecisions() map[string]string {
	change := map[string]string{}
	for _, le := range decisionBuckets[:9] {
		v := "0+303x150 45450x30"
		if le == "5e-06" || le == "1e-05" {
			v = "0+100x150 15000x30"
		}
		change[`credchain_webhook_decision_duration_seconds_bucket{`+webhookA+`,le="`+le+`"}`] = v
	}
	return change
}

type alertCase struct {
	Name     string        `json:"name"`
	Interval string        `json:"interval"`
	Series   []alertSeries `json:"series"`
	At       string        `json:"at"`
}

type alertSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type firedAlert struct {
	Alert       string            `json:"alert"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type alertResult struct {
	Name    string       `json:"name"`
	Error   string       `json:"error"`
	Firing  []firedAlert `json:"firing"`
	Pending []firedAlert `json:"pending"`
}

// TestAlertsFire evaluates the PrometheusRule with Prometheus' PromQL engine and template expander
// (promcheck alerts) over three hours of synthetic series: each alert fires for the failure it is
// about, stays pending until its `for:` has passed, is silent on a healthy cluster, and its
// annotations render to what the person paged needs (the kubectl command names the right namespace).
func TestAlertsFire(t *testing.T) {
	t.Parallel()
	promcheck := testenv.PromCheck(t)
	rules := rulesFile(t)

	type want struct {
		firing  []string          // alert names firing at 180m (sorted; a name twice = two instances)
		pending []string          // alert names pending at 180m
		labels  map[string]string // labels the first firing alert carries
		texts   []string          // substrings of the first firing alert's summary + description
	}
	tests := map[string]struct {
		change map[string]string // series → values; "" removes the series
		want   want
	}{
		"healthy cluster: nothing fires": {},
		"the incident: ESO cannot sync for 2h": {
			change: map[string]string{esFailing: "0x50 1x130", esSynced: "1x50 0x130"},
			want: want{firing: []string{"ExternalSecretSyncFailed"},
				labels: map[string]string{"severity": "warning", "exported_namespace": "prod", "name": "order-service-regcred"},
				texts: []string{"ExternalSecret prod/order-service-regcred has not synced for 2h",
					"kubectl annotate externalsecret order-service-regcred -n prod force-sync=$(date +%s) --overwrite"}},
		},
		"ESO failing for 1h: pending": {
			change: map[string]string{esFailing: "0x120 1x60", esSynced: "1x120 0x60"},
			want:   want{pending: []string{"ExternalSecretSyncFailed"}},
		},
		"ESO scraped honoring its labels": {
			change: map[string]string{
				esFailing: "", esSynced: "",
				`externalsecret_status_condition{job="eso",namespace="prod",name="order-service-regcred",condition="Ready",status="False"}`: "1x180",
			},
			want: want{firing: []string{"ExternalSecretSyncFailed"},
				texts: []string{"kubectl describe externalsecret order-service-regcred -n prod"}},
		},
		"a restore failed 5 minutes ago": {
			change: map[string]string{`credchain_auditguard_restores_total{` + guardPod + `,result="failed"}`: "0x175 1x5"},
			want: want{firing: []string{"CredchainPolicyRestoreFailed"},
				labels: map[string]string{"severity": "critical", "pod": "credchain-auditguard-0"},
				texts:  []string{"logs of credchain-system/credchain-auditguard-0"}},
		},
		"a restore failed an hour ago": {
			change: map[string]string{`credchain_auditguard_restores_total{` + guardPod + `,result="failed"}`: "0x120 1x60"},
		},
		"audit lines dropped": {
			change: map[string]string{`credchain_auditguard_lines_dropped_total{` + guardPod + `,reason="queue_full"}`: "0x170 50+50x10"},
			want:   want{firing: []string{"CredchainAuditLinesDropped"}, labels: map[string]string{"reason": "queue_full"}},
		},
		"long lines on many connections at once": {
			change: map[string]string{`credchain_auditguard_lines_dropped_total{` + guardPod + `,reason="buffer_budget"}`: "0x175 3+3x5"},
			want: want{firing: []string{"CredchainAuditLinesDropped"}, labels: map[string]string{"reason": "buffer_budget"},
				texts: []string{"audit lines (buffer_budget)", "--line-buffer-bytes could not hold them all"}},
		},
		"connections refused": {
			change: map[string]string{`credchain_auditguard_connections_refused_total{` + guardPod + `}`: "0x175 20+20x5"},
			want: want{firing: []string{"CredchainAuditGuardConnectionsRefused"},
				labels: map[string]string{"severity": "warning", "pod": "credchain-auditguard-0"},
				texts:  []string{"audit socket of credchain-system/credchain-auditguard-0", "NetworkPolicy credchain-auditguard"}},
		},
		"connections refused an hour ago": {
			change: map[string]string{`credchain_auditguard_connections_refused_total{` + guardPod + `}`: "0x120 5x60"},
		},
		"no Vault node streams audit entries": {
			change: map[string]string{`credchain_auditguard_socket_connections{` + guardPod + `}`: "3x150 0x30"},
			want:   want{firing: []string{"CredchainAuditGuardNoVaultConnection"}},
		},
		"the guard cannot read the cluster": {
			change: map[string]string{`credchain_auditguard_blast_radius_ready{` + guardPod + `}`: "0x180"},
			want: want{firing: []string{"CredchainAuditGuardBlastRadiusUnavailable"},
				texts: []string{"pods); see the logs of credchain-system/credchain-auditguard-0"}},
		},
		"the file audit device disabled: only the guard's socket is left": {
			change: map[string]string{`credchain_auditguard_audit_devices_socket_only{` + guardPod + `}`: "0x175 1x5"},
			want: want{firing: []string{"CredchainAuditGuardOnlyAuditDevice"}, labels: map[string]string{"severity": "critical"},
				texts: []string{"while credchain-system/credchain-auditguard-0 is down, Vault refuses requests", "vault audit enable file file_path=/vault/audit/audit.log"}},
		},
		"the guard cannot list audit devices: unknown, not firing": {
			change: map[string]string{`credchain_auditguard_audit_devices_socket_only{` + guardPod + `}`: "-1x180"},
		},
		"the role index stopped resyncing 2h ago": {
			change: map[string]string{`credchain_auditguard_last_resync_timestamp_seconds{` + guardPod + `}`: "0+60x60 3600x120"},
			want:   want{firing: []string{"CredchainAuditGuardResyncStale"}},
		},
		"the desired state stopped loading 10 minutes ago": {
			change: map[string]string{`credchain_auditguard_desired_state_valid{` + guardPod + `}`: "1x170 0x10"},
			want: want{firing: []string{"CredchainAuditGuardDesiredStateInvalid"}, labels: map[string]string{"severity": "warning"},
				texts: []string{"credchain-system/credchain-auditguard-0 cannot load its desired state", "guard.desired_state_invalid"}},
		},
		"the desired state broken for 2 minutes: pending": {
			change: map[string]string{`credchain_auditguard_desired_state_valid{` + guardPod + `}`: "1x178 0x2"},
			want:   want{pending: []string{"CredchainAuditGuardDesiredStateInvalid"}},
		},
		"no desired state configured: not firing": {
			change: map[string]string{`credchain_auditguard_desired_state_valid{` + guardPod + `}`: "-1x180"},
		},
		"the guard is down": {
			change: map[string]string{`up{` + guardPod + `}`: "1x160 0x20"},
			want:   want{firing: []string{"CredchainAuditGuardDown"}},
		},
		"one webhook replica down: not an outage": {
			change: map[string]string{`up{` + webhookB + `}`: "1x60 0x120"},
		},
		"every webhook replica down": {
			change: map[string]string{`up{` + webhookA + `}`: "1x170 0x10", `up{` + webhookB + `}`: "1x170 0x10"},
			want:   want{firing: []string{"CredchainWebhookDown"}, labels: map[string]string{"severity": "critical"}},
		},
		"slow decisions": {
			change: slowDecisions(),
			want:   want{firing: []string{"CredchainWebhookSlowDecisions"}},
		},
		"slow requests": {
			change: map[string]string{
				`controller_runtime_webhook_latency_seconds_bucket{` + webhookA + `,webhook="/validate",le="0.005"}`: "0+300x150 45000x30",
				`controller_runtime_webhook_latency_seconds_bucket{` + webhookA + `,webhook="/validate",le="0.1"}`:   "0+303x150 45450x30",
				`controller_runtime_webhook_latency_seconds_bucket{` + webhookA + `,webhook="/validate",le="1"}`:     "0+303x150 45450x30",
			},
			want: want{firing: []string{"CredchainWebhookSlowRequests"}},
		},
		"decisions erroring": {
			change: map[string]string{`credchain_webhook_decisions_total{` + webhookA + `,decision="errored"}`: "0x150 0+2x30"},
			want:   want{firing: []string{"CredchainWebhookErrors"}},
		},
		"a third of reviews denied": {
			change: map[string]string{`credchain_webhook_decisions_total{` + webhookA + `,decision="denied"}`: "0+3x140 420+150x40"},
			want:   want{firing: []string{"CredchainWebhookHighDenialRate"}},
		},
		"serving certificate expires in 10 days": {
			change: map[string]string{`credchain_webhook_certificate_expiry_timestamp_seconds{` + webhookA + `}`: "874800x180"},
			want: want{firing: []string{"CredchainWebhookCertificateExpiresSoon"}, labels: map[string]string{"severity": "warning"},
				texts: []string{"credchain-system/credchain-webhook-7d9f-a expires in 10d"}},
		},
		"serving certificate expires tomorrow": {
			change: map[string]string{`credchain_webhook_certificate_expiry_timestamp_seconds{` + webhookA + `}`: "97200x180"},
			want:   want{firing: []string{"CredchainWebhookCertificateExpiresSoon", "CredchainWebhookCertificateExpiresSoon"}},
		},
		"NATS unreachable: events pile up": {
			change: map[string]string{
				`credchain_events_pending{` + guardPod + `,sink="nats"}`:         "0x130 1+1x50",
				`credchain_events_delivered_total{` + guardPod + `,sink="nats"}`: "0+1x130 130x50",
			},
			want: want{firing: []string{"CredchainEventDeliveryStuck"}, labels: map[string]string{"sink": "nats"},
				texts: []string{"credchain events wait in the nats outbox of credchain-system/credchain-auditguard-0"}},
		},
		"NATS rejected an event 10 minutes ago": {
			change: map[string]string{`credchain_events_dead_lettered_total{` + guardPod + `,sink="nats",reason="rejected"}`: "0x170 1x10"},
			want: want{firing: []string{"CredchainEventsDeadLettered"},
				labels: map[string]string{"severity": "warning", "sink": "nats", "reason": "rejected"},
				texts:  []string{"credchain-system/credchain-auditguard-0 dead-lettered credchain events for nats (rejected)", "deadletter/nats"}},
		},
		"an event dead-lettered 2h ago": {
			change: map[string]string{`credchain_events_dead_lettered_total{` + guardPod + `,sink="nats",reason="age"}`: "0x60 1x120"},
		},
	}

	names := slices.Sorted(maps.Keys(tests))
	cases := make([]alertCase, 0, len(names))
	for _, name := range names {
		series := healthy()
		for k, v := range tests[name].change {
			if _, ok := series[k]; !ok && v == "" {
				t.Fatalf("%s: removes series %s, which the healthy set lacks", name, k)
			}
			if v == "" {
				delete(series, k)
			} else {
				series[k] = v
			}
		}
		c := alertCase{Name: name, Interval: "1m", At: "180m"}
		for _, k := range slices.Sorted(maps.Keys(series)) {
			c.Series = append(c.Series, alertSeries{Series: k, Values: series[k]})
		}
		cases = append(cases, c)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promcheck, "alerts", rules)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("promcheck alerts: %v\n%s", err, stderr.String())
	}
	var results []alertResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatal(err)
	}
	if len(results) != len(names) {
		t.Fatalf("%d results for %d cases", len(results), len(names))
	}
	fired := map[string]bool{}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			r, w := results[i], tests[name].want
			if r.Name != name || r.Error != "" {
				t.Fatalf("result %q: %s", r.Name, r.Error)
			}
			if got := alertNames(r.Firing); !slices.Equal(got, w.firing) {
				t.Errorf("firing %v, want %v%s", got, w.firing, describe(r.Firing))
			}
			if got := alertNames(r.Pending); !slices.Equal(got, w.pending) {
				t.Errorf("pending %v, want %v", got, w.pending)
			}
			for _, a := range r.Firing {
				fired[a.Alert] = true
				for k, v := range a.Annotations {
					if strings.Contains(v, "<no value>") || strings.Contains(v, "error expanding") {
						t.Errorf("%s annotation %s did not render: %q", a.Alert, k, v)
					}
				}
			}
			if len(r.Firing) == 0 {
				return
			}
			first := r.Firing[0]
			for k, v := range w.labels {
				if first.Labels[k] != v {
					t.Errorf("%s label %s = %q, want %q", first.Alert, k, first.Labels[k], v)
				}
			}
			text := first.Annotations["summary"] + "\n" + first.Annotations["description"]
			for _, s := range w.texts {
				if !strings.Contains(text, s) {
					t.Errorf("%s annotations lack %q:\n%s", first.Alert, s, text)
				}
			}
		})
	}
	// Every alert in the rule has a case that fires it.
	var all struct {
		Groups []struct{ Rules []struct{ Alert string } }
	}
	raw, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	for _, g := range all.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !fired[r.Alert] {
				t.Errorf("no case fires %s", r.Alert)
			}
		}
	}
}

func alertNames(as []firedAlert) []string {
	names := []string{}
	for _, a := range as {
		names = append(names, a.Alert)
	}
	slices.Sort(names)
	return names
}

func describe(as []firedAlert) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "\n  %s %v: %s", a.Alert, a.Labels, a.Annotations["summary"])
	}
	return b.String()
}
