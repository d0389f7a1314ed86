package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/events"
)

// benchCluster fills real client-go indexers (the same stores and index functions the informers
// use in production) with n ExternalSecrets, n ServiceAccounts and n namespaces' worth of objects.
func benchCluster(b *testing.B, n int) *IndexLookup {
	b.Helper()
	es := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, ExternalSecretIndexers())
	sa := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	ev := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, EventIndexers())
	created := metav1.NewTime(time.Now().Add(-24 * time.Hour))
	for i := range n {
		ns := fmt.Sprintf("team-%d", i%25)
		e := &ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("es-%d", i), CreationTimestamp: created}}
		e.Spec.Target.Name = fmt.Sprintf("regcred-%d", i)
		e.Spec.Target.Template = &chain.ExternalSecretTemplate{Type: chain.SecretTypeDockerConfigJSON}
		e.Status.Binding.Name = e.Spec.Target.Name
		e.Spec.RefreshInterval = &metav1.Duration{Duration: time.Hour}
		e.Status.RefreshTime = metav1.Now()
		e.Status.Conditions = []chain.ExternalSecretCondition{{Type: "Ready", Status: "True", Reason: "SecretSynced", LastTransitionTime: created}}
		if err := es.Add(e); err != nil {
			b.Fatal(err)
		}
		s := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("sa-%d", i)}}
		if i%2 == 0 {
			s.ImagePullSecrets = []corev1.LocalObjectReference{{Name: fmt.Sprintf("regcred-%d", i)}}
		}
		if err := sa.Add(s); err != nil {
			b.Fatal(err)
		}
	}
	return &IndexLookup{ExternalSecrets: es, ServiceAccounts: sa, Events: ev}
}

// benchDeployment is a realistic Deployment (3 pull secrets, 2 containers, probes, env) as the API
// server sends it in an AdmissionReview.
func benchDeployment(ns string, secrets []string, sa string) []byte {
	d := deploymentFor(ns, "order-service", sa, secrets)
	raw, _ := json.Marshal(d)
	return raw
}

