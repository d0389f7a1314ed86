package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// deployment is the measured workload: the shape of BenchmarkDecide's (two containers, probes,
// env) with the given pull secrets and ServiceAccount.
func deployment(ns, name, serviceAccount string, pullSecrets ...string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	refs := make([]corev1.LocalObjectReference, len(pullSecrets))
	for i, s := range pullSecrets {
		refs[i] = corev1.LocalObjectReference{Name: s}
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}}
	container := func(n, image string, port int32) corev1.Container {
		return corev1.Container{Name: n, Image: image, ReadinessProbe: probe, LivenessProbe: probe,
			Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "REGION", Value: "eu-west-1"}},
			Ports: []corev1.ContainerPort{{ContainerPort: port}}}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{ServiceAccountName: serviceAccount, ImagePullSecrets: refs,
					Containers: []corev1.Container{container("app", "registry.example.com/order-service:1.4.2", 8080),
						container("sidecar", "registry.example.com/envoy:1.31", 9901)}},
			},
		},
	}
}

var dryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

// load is the outcome of one batch of dry-run CREATEs.
type load struct {
	latencies []time.Duration // one per request, in completion order
	wall      time.Duration
	errors    int // requests the API server refused (none expected: every webhook admits)
	firstErr  error
}

// runLoad sends n server-side dry-run CREATEs of d from c concurrent clients and times each.
func runLoad(ctx context.Context, kube kubernetes.Interface, d *appsv1.Deployment, n, c int) load {
	var (
		next    atomic.Int64
		mu      sync.Mutex
		out     = load{latencies: make([]time.Duration, 0, n)}
		wg      sync.WaitGroup
		deploys = kube.AppsV1().Deployments(d.Namespace)
	)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/c+1)
			var errs int
			var first error
			for next.Add(1) <= int64(n) {
				t := time.Now()
				_, err := deploys.Create(ctx, d, dryRun)
				local = append(local, time.Since(t))
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			out.latencies = append(out.latencies, local...)
			out.errors += errs
			if out.firstErr == nil {
				out.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.wall = time.Since(start)
	return out
}

func (l load) err() error {
	if l.errors == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d requests failed, the first: %w", l.errors, len(l.latencies), l.firstErr)
}
