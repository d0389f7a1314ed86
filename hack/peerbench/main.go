// Command peerbench measures credchain's webhook against the Kyverno ClusterPolicy a platform team
// would write instead (policy.yaml), through one real kube-apiserver in one run: a correctness pass
// (the cases of docs/kyverno.md against both), then interleaved rounds of server-side dry-run
// CREATEs with no webhook, credchain and Kyverno (docs/benchmarks.md, "Peer benchmark").
//
//	go run . --credchain ../../bin/credchain        (make peerbench builds everything first)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var cfg Config
	cfg.SetDefaults()
	f := flag.NewFlagSet("peerbench", flag.ContinueOnError)
	f.StringVar(&cfg.Credchain, "credchain", cfg.Credchain, "the credchain binary (go build ./cmd/credchain)")
	f.StringVar(&cfg.Kyverno, "kyverno", cfg.Kyverno, "Kyverno's admission controller (hack/testbin.sh kyverno)")
	f.StringVar(&cfg.Manifests, "manifests", cfg.Manifests, "the repository's manifests directory")
	f.StringVar(&cfg.Dir, "dir", cfg.Dir, "directory for logs, the audit log and kubeconfigs (default: a new temporary one, kept)")
	sizes, clients := ints(&cfg.Sizes), ints(&cfg.Clients)
	f.Var(sizes, "sizes", "ExternalSecrets in the cluster, comma-separated, not decreasing")
	f.Var(clients, "clients", "concurrent clients per round, comma-separated")
	f.IntVar(&cfg.Repeats, "repeats", cfg.Repeats, "rounds per (size, clients, webhook), interleaved")
	f.IntVar(&cfg.Requests, "requests", cfg.Requests, "measured dry-run CREATEs per round")
	f.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured dry-run CREATEs before each round")
	f.BoolVar(&cfg.SkipBench, "correctness-only", cfg.SkipBench, "run the correctness pass only")
	f.DurationVar(&cfg.Settle, "settle", cfg.Settle, "wait after relabelling a namespace before probing which webhook answers")
	f.Float64Var(&cfg.KyvernoQPS, "kyverno-qps", cfg.KyvernoQPS, "Kyverno's client rate limit (--clientRateLimitQPS; 0: its default, 100)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "peerbench-")
		if err != nil {
			return err
		}
		cfg.Dir = dir
	}
	fmt.Printf("# peerbench: logs, audit log and kubeconfigs in %s\n", cfg.Dir)
	return runAll(ctx, cfg)
}

// intList is a comma-separated list of integers flag.
type intList struct{ p *[]int }

func ints(p *[]int) intList { return intList{p} }

func (l intList) String() string {
	if l.p == nil {
		return ""
	}
	s := make([]string, len(*l.p))
	for i, n := range *l.p {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l intList) Set(v string) error {
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		out = append(out, n)
	}
	*l.p = out
	return nil
}
