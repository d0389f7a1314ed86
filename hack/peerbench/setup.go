package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// runAll brings the servers up, runs the correctness pass and the benchmark, and prints both.
func runAll(ctx context.Context, cfg Config) error {
	fmt.Printf("# %s\n", conditions())
	cl, err := startCluster(cfg.Dir)
	if err != nil {
		return err
	}
	defer cl.stop()
	sink, err := startSink(cfg.Dir)
	if err != nil {
		return err
	}
	defer sink.stop()
	for _, ns := range []string{benchNamespace, casesNamespace} {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{selectorLabel: routeNone}}}
		if err := cl.c.Create(ctx, n); err != nil {
			return err
		}
		if err := createExternalSecret(ctx, cl.c, ns, probeFixture); err != nil {
			return err
		}
	}
	for _, s := range benchSecrets {
		if err := createExternalSecret(ctx, cl.c, benchNamespace, readySpec(s)); err != nil {
			return err
		}
	}
	if err := setupCases(ctx, cl); err != nil {
		return err
	}
	fmt.Println("# starting credchain webhook")
	cc, err := startCredchain(ctx, cl, cfg, sink.srv.ClientURL(), sink.slackFile)
	if err != nil {
		return err
	}
	defer cc.stop()
	fmt.Println("# starting kyverno (out of cluster; it issues its certificates and registers its webhooks)")
	start := time.Now()
	ky, err := startKyverno(ctx, cl, cfg)
	if err != nil {
		return err
	}
	defer ky.stop()
	fmt.Printf("# kyverno ready, policy installed and its webhook registered in %s\n", time.Since(start).Round(time.Second))
	if err := printRegistrations(ctx, cl); err != nil {
		return err
	}
	vc, err := newVerdictClient(cl.cfg)
	if err != nil {
		return err
	}
	if err := correctness(ctx, cl, vc, sink, cfg.Settle, os.Stdout); err != nil {
		return err
	}
	if cfg.SkipBench {
		return nil
	}
	return measure(ctx, cfg, cl, vc, cc, ky)
}

func measure(ctx context.Context, cfg Config, cl *cluster, vc *verdictClient, cc, ky *proc) error {
	pid, err := findProcess(cl.auditLog)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, cl: cl, vc: vc, audit: &auditReader{path: cl.auditLog}, apiserver: pid, have: len(benchSecrets) + 1, out: os.Stdout, // + probeFixture
		targets: []target{{route: routeNone}, {route: routeCredchain, user: userCredchain, p: cc}, {route: routeKyverno, user: userKyverno, p: ky}}}
	fmt.Printf("\n# benchmark: sizes %v, clients %v, %d repeats of %d dry-run CREATEs (+%d warm-up) per round\n",
		cfg.Sizes, cfg.Clients, cfg.Repeats, cfg.Requests, cfg.Warmup)
	rounds, err := b.run(ctx)
	if err != nil {
		return err
	}
	printSummary(os.Stdout, rounds, cfg)
	fmt.Printf("\n# finished: %s\n", conditions())
	return nil
}

// printRegistrations lists every admission webhook registered for Deployments, so the report
// shows what the API server calls (Kyverno registers its own from the policies).
func printRegistrations(ctx context.Context, cl *cluster) error {
	reg := cl.kube.AdmissionregistrationV1()
	vwcs, err := reg.ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	mwcs, err := reg.MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	show := func(kind, cfg, hook string, rules []admissionregistrationv1.RuleWithOperations, sel *metav1.LabelSelector, fp *admissionregistrationv1.FailurePolicyType) {
		for _, r := range rules {
			if slices.Contains(r.Resources, "deployments") || slices.Contains(r.Resources, "*") {
				fmt.Printf("# registered: %s %s webhook %s, failurePolicy %s, namespaceSelector %s\n",
					kind, cfg, hook, ptr.Deref(fp, ""), metav1.FormatLabelSelector(sel))
				return
			}
		}
	}
	for _, c := range vwcs.Items {
		for _, h := range c.Webhooks {
			show("validating", c.Name, h.Name, h.Rules, h.NamespaceSelector, h.FailurePolicy)
		}
	}
	for _, c := range mwcs.Items {
		for _, h := range c.Webhooks {
			show("mutating", c.Name, h.Name, h.Rules, h.NamespaceSelector, h.FailurePolicy)
		}
	}
	return nil
}

// conditions describes the machine and its load, for the report.
func conditions() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%s, %s, %d CPUs (%s), Linux %s, load average %s", time.Now().UTC().Format(time.RFC3339), runtime.Version(),
		runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), strings.Join(strings.Fields(string(load))[:3], " "))
}

// insecureTransport is for health endpoints only: they are probed before the caller knows the
// CA a webhook issued for itself.
func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // health probe only
}

func clientKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
