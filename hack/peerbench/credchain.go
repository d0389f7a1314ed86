package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/credchain/credchain/internal/testenv"
)

// selectorLabel routes each namespace's admission requests to one webhook: both registrations
// select only namespaces whose label names them, so switching the label switches which webhook
// the API server calls, without re-registering anything between rounds.
const selectorLabel = "peerbench.credchain.io/webhook"

// Values of selectorLabel.
const (
	routeNone      = "none"
	routeCredchain = "credchain"
	routeKyverno   = "kyverno"
)

// startCredchain registers credchain with manifests/default's ValidatingWebhookConfiguration —
// called by URL on loopback instead of through its Service, and narrowed to namespaces labelled
// selectorLabel=credchain — and runs `credchain webhook` with self-managed certificates as its own
// user, delivering events to natsURL and the Slack stand-in whose URL is in slackFile.
func startCredchain(ctx context.Context, cl *cluster, cfg Config, natsURL, slackFile string) (*proc, error) {
	addr, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	health, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "credchain-system"}}
	if err := cl.c.Create(ctx, ns); err != nil {
		return nil, err
	}
	vwc, err := credchainRegistration(cfg.Manifests, addr)
	if err != nil {
		return nil, err
	}
	if err := cl.c.Create(ctx, vwc); err != nil {
		return nil, fmt.Errorf("registering credchain: %w", err)
	}
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"webhook", "--cert-mode=self",
		"--cert-dir=" + filepath.Join(cfg.Dir, "credchain-certs"), "--state-dir=" + filepath.Join(cfg.Dir, "credchain-state"),
		"--kubeconfig=" + cl.kubeconfigs[userCredchain], "--host=" + host, "--port=" + port, "--cert-dns-names=" + host,
		"--health-addr=" + health, "--metrics-addr=0",
		"--cluster=peerbench", "--nats-url=" + natsURL, "--nats-create-stream=true", "--slack-webhook-file=" + slackFile}
	p, err := startProc("credchain webhook", filepath.Join(cfg.Dir, "credchain.log"), []string{"POD_NAMESPACE=credchain-system"}, cfg.Credchain, args...)
	if err != nil {
		return nil, err
	}
	if err := p.waitHTTP(ctx, "http://"+health+"/readyz", 90*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// credchainRegistration is the install's registration, unchanged but for where it calls the
// webhook and the namespaces it selects (its own exclusions are kept).
func credchainRegistration(manifests, addr string) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	b, err := os.ReadFile(filepath.Join(manifests, "default", "validatingwebhookconfiguration.yaml"))
	if err != nil {
		return nil, err
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(b, &vwc); err != nil {
		return nil, fmt.Errorf("manifests/default/validatingwebhookconfiguration.yaml: %w", err)
	}
	if len(vwc.Webhooks) == 0 {
		return nil, fmt.Errorf("manifests/default/validatingwebhookconfiguration.yaml: no webhooks")
	}
	url := "https://" + addr + "/validate"
	for i := range vwc.Webhooks {
		h := &vwc.Webhooks[i]
		h.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
		if h.NamespaceSelector == nil {
			h.NamespaceSelector = &metav1.LabelSelector{}
		}
		h.NamespaceSelector.MatchExpressions = append(h.NamespaceSelector.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: selectorLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{routeCredchain}})
	}
	return &vwc, nil
}
