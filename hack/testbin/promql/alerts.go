package main

// promcheck alerts FILE: evaluates a rules file's alerting rules over synthetic series the way
// Prometheus' rule manager does (every interval from time 0; an alert fires once its expression has
// returned it for `for`), so a test can show that an alert fires for the failure it is about, stays
// quiet otherwise, and that its annotations render. Series use promtool's notation ("1x150",
// "0+1x60"). Only Prometheus' PromQL engine, parser and template packages are used: its rule manager
// would bring the notifier and with it every service-discovery SDK into this tool's build.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/template"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// AlertCase is one scenario: series, then the state of every alert at time At.
type AlertCase struct {
	Name     string        `json:"name"`
	Interval string        `json:"interval"` // sample and evaluation interval; default 1m
	Series   []InputSeries `json:"series"`
	At       string        `json:"at"` // e.g. "150m"
}

// InputSeries is one series in promtool's notation.
type InputSeries struct {
	Series string `json:"series"` // e.g. `up{job="x"}`
	Values string `json:"values"` // e.g. "1x150" or "0+1x60"
}

// AlertResult is what fired (or was pending) at the case's time.
type AlertResult struct {
	Name    string  `json:"name"`
	Error   string  `json:"error,omitempty"`
	Firing  []Alert `json:"firing"`
	Pending []Alert `json:"pending"`
}

// Alert is one alert instance with its final labels and rendered annotations.
type Alert struct {
	Alert       string            `json:"alert"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func runAlerts(p parser.Parser, file string, in io.Reader, out io.Writer) error {
	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, p, slog.Default())
	if len(errs) > 0 {
		return fmt.Errorf("loading %s: %v", file, errs)
	}
	var cases []AlertCase
	if err := json.NewDecoder(in).Decode(&cases); err != nil {
		return fmt.Errorf("reading cases: %w", err)
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, Parser: p})
	var rules []rulefmt.Rule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				rules = append(rules, r)
			}
		}
	}
	results := make([]AlertResult, 0, len(cases))
	for _, c := range cases {
		r, err := evalCase(p, engine, rules, c)
		if err != nil {
			r = AlertResult{Name: c.Name, Error: err.Error()}
		}
		results = append(results, r)
	}
	return json.NewEncoder(out).Encode(results)
}

func evalCase(p parser.Parser, engine *promql.Engine, rules []rulefmt.Rule, c AlertCase) (AlertResult, error) {
	res := AlertResult{Name: c.Name, Firing: []Alert{}, Pending: []Alert{}}
	interval := time.Minute
	if c.Interval != "" {
		d, err := model.ParseDuration(c.Interval)
		if err != nil {
			return res, fmt.Errorf("interval: %w", err)
		}
		interval = time.Duration(d)
	}
	at, err := model.ParseDuration(c.At)
	if err != nil {
		return res, fmt.Errorf("at: %w", err)
	}
	db := &memSeries{}
	for _, s := range c.Series {
		lset, vals, err := p.ParseSeriesDesc(s.Series + " " + s.Values)
		if err != nil {
			return res, fmt.Errorf("series %s %s: %w", s.Series, s.Values, err)
		}
		var samples []chunks.Sample
		for i, v := range vals {
			if v.Omitted {
				continue
			}
			samples = append(samples, fsample{t: int64(i) * interval.Milliseconds(), f: v.Value})
		}
		db.series = append(db.series, storage.NewListSeries(lset, samples))
	}
	epoch := time.Unix(0, 0).UTC()
	end := epoch.Add(time.Duration(at))
	ctx := context.Background()
	for _, rule := range rules {
		active := map[uint64]time.Time{} // alert label set → first evaluation that returned it
		var last []Alert
		var lastHashes []uint64
		for ts := epoch; !ts.After(end); ts = ts.Add(interval) {
			q, err := engine.NewInstantQuery(ctx, db, nil, rule.Expr, ts)
			if err != nil {
				return res, fmt.Errorf("%s: %w", rule.Alert, err)
			}
			r := q.Exec(ctx)
			q.Close()
			if r.Err != nil {
				return res, fmt.Errorf("%s at %s: %w", rule.Alert, ts.Sub(epoch), r.Err)
			}
			vec, err := r.Vector()
			if err != nil {
				return res, fmt.Errorf("%s: %w", rule.Alert, err)
			}
			seen := map[uint64]bool{}
			last, lastHashes = last[:0], lastHashes[:0]
			for _, smpl := range vec {
				a, err := instance(ctx, engine, db, rule, smpl, ts)
				if err != nil {
					return res, err
				}
				h := labels.FromMap(a.Labels).Hash()
				seen[h] = true
				if _, ok := active[h]; !ok {
					active[h] = ts
				}
				last, lastHashes = append(last, a), append(lastHashes, h)
			}
			for h := range active {
				if !seen[h] {
					delete(active, h) // resolved
				}
			}
		}
		for i, a := range last {
			if end.Sub(active[lastHashes[i]]) >= time.Duration(rule.For) {
				res.Firing = append(res.Firing, a)
			} else {
				res.Pending = append(res.Pending, a)
			}
		}
	}
	return res, nil
}

// instance builds an alert from one result sample as Prometheus does: annotations see the sample's
// labels as $labels and its value as $value; the alert's labels are the sample's without the metric
// name, plus the rule's (templated), plus alertname.
func instance(ctx context.Context, engine *promql.Engine, db storage.Queryable, rule rulefmt.Rule, smpl promql.Sample, ts time.Time) (Alert, error) {
	data := template.AlertTemplateData(smpl.Metric.Map(), nil, "", smpl)
	query := func(ctx context.Context, qs string, t time.Time) (promql.Vector, error) {
		q, err := engine.NewInstantQuery(ctx, db, nil, qs, t)
		if err != nil {
			return nil, err
		}
		defer q.Close()
		return q.Exec(ctx).Vector()
	}
	var expandErr error
	expand := func(text string) string {
		e := template.NewTemplateExpander(ctx, "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"+text,
			"__alert_"+rule.Alert, data, model.TimeFromUnixNano(ts.UnixNano()), query, nil, nil)
		out, err := e.Expand()
		if err != nil && expandErr == nil {
			expandErr = fmt.Errorf("%s: expanding %q: %w", rule.Alert, text, err)
		}
		return out
	}
	a := Alert{Alert: rule.Alert, Labels: smpl.Metric.Map(), Annotations: map[string]string{}}
	delete(a.Labels, labels.MetricName)
	for _, k := range slices.Sorted(maps.Keys(rule.Labels)) {
		a.Labels[k] = expand(rule.Labels[k])
	}
	a.Labels[labels.AlertName] = rule.Alert
	for k, v := range rule.Annotations {
		a.Annotations[k] = strings.TrimSpace(expand(v))
	}
	return a, expandErr
}

// memSeries is a Queryable over a few in-memory series.
type memSeries struct{ series []storage.Series }

func (m *memSeries) Querier(_, _ int64) (storage.Querier, error) { return m, nil }
func (m *memSeries) Close() error                                { return nil }
func (m *memSeries) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}
func (m *memSeries) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (m *memSeries) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	for _, s := range m.series {
		lset := s.Labels()
		if matchAll(lset, ms) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &seriesSet{series: out, i: -1}
}

func matchAll(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

type seriesSet struct {
	series []storage.Series
	i      int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

// fsample is one float sample.
type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }
