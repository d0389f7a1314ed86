package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/credchain/credchain/internal/testenv"
)

// kyvernoNamespace is where Kyverno keeps its configuration, certificates and leases (the chart's
// default namespace; KYVERNO_NAMESPACE).
const kyvernoNamespace = "kyverno"

// kyvernoResourceFilters are the chart's generic defaults (values.yaml config.resourceFilters
// without the entries naming Kyverno's own objects, which do not exist out of cluster): a default
// install does not review ReplicaSets or Events at all.
var kyvernoResourceFilters = []string{"[Event,*,*]", "[*/*,kube-system,*]", "[*/*,kube-public,*]", "[*/*,kube-node-lease,*]",
	"[Node,*,*]", "[Node/?*,*,*]", "[APIService,*,*]", "[APIService/?*,*,*]", "[TokenReview,*,*]", "[SubjectAccessReview,*,*]",
	"[SelfSubjectAccessReview,*,*]", "[Binding,*,*]", "[Pod/binding,*,*]", "[ReplicaSet,*,*]", "[ReplicaSet/?*,*,*]",
	"[EphemeralReport,*,*]", "[ClusterEphemeralReport,*,*]"}

//go:embed policy.yaml
var kyvernoPolicy []byte

// startKyverno runs Kyverno's admission controller out of cluster the way its --serverIP flag
// intends: it issues its own CA and serving certificate (with the loopback IP as a SAN) into
// Secrets in kyvernoNamespace and registers its webhooks by URL at serverIP. Its configuration
// ConfigMap is the chart's defaults, plus a namespaceSelector that narrows its resource webhooks
// to namespaces labelled selectorLabel=kyverno. Then the ClusterPolicy is installed and the
// function waits until Kyverno reports it ready and has registered a webhook for it.
func startKyverno(ctx context.Context, cl *cluster, cfg Config) (*proc, error) {
	addr, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	if err := kyvernoConfig(ctx, cl); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	_, metricsPort, _ := strings.Cut(metricsAddr, ":")
	svc := "kyverno-svc." + kyvernoNamespace + ".svc"
	args := []string{"--kubeconfig=" + cl.kubeconfigs[userKyverno], "--serverIP=" + addr,
		"--webhookServerHost=" + host, "--webhookServerPort=" + port,
		"--caSecretName=" + svc + ".kyverno-tls-ca", "--tlsSecretName=" + svc + ".kyverno-tls-pair",
		"--metricsPort=" + metricsPort, "--controllerRuntimeMetricsAddress=0", "--loggingFormat=text"}
	if cfg.KyvernoQPS > 0 {
		args = append(args, fmt.Sprintf("--clientRateLimitQPS=%g", cfg.KyvernoQPS), fmt.Sprintf("--clientRateLimitBurst=%d", int(2*cfg.KyvernoQPS)))
	}
	env := []string{"KYVERNO_NAMESPACE=" + kyvernoNamespace, "KYVERNO_POD_NAME=kyverno-peerbench",
		"KYVERNO_SERVICEACCOUNT_NAME=kyverno", "KYVERNO_DEPLOYMENT=kyverno", "KYVERNO_SVC=kyverno-svc",
		"INIT_CONFIG=kyverno", "METRICS_CONFIG=kyverno-metrics"}
	p, err := startProc("kyverno", filepath.Join(cfg.Dir, "kyverno.log"), env, cfg.Kyverno, args...)
	if err != nil {
		return nil, err
	}
	if err := p.waitHTTP(ctx, "https://"+addr+"/health/readiness", 3*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	if err := installPolicy(ctx, cl, p); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// kyvernoConfig creates Kyverno's namespace and its ConfigMap.
func kyvernoConfig(ctx context.Context, cl *cluster) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kyvernoNamespace}}
	if err := cl.c.Create(ctx, ns); err != nil {
		return err
	}
	webhooks, err := json.Marshal(map[string]any{"namespaceSelector": metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: selectorLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{routeKyverno}}}}})
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kyverno", Namespace: kyvernoNamespace}, Data: map[string]string{
		"resourceFilters":               strings.Join(kyvernoResourceFilters, ""),
		"excludeGroups":                 "system:nodes",
		"defaultRegistry":               "docker.io",
		"enableDefaultRegistryMutation": "true",
		"generateSuccessEvents":         "false",
		"webhooks":                      string(webhooks),
	}}
	return cl.c.Create(ctx, cm)
}

// installPolicy creates the ClusterPolicy (policy.yaml, the one docs/kyverno.md shows) and waits
// until Kyverno reports it Ready and its validating webhook lists Deployments.
func installPolicy(ctx context.Context, cl *cluster, p *proc) error {
	var m map[string]any
	if err := yaml.Unmarshal(kyvernoPolicy, &m); err != nil {
		return fmt.Errorf("policy.yaml: %w", err)
	}
	pol := &unstructured.Unstructured{Object: m}
	if err := cl.c.Create(ctx, pol); err != nil {
		return fmt.Errorf("installing the ClusterPolicy: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ready, hooked, err := policyState(ctx, cl, pol.GetName())
		if err == nil && ready && hooked {
			return nil
		}
		if err := p.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kyverno: ClusterPolicy %s ready=%v, webhook for deployments=%v after 2m (%v):\n%s", pol.GetName(), ready, hooked, err, p.tail())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// policyState reports the ClusterPolicy's Ready condition and whether Kyverno's resource
// validating webhook configuration has a rule for deployments yet.
func policyState(ctx context.Context, cl *cluster, name string) (ready, hooked bool, err error) {
	pol := &unstructured.Unstructured{}
	pol.SetAPIVersion("kyverno.io/v1")
	pol.SetKind("ClusterPolicy")
	if err := cl.c.Get(ctx, clientKey("", name), pol); err != nil {
		return false, false, err
	}
	conds, _, _ := unstructured.NestedSlice(pol.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" && m["status"] == "True" {
			ready = true
		}
	}
	vwc, err := cl.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "kyverno-resource-validating-webhook-cfg", metav1.GetOptions{})
	if err != nil {
		return ready, false, err
	}
	for _, h := range vwc.Webhooks {
		for _, r := range h.Rules {
			for _, res := range r.Resources {
				if res == "deployments" {
					hooked = true
				}
			}
		}
	}
	return ready, hooked, nil
}
