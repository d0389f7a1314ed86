package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// probeSecret is a pull secret no ExternalSecret writes: a CREATE naming it is what tells the
// webhooks apart. credchain admits a new reference with a warning (its ExternalSecret may be
// applied next), Kyverno's policy denies it (no ExternalSecret of that name), and without a
// webhook it is admitted silently.
const probeSecret = "peerbench-probe-unbacked"

// warningLog collects the API server's Warning headers of one client (the webhooks' warnings
// reach kubectl this way).
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, text)
	w.mu.Unlock()
}

// take returns the warnings since the last take.
func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// verdictClient sends single requests and reports the webhook's verdict with its warnings.
type verdictClient struct {
	kube     kubernetes.Interface
	warnings *warningLog
}

func newVerdictClient(cfg *rest.Config) (*verdictClient, error) {
	w := &warningLog{}
	c := rest.CopyConfig(cfg)
	c.WarningHandler = w
	kube, err := kubernetes.NewForConfig(c)
	return &verdictClient{kube: kube, warnings: w}, err
}

// route labels the namespaces so that only webhook (routeNone, routeCredchain, routeKyverno) is
// called for them, then probes benchNamespace until the answer shows that webhook and no other.
func route(ctx context.Context, cl *cluster, vc *verdictClient, settle time.Duration, webhook string, namespaces ...string) error {
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, selectorLabel, webhook)
	for _, ns := range namespaces {
		if _, err := cl.kube.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("routing namespace %s to %s: %w", ns, webhook, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(settle)
		got, err := probe(ctx, vc, namespaces[0])
		if got == webhook {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("routing to %s: after 30s the probe is still answered by %s (%v)", webhook, got, err)
		}
	}
}

// probe names the webhook answering in ns by its verdict on probeSecret.
func probe(ctx context.Context, vc *verdictClient, ns string) (string, error) {
	vc.warnings.take()
	_, err := vc.kube.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "peerbench-probe", "", probeSecret), dryRun)
	warns := strings.Join(vc.warnings.take(), "\n")
	switch {
	case err != nil && strings.Contains(err.Error(), "require-synced-pull-secrets"):
		return routeKyverno, nil
	case err != nil:
		return "", err
	case strings.Contains(warns, probeSecret):
		return routeCredchain, nil
	default:
		return routeNone, nil
	}
}
