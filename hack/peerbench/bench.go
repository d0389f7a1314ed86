package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// target is one way the API server admits the benchmark's Deployments: no webhook, credchain or
// Kyverno, each with the process and user whose cost is measured (none for no webhook).
type target struct {
	route string
	user  string
	p     *proc
}

// round is one measured batch of one target at one size and concurrency.
type round struct {
	size, clients, repeat int
	route                 string
	reviews               int
	p50, p99              time.Duration
	throughput            float64 // requests/s
	cpuPer1k              float64 // webhook CPU seconds per 1,000 reviews; 0 without a webhook
	rss                   int64   // webhook RSS at the end of the round, bytes
	apiCPUPer1k           float64 // kube-apiserver CPU seconds per 1,000 requests
	callsPerReview        float64 // the webhook's non-background API calls per review
	calls                 string  // the webhook's API calls in the round, by verb and resource
}

// bench runs the interleaved rounds. Owned by the main goroutine.
type bench struct {
	cfg       Config
	cl        *cluster
	vc        *verdictClient
	audit     *auditReader
	apiserver int // kube-apiserver's PID
	targets   []target
	have      int // ExternalSecrets in benchNamespace
	out       io.Writer
}

// run measures every size in turn (the cluster grows between them); at each size, repeat r runs
// every concurrency for every target, the targets' order rotated by r so none always goes first.
func (b *bench) run(ctx context.Context) ([]round, error) {
	var rounds []round
	d := deployment(benchNamespace, "order-service", "", benchSecrets...)
	for _, size := range b.cfg.Sizes {
		fmt.Fprintf(b.out, "# growing to %d ExternalSecrets in %s\n", size, benchNamespace)
		start := time.Now()
		if err := growExternalSecrets(ctx, b.cl.c, b.have, size); err != nil {
			return nil, err
		}
		b.have = size
		fmt.Fprintf(b.out, "# created in %s; letting the informers catch up\n", time.Since(start).Round(time.Second))
		time.Sleep(5 * time.Second)
		for rep := range b.cfg.Repeats {
			for _, c := range b.cfg.Clients {
				for i := range b.targets {
					t := b.targets[(i+rep)%len(b.targets)]
					r, err := b.round(ctx, t, d, size, c, rep)
					if err != nil {
						return nil, err
					}
					printRound(b.out, r)
					rounds = append(rounds, r)
				}
			}
		}
	}
	return rounds, nil
}

func (b *bench) round(ctx context.Context, t target, d *appsv1.Deployment, size, clients, rep int) (round, error) {
	r := round{size: size, clients: clients, repeat: rep, route: t.route, reviews: b.cfg.Requests}
	if err := route(ctx, b.cl, b.vc, b.cfg.Settle, t.route, benchNamespace); err != nil {
		return r, err
	}
	if err := runLoad(ctx, b.cl.kube, d, b.cfg.Warmup, clients).err(); err != nil {
		return r, fmt.Errorf("%s warm-up: %w", t.route, err)
	}
	if _, err := b.audit.next(); err != nil {
		return r, err
	}
	w0, a0, err := b.usage(t)
	if err != nil {
		return r, err
	}
	l := runLoad(ctx, b.cl.kube, d, b.cfg.Requests, clients)
	w1, a1, err := b.usage(t)
	if err != nil {
		return r, err
	}
	if err := l.err(); err != nil {
		return r, fmt.Errorf("%s round (%d ExternalSecrets, %d clients): %w", t.route, size, clients, err)
	}
	calls, err := b.audit.next()
	if err != nil {
		return r, err
	}
	per1k := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(b.cfg.Requests) }
	r.p50, r.p99 = percentile(l.latencies, 0.50), percentile(l.latencies, 0.99)
	r.throughput = float64(b.cfg.Requests) / l.wall.Seconds()
	r.apiCPUPer1k = per1k(a1.cpu - a0.cpu)
	if t.p != nil {
		r.cpuPer1k, r.rss = per1k(w1.cpu-w0.cpu), w1.rss
		r.callsPerReview = float64(calls.reviewCalls(t.user)) / float64(b.cfg.Requests)
		r.calls = calls.describe(t.user)
	}
	return r, nil
}

// usage reads the target's webhook process (zero without one) and the API server.
func (b *bench) usage(t target) (webhook, apiserver usage, err error) {
	if t.p != nil {
		if webhook, err = readUsage(t.p.cmd.Process.Pid); err != nil {
			return webhook, apiserver, fmt.Errorf("%s: %w", t.p.name, err)
		}
	}
	apiserver, err = readUsage(b.apiserver)
	return webhook, apiserver, err
}

// findProcess returns the PID of the process whose command line contains marker (the API
// server's own audit log path: unique to this run).
func findProcess(marker string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), marker) && strings.Contains(string(cmdline), "kube-apiserver") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no kube-apiserver process with %s on its command line", marker)
}
