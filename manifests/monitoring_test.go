package manifests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"

	"github.com/credchain/credchain/auditguard"
	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/testenv"
	"github.com/credchain/credchain/webhook"
)

// targetLabels are the labels Prometheus adds to every series of a PodMonitor target; `up` is the
// series it writes per target. Queries may use them beside a metric's own labels.
var targetLabels = []string{"namespace", "pod", "container", "endpoint", "job", "instance"}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestMonitoringQueries parses every alert and dashboard query with Prometheus' own parser
// (promcheck), loads the rules as Prometheus would, and checks that every metric and label they
// select exists: credchain's metrics as its code registers them, controller-runtime's as its webhook
// server records them, ESO's as its v0.16.2 source declares them. A renamed metric fails here
// instead of leaving an alert that can never fire.
func TestMonitoringQueries(t *testing.T) {
	t.Parallel()
	promcheck := testenv.PromCheck(t)
	var exprs []string

	objs, err := parseObjects(mustRead(t, "monitoring/prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec := objs[objectKey{"monitoring.coreos.com/v1", "PrometheusRule", "credchain-system", "credchain"}]["spec"]
	rules, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, rules, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promcheck, "rules", rulesFile).CombinedOutput(); err != nil {
		t.Errorf("Prometheus rejects the PrometheusRule's groups: %v\n%s", err, out)
	}
	var groups struct {
		Groups []struct{ Rules []struct{ Expr string } }
	}
	if err := yaml.Unmarshal(rules, &groups); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}

	var d dashboard
	if err := json.Unmarshal(mustRead(t, "monitoring/grafana-dashboard.json"), &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	// Grafana substitutes its interval variables before the query reaches Prometheus.
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	ids := map[int]string{}
	for _, p := range d.Panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, grafanaVars.Replace(q.Expr))
		}
	}

	in, _ := json.Marshal(exprs)
	cmd := exec.Command(promcheck, "exprs")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("promcheck exprs: %v", err)
	}
	var results []struct {
		Expr, Error string
		Selectors   []struct {
			Metric string
			Labels []string
		}
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatal(err)
	}
	known := registeredMetrics(t)
	for _, r := range results {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Expr, r.Error)
		}
		for _, s := range r.Selectors {
			labels, ok := lookupMetric(known, s.Metric)
			if !ok {
				t.Errorf("%s: metric %s is registered by nothing credchain runs or watches", r.Expr, s.Metric)
				continue
			}
			for _, l := range s.Labels {
				if !slices.Contains(labels, l) && !slices.Contains(targetLabels, l) {
					t.Errorf("%s: %s has no label %q (labels: %v)", r.Expr, s.Metric, l, labels)
				}
			}
		}
	}
}

// lookupMetric finds a selected series name among the registered metrics: a histogram's _bucket
// (with le), _sum and _count series, and Prometheus' own `up`.
func lookupMetric(known map[string][]string, name string) ([]string, bool) {
	if name == "up" {
		return nil, true
	}
	if l, ok := known[name]; ok {
		return l, true
	}
	for suffix, extra := range map[string][]string{"_bucket": {"le"}, "_sum": nil, "_count": nil} {
		if l, ok := known[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) {
			return append(append([]string{}, l...), extra...), true
		}
	}
	return nil, false
}

// registeredMetrics is every metric name the queries may use, with its label names: credchain's from
// the constructors both commands call, controller-runtime's webhook metrics after one request through
// its instrumented mux, and ESO's from TestESOMetricSource's checked declaration.
func registeredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	rec := &descRecorder{metrics: map[string][]string{}}
	webhook.NewMetrics(rec)
	rec.MustRegister(webhook.CertExpiry(t.TempDir()))
	auditguard.NewMetrics(rec)
	if _, err := events.NewDispatcher(nil, logr.Discard(), rec); err != nil {
		t.Fatal(err)
	}

	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{})
	srv.Register("/validate", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.WebhookMux().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/validate", nil))
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "controller_runtime_webhook_") || len(f.GetMetric()) == 0 {
			continue
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		rec.metrics[f.GetName()] = labels
	}

	rec.metrics[esoConditionMetric] = esoConditionLabels
	return rec.metrics
}

// descRecorder is a prometheus.Registerer that records each collector's metric names and label
// names instead of serving them. A Desc exposes them only through String(), so that is parsed.
type descRecorder struct{ metrics map[string][]string }

var _ prometheus.Registerer = (*descRecorder)(nil)

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			continue
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		r.metrics[m[1]] = labels
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return false }

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
