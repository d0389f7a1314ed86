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

// probeSecret is the pull secret of a failing ExternalSecret (probeFixture) in every routed
// namespace: a CREATE naming it is what tells the webhooks apart.
const probeSecret = "peerbench-probe-failing"

// probeFixture is the ExternalSecret behind probeSecret: synced once, failing now.
var probeFixture = esSpec{name: probeSecret, ready: "False", reason: "SecretSyncedError",
	message: "could not get secret data from provider", binding: probeSecret, synced: true}

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

// probe names the webhook answering in ns by its verdict on probeSecret: each denies it in its
// own words, and without a webhook it is admitted.
func probe(ctx context.Context, vc *verdictClient, ns string) (string, error) {
	vc.warnings.take()
	_, err := vc.kube.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "peerbench-probe", "", probeSecret), dryRun)
	vc.warnings.take()
	switch {
	case err == nil:
		return routeNone, nil
	case strings.Contains(err.Error(), "require-synced-pull-secrets"):
		return routeKyverno, nil
	case strings.Contains(err.Error(), "pullsecrets.credchain.io"):
		return routeCredchain, nil
	default:
		return "", err
	}
}
