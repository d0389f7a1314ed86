package main

import (
	"fmt"
	"io"
	"time"
)

var routes = []string{routeNone, routeCredchain, routeKyverno}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printRound prints one round as it finishes (the raw data the summary is the median of).
func printRound(w io.Writer, r round) {
	fmt.Fprintf(w, "round size=%d clients=%d rep=%d %-9s p50=%.2fms p99=%.2fms %.0f req/s webhook-cpu=%.3fs/1k rss=%.0fMB apiserver-cpu=%.3fs/1k calls/review=%.2f [%s]\n",
		r.size, r.clients, r.repeat, r.route, ms(r.p50), ms(r.p99), r.throughput, r.cpuPer1k, float64(r.rss)/(1<<20), r.apiCPUPer1k, r.callsPerReview, r.calls)
}

// summary is the median over the repeats of one (size, clients, route).
type summary struct {
	p50, p99, throughput, cpuPer1k, rssMB, apiCPUPer1k, calls float64
}

func summarize(rounds []round, size, clients int, route string) summary {
	var p50, p99, tp, cpu, rss, api, calls []float64
	for _, r := range rounds {
		if r.size != size || r.clients != clients || r.route != route {
			continue
		}
		p50, p99 = append(p50, ms(r.p50)), append(p99, ms(r.p99))
		tp, cpu = append(tp, r.throughput), append(cpu, r.cpuPer1k)
		rss, api = append(rss, float64(r.rss)/(1<<20)), append(api, r.apiCPUPer1k)
		calls = append(calls, r.callsPerReview)
	}
	return summary{median(p50), median(p99), median(tp), median(cpu), median(rss), median(api), median(calls)}
}

// printSummary prints the markdown tables docs/benchmarks.md carries: per configuration the
// medians, then the ratios.
func printSummary(w io.Writer, rounds []round, cfg Config) {
	fmt.Fprintf(w, "\n| ExternalSecrets | clients | webhook | p50 | p99 | req/s | webhook CPU s / 1k reviews | webhook RSS | kube-apiserver CPU s / 1k requests | webhook API calls / review |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, size := range cfg.Sizes {
		for _, c := range cfg.Clients {
			for _, rt := range routes {
				s := summarize(rounds, size, c, rt)
				cpu, rss, calls := "—", "—", "—"
				if rt != routeNone {
					cpu, rss, calls = fmt.Sprintf("%.3f", s.cpuPer1k), fmt.Sprintf("%.0f MB", s.rssMB), fmt.Sprintf("%.2f", s.calls)
				}
				fmt.Fprintf(w, "| %d | %d | %s | %.2f ms | %.2f ms | %.0f | %s | %s | %.3f | %s |\n", size, c, rt, s.p50, s.p99, s.throughput, cpu, rss, s.apiCPUPer1k, calls)
			}
		}
	}
	fmt.Fprintf(w, "\n| ExternalSecrets | clients | p50 credchain/Kyverno | p99 credchain/Kyverno | req/s credchain/Kyverno | CPU/review credchain/Kyverno | p50 credchain/none | p50 Kyverno/none | p99 credchain/none | p99 Kyverno/none | req/s credchain/none | req/s Kyverno/none |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, size := range cfg.Sizes {
		for _, c := range cfg.Clients {
			n, cc, k := summarize(rounds, size, c, routeNone), summarize(rounds, size, c, routeCredchain), summarize(rounds, size, c, routeKyverno)
			fmt.Fprintf(w, "| %d | %d | %.2f | %.2f | %.2f | %.3f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", size, c,
				ratio(cc.p50, k.p50), ratio(cc.p99, k.p99), ratio(cc.throughput, k.throughput), ratio(cc.cpuPer1k, k.cpuPer1k),
				ratio(cc.p50, n.p50), ratio(k.p50, n.p50), ratio(cc.p99, n.p99), ratio(k.p99, n.p99),
				ratio(cc.throughput, n.throughput), ratio(k.throughput, n.throughput))
		}
	}
}

// printCases prints the correctness pass: each case's verdict from both webhooks and what the
// person at kubectl read.
func printCases(w io.Writer, results map[string][]verdict) {
	fmt.Fprintf(w, "\n| case | what it shows | credchain | Kyverno |\n|---|---|---|---|\n")
	for _, c := range cases {
		v := results[c.name]
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.name, c.claim, v[0], v[1])
	}
	fmt.Fprintf(w, "\nWhat each printed (denial or warnings):\n")
	for _, c := range cases {
		v := results[c.name]
		fmt.Fprintf(w, "- %s\n  - credchain: %s\n  - Kyverno: %s\n", c.name, v[0].detail(), v[1].detail())
	}
}
