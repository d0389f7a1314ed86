// Command promcheck checks PromQL with Prometheus' own parser and rule loader, so credchain's tests
// can validate its alerts and dashboard without Prometheus' dependency graph in credchain's go.mod.
//
//	promcheck rules FILE  validates a rules file (a PrometheusRule's spec) as Prometheus loads it:
//	                      every expr parsed, labels and annotation templates checked
//	promcheck exprs       reads a JSON array of expressions on stdin; prints, per expression, its
//	                      parse error or the metric selectors it reads
//	promcheck alerts FILE reads a JSON array of AlertCase on stdin; prints, per case, the alerts of
//	                      FILE firing and pending at the case's time (see alerts.go)
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Selector is one vector selector: its metric name and the labels it matches on.
type Selector struct {
	Metric string   `json:"metric"`
	Labels []string `json:"labels"`
}

// Result is one expression's outcome.
type Result struct {
	Expr      string     `json:"expr"`
	Error     string     `json:"error,omitempty"`
	Selectors []Selector `json:"selectors,omitempty"`
}

func main() {
	p := parser.NewParser(parser.Options{})
	switch {
	case len(os.Args) == 3 && os.Args[1] == "rules":
		_, errs := rulefmt.ParseFile(os.Args[2], false, model.UTF8Validation, p, slog.Default())
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, err)
		}
		if len(errs) > 0 {
			os.Exit(1)
		}
	case len(os.Args) == 3 && os.Args[1] == "alerts":
		if err := runAlerts(p, os.Args[2], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case len(os.Args) == 2 && os.Args[1] == "exprs":
		var exprs []string
		if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
			fmt.Fprintln(os.Stderr, "reading expressions:", err)
			os.Exit(2)
		}
		results := make([]Result, 0, len(exprs))
		for _, e := range exprs {
			results = append(results, check(p, e))
		}
		_ = json.NewEncoder(os.Stdout).Encode(results)
	default:
		fmt.Fprintln(os.Stderr, "usage: promcheck rules FILE | promcheck exprs <JSON-array | promcheck alerts FILE <JSON-array")
		os.Exit(2)
	}
}

func check(p parser.Parser, e string) Result {
	r := Result{Expr: e}
	ast, err := p.ParseExpr(e)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := Selector{Metric: vs.Name, Labels: []string{}}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName {
				s.Labels = append(s.Labels, m.Name)
			}
		}
		r.Selectors = append(r.Selectors, s)
		return nil
	})
	return r
}