func deploymentFor(ns, name, sa string, secrets []string) *appsv1.Deployment {
	labels := map[string]string{"app": name, "team": "orders", "app.kubernetes.io/version": "1.4.2"}
	c := corev1.Container{
		Name: "app", Image: "registry.internal:5000/" + name + ":1.4.2",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "DB_HOST", Value: "postgres.prod.svc"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz"}}, PeriodSeconds: 5},
	}
	sidecar := c
	sidecar.Name, sidecar.Image = "proxy", "registry.internal:5000/envoy:1.31"
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: map[string]string{"deployment.kubernetes.io/revision": "7"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{c, sidecar}},
			},
		},
	}
	for _, s := range secrets {
		d.Spec.Template.Spec.ImagePullSecrets = append(d.Spec.Template.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return d
}

// reportP99 records p50/p99 of per-iteration durations.
func reportLatency(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkDecide measures one Deployment review's work inside the handler — extracting the pod refs
// from the object's JSON and deciding 3 pull secrets (plus one inherited from the ServiceAccount)
// against n cached ExternalSecrets and ServiceAccounts. The allocation count must be the same for
// every n: lookups are index hits, never scans.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("cached=%d", n), func(b *testing.B) {
			l := benchCluster(b, n)
			d := &Decider{Lookup: l, Policy: Policy{Unmanaged: UnmanagedDeny, GracePeriod: 2 * time.Minute, StaleFactor: 3}}
			// The three ExternalSecrets exist in both cache sizes: i ≡ 17 (mod 25) lives in team-17.
			// sa-92 carries a pull secret too, which Kubernetes does not give a template that names
			// its own, so it is not looked at.
			ns := "team-17"
			raw := benchDeployment(ns, []string{"regcred-17", "regcred-42", "regcred-67"}, "sa-92")
			now := time.Now()
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				refs, err := ExtractPodRefs("Deployment", raw)
				if err != nil {
					b.Fatal(err)
				}
				dec := d.Decide(ns, refs, now)
				lat = append(lat, time.Since(start))
				if len(dec.Denials) != 0 || dec.Reason != ReasonSynced {
					b.Fatalf("unexpected decision %+v", dec)
				}
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkDecideBaseline is the same-process reference for BenchmarkDecide: decoding the same
// Deployment into appsv1.Deployment with encoding/json, which is what a webhook built on a typed
// validator does before it can look at anything.
func BenchmarkDecideBaseline(b *testing.B) {
	raw := benchDeployment("team-17", []string{"regcred-17", "regcred-42", "regcred-67"}, "sa-92")
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		var d appsv1.Deployment
		if err := json.Unmarshal(raw, &d); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// BenchmarkAdmissionHTTPS drives the real controller-runtime webhook server over TLS with the same
// AdmissionReview corpus against two paths: credchain's handler (with its events and metrics
// decorators, 10,000 ExternalSecrets cached) and a no-op handler that always allows. Rounds alternate between the two
// so machine noise hits both; it reports each one's p99 and throughput and the p99 ratio.
func BenchmarkAdmissionHTTPS(b *testing.B) {
	const (
		workers   = 8
		perRound  = 4000
		rounds    = 3
		cachedObj = 10_000
	)
	l := benchCluster(b, cachedObj)
	synced := &atomic.Bool{}
	synced.Store(true)
	h := &Handler{
		Decider:            &Decider{Lookup: l, Policy: Policy{Unmanaged: UnmanagedDeny, GracePeriod: 2 * time.Minute, StaleFactor: 3}},
		DefaultEnforcement: EnforcementEnforce, Synced: synced, Exempt: map[string]bool{},
	}
	certDir, pool := selfSigned(b)
	port := freePort(b)
	srv := crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir})
	// The production decorator chain: events outside metrics outside the handler.
	em := &EventEmitter{Notifier: events.NotifierFunc(func(context.Context, events.Event) error { return nil })}
	srv.Register("/validate", &admission.Webhook{Handler: AsHandler(WithEvents(em, WithMetrics(NewMetrics(nil), h.Review)))})
	srv.Register("/noop", &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Start(ctx) }()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: workers}}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	waitServing(b, hc, base+"/noop")

	// Corpus: 64 CREATE reviews of Deployments in different namespaces, 3 pull secrets each.
	var corpus [][]byte
	for i := range 64 {
		ns := fmt.Sprintf("team-%d", i%25)
		obj := benchDeployment(ns, []string{fmt.Sprintf("regcred-%d", i), fmt.Sprintf("regcred-%d", i+25), fmt.Sprintf("regcred-%d", i+50)}, fmt.Sprintf("sa-%d", i+75))
		review := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID: "00000000-0000-0000-0000-000000000001", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
				Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
				Namespace: ns, Name: "order-service", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: obj},
			},
		}
		raw, _ := json.Marshal(review)
		corpus = append(corpus, raw)
	}
	run := func(path string) ([]time.Duration, time.Duration) {
		lat := make([]time.Duration, perRound)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= perRound {
						return
					}
					t0 := time.Now()
					resp, err := hc.Post(base+path, "application/json", bytes.NewReader(corpus[i%int64(len(corpus))]))
					if err != nil {
						b.Error(err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					lat[i] = time.Since(t0)
					if !bytes.Contains(body, []byte(`"allowed":true`)) {
						b.Errorf("%s: unexpected response %s", path, body)
						return
					}
				}
			})
		}
		wg.Wait()
		return lat, time.Since(start)
	}
	var noopLat, ccLat []time.Duration
	var noopTime, ccTime time.Duration
	b.ResetTimer()
	for b.Loop() {
		noopLat, ccLat, noopTime, ccTime = nil, nil, 0, 0
		run("/noop") // warm-up: TLS sessions, connection pool
		for range rounds {
			l, d := run("/noop")
			noopLat, noopTime = append(noopLat, l...), noopTime+d
			l, d = run("/validate")
			ccLat, ccTime = append(ccLat, l...), ccTime+d
		}
	}
	b.StopTimer()
	slices.Sort(noopLat)
	slices.Sort(ccLat)
	p99 := func(d []time.Duration) float64 { return float64(d[len(d)*99/100].Microseconds()) }
	b.ReportMetric(p99(noopLat), "noop-p99-µs")
	b.ReportMetric(p99(ccLat), "credchain-p99-µs")
	b.ReportMetric(p99(ccLat)/p99(noopLat), "p99-ratio")
	b.ReportMetric(float64(len(noopLat))/noopTime.Seconds(), "noop-reviews/s")
	b.ReportMetric(float64(len(ccLat))/ccTime.Seconds(), "credchain-reviews/s")
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitServing(b *testing.B, hc *http.Client, url string) {
	for range 100 {
		resp, err := hc.Post(url, "application/json", bytes.NewBufferString("{}"))
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("webhook server did not start")
}

// selfSigned writes an ECDSA P-256 serving certificate for 127.0.0.1 (as certs/ will issue) into a
// temp dir and returns the dir and a pool trusting it.
func selfSigned(b *testing.B) (string, *x509.CertPool) { return selfSignedFor(b) }

func selfSignedFor(b testing.TB) (string, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "credchain-bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return dir, pool
}
