package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// benchNamespace holds the measured workloads and every ExternalSecret of the load rounds.
const benchNamespace = "peerbench"

// benchSecrets are the three pull secrets of the measured Deployment; each has a Ready
// ExternalSecret of the same name (the case both webhooks admit).
var benchSecrets = []string{"regcred-a", "regcred-b", "regcred-c"}

// esSpec describes one ExternalSecret fixture and the status ESO would have given it.
type esSpec struct {
	name       string
	targetName string // spec.target.name; "" leaves it to default to name
	// ready is the Ready condition's status, "" for none (never reconciled).
	ready, reason, message string
	binding                string // status.binding.name; "" for none
	synced                 bool   // status.refreshTime set (a sync succeeded once)
}

// readySpec is a healthy ExternalSecret writing the Secret of its own name.
func readySpec(name string) esSpec {
	return esSpec{name: name, ready: "True", reason: "SecretSynced", message: "secret synced", binding: name, synced: true}
}

// createExternalSecret creates the ExternalSecret (ESO v1) and, when it has a status, writes it
// through the status subresource as ESO does.
func createExternalSecret(ctx context.Context, c client.Client, ns string, s esSpec) error {
	target := map[string]any{"creationPolicy": "Owner", "template": map[string]any{"type": "kubernetes.io/dockerconfigjson"}}
	if s.targetName != "" {
		target["name"] = s.targetName
	}
	es := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": s.name, "namespace": ns},
		"spec": map[string]any{
			"refreshInterval": "1h",
			"secretStoreRef":  map[string]any{"kind": "ClusterSecretStore", "name": "vault"},
			"target":          target,
			"data": []any{map[string]any{"secretKey": ".dockerconfigjson",
				"remoteRef": map[string]any{"key": "registry/" + s.name, "property": "dockerconfigjson"}}},
		},
	}}
	if err := c.Create(ctx, es); err != nil {
		return fmt.Errorf("creating ExternalSecret %s/%s: %w", ns, s.name, err)
	}
	if s.ready == "" {
		return nil
	}
	now := time.Now().UTC().Format(time.RFC3339)
	status := map[string]any{"conditions": []any{map[string]any{
		"type": "Ready", "status": s.ready, "reason": s.reason, "message": s.message, "lastTransitionTime": now}}}
	if s.binding != "" {
		status["binding"] = map[string]any{"name": s.binding}
	}
	if s.synced {
		status["refreshTime"] = now
		status["syncedResourceVersion"] = "1-0123456789abcdef"
	}
	es.Object["status"] = status
	if err := c.Status().Update(ctx, es); err != nil {
		return fmt.Errorf("setting the status of ExternalSecret %s/%s: %w", ns, s.name, err)
	}
	return nil
}

// growExternalSecrets adds Ready filler ExternalSecrets to benchNamespace until it holds n
// (counting the benchmark's own three), 16 at a time.
func growExternalSecrets(ctx context.Context, c client.Client, have, n int) error {
	var next atomic.Int64
	next.Store(int64(have))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				if err := createExternalSecret(ctx, c, benchNamespace, readySpec(fmt.Sprintf("filler-%05d", i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}

// warningEvent records what ESO v0.16.2 records when Vault refuses its read: a Warning Event
// (reason UpdateFailed) on the ExternalSecret carrying the provider's error, which the
// ExternalSecret's own Ready condition does not.
func warningEvent(ns, es, message string) *corev1.Event {
	now := metav1.Now()
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: es + ".", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Namespace: ns, Name: es},
		Type:           corev1.EventTypeWarning, Reason: "UpdateFailed", Message: message,
		Source:         corev1.EventSource{Component: "external-secrets"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
}
