package certs_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/credchain/credchain/certs"
	"github.com/credchain/credchain/internal/testenv"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// servedSerial does a TLS handshake trusting only pool and returns the leaf's serial.
func servedSerial(addr string, pool *x509.CertPool, now func() time.Time) (string, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", Time: now})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// startAPIServer starts a real kube-apiserver with namespace credchain-system and the install's
// ValidatingWebhookConfiguration (no caBundle yet, as applied).
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
	testenv.KubebuilderAssets(t)
	env := testenv.Patient(&envtest.Environment{})
	cfg, err := env.Start()
	must(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	must(t, err)
	ctx := t.Context()
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "credchain-system"}}))
	raw, err := os.ReadFile(filepath.Join("..", "manifests", "default", "validatingwebhookconfiguration.yaml"))
	must(t, err)
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	must(t, yaml.Unmarshal(raw, &vwc))
	must(t, c.Create(ctx, &vwc))
	return c
}

// serve starts a webhook server reading certDir through controller-runtime's certwatcher, as
// webhook.Run does, until ctx ends, and returns its address.
func serve(t *testing.T, ctx context.Context, certDir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir})
	srv.Register("/validate", &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})})
	go func() { _ = srv.Start(ctx) }()
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// served does a TLS handshake trusting only pool and returns the leaf served.
func served(addr string, pool *x509.CertPool, now func() time.Time) (*x509.Certificate, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", Time: now})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestRotation: against a real kube-apiserver, the rotator issues a CA and an ECDSA P-256 serving
// certificate into a Secret, injects the CA into the install's ValidatingWebhookConfiguration, and
// renews the certificate when its renewal point passes; the running webhook server serves the new
// one without a restart. The clock is moved forward rather than the lifetime made seconds short:
// a seconds-long lifetime renews again while a loaded machine is still starting the server.
func TestRotation(t *testing.T) {
	c := startAPIServer(t)
	ctx := t.Context()

	certDir := t.TempDir()
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	rc := certs.Config{CertDir: certDir, DNSNames: []string{"localhost"}, CertLifetime: time.Hour,
		RenewBefore: 20 * time.Minute, CheckInterval: 100 * time.Millisecond}
	rc.SetDefaults()
	must(t, rc.Validate())
	r := &certs.Rotator{Config: rc, Client: c, Log: testr.New(t), Now: clock}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = r.RunLeader(rctx) }()
	go func() { _ = r.RunFiles(rctx) }()
	waitFor(t, "certificate files", 30*time.Second, r.Ready)

	var s corev1.Secret
	must(t, c.Get(ctx, types.NamespacedName{Namespace: "credchain-system", Name: "credchain-webhook-tls"}, &s))
	block, _ := pem.Decode(s.Data["tls.crt"])
	leaf, err := x509.ParseCertificate(block.Bytes)
	must(t, err)
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() || leaf.DNSNames[0] != "localhost" {
		t.Fatalf("leaf: %T %v", leaf.PublicKey, leaf.DNSNames)
	}
	waitFor(t, "caBundle injected", 30*time.Second, func() bool {
		var got admissionregistrationv1.ValidatingWebhookConfiguration
		must(t, c.Get(ctx, types.NamespacedName{Name: "credchain"}, &got))
		return bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, s.Data["ca.crt"])
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.Data["ca.crt"])

	addr := serve(t, rctx, certDir)
	var first string
	waitFor(t, "TLS server", 30*time.Second, func() bool { first, err = servedSerial(addr, pool, clock); return err == nil })
	if first != leaf.SerialNumber.String() {
		t.Fatalf("served serial %s, Secret's %s", first, leaf.SerialNumber)
	}

	// 45 minutes later the leaf has 15 of its 60 left, past the 20-minute renewal point.
	skew.Store(int64(45 * time.Minute))
	waitFor(t, "renewed certificate served without a restart", 30*time.Second, func() bool {
		got, err := servedSerial(addr, pool, clock)
		return err == nil && got != first
	})
	var renewed corev1.Secret
	must(t, c.Get(ctx, types.NamespacedName{Namespace: "credchain-system", Name: "credchain-webhook-tls"}, &renewed))
	if !bytes.Equal(renewed.Data["ca.crt"], s.Data["ca.crt"]) {
		t.Error("the CA was renewed although it had years left")
	}
}

// registrationPool reads the caBundle of the install's registration from the API server, checks
// every webhook carries the same one, and returns it as a TLS client's roots with its CA count.
func registrationPool(t *testing.T, c client.Client) (*x509.CertPool, int) {
	t.Helper()
	pool, n, err := readRegistrationPool(t.Context(), c)
	must(t, err)
	return pool, n
}

// readRegistrationPool is registrationPool for other goroutines than the test's.
func readRegistrationPool(ctx context.Context, c client.Client) (*x509.CertPool, int, error) {
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := c.Get(ctx, types.NamespacedName{Name: "credchain"}, &vwc); err != nil {
		return nil, 0, err
	}
	bundle := vwc.Webhooks[0].ClientConfig.CABundle
	for _, w := range vwc.Webhooks[1:] {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			return nil, 0, fmt.Errorf("webhook %s has another caBundle than %s", w.Name, vwc.Webhooks[0].Name)
		}
	}
	n := 0
	for b, rest := pem.Decode(bundle); b != nil; b, rest = pem.Decode(rest) {
		n++
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	return pool, n, nil
}

// TestRotationTwoReplicas: against a real kube-apiserver, two replicas (each its own cert dir sync
// and TLS server, one of them also the leader) go through a leaf renewal and a CA rotation while a
// TLS client trusting only the caBundle read from the ValidatingWebhookConfiguration — what the API
// server trusts — handshakes with both, all along:
//   - the leaf renewed with the same CA: both serve the new leaf, the registration is not written;
//   - then replica B's sync stops (a slow or partitioned replica) and the CA is rotated: A serves
//     a leaf of the new CA, B still the old CA's, and the caBundle trusts both;
//   - a restarted leader keeps the old CA in the caBundle (the Secret carries it); B catches up;
//   - once the old CA has expired it leaves the caBundle.
//
// A prober handshakes with both replicas every few milliseconds from before the rotation to the end;
// a handshake counts as failed only when neither the caBundle read just before it nor the one read
// just after trusts the leaf (a replica switching between the read and the dial is not a failure —
// the API server's own watch has that latency).
func TestRotationTwoReplicas(t *testing.T) {
	c := startAPIServer(t)
	ctx := t.Context()
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	// The CA lives 90 minutes, leaves 60, both renewed with 20 left: leaf 1 at 0, leaf 2 at 45m
	// (capped at the CA's 90m), the CA rotated at 75m with leaf 3, while leaf 2 is valid until 90m.
	config := func(certDir string) certs.Config {
		rc := certs.Config{CertDir: certDir, DNSNames: []string{"localhost"}, CALifetime: 90 * time.Minute,
			CertLifetime: time.Hour, RenewBefore: 20 * time.Minute, CheckInterval: 100 * time.Millisecond}
		rc.SetDefaults()
		must(t, rc.Validate())
		return rc
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := &certs.Rotator{Config: config(dirA), Client: c, Log: testr.New(t).WithName("a"), Now: clock}
	b := &certs.Rotator{Config: config(dirB), Client: c, Log: testr.New(t).WithName("b"), Now: clock}
	leaderCtx, stopLeader := context.WithCancel(ctx)
	go func() { _ = a.RunLeader(leaderCtx) }()
	go func() { _ = a.RunFiles(ctx) }()
	bCtx, stopB := context.WithCancel(ctx)
	go func() { _ = b.RunFiles(bCtx) }()
	waitFor(t, "certificate files on both replicas", 30*time.Second, func() bool { return a.Ready() && b.Ready() })
	addrA, addrB := serve(t, ctx, dirA), serve(t, ctx, dirB)

	secret := func() corev1.Secret {
		var s corev1.Secret
		must(t, c.Get(ctx, types.NamespacedName{Namespace: "credchain-system", Name: "credchain-webhook-tls"}, &s))
		return s
	}
	registrationVersion := func() string {
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		must(t, c.Get(ctx, types.NamespacedName{Name: "credchain"}, &vwc))
		return vwc.ResourceVersion
	}
	// servedBoth waits until both replicas serve a leaf accepted by want through the caBundle.
	servedBoth := func(what string, want func(replica string, leaf *x509.Certificate) bool) map[string]*x509.Certificate {
		t.Helper()
		got := map[string]*x509.Certificate{}
		var last string // why the last attempt failed
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			pool, _ := registrationPool(t, c)
			last = ""
			for replica, addr := range map[string]string{"A": addrA, "B": addrB} {
				leaf, err := served(addr, pool, clock)
				switch {
				case err != nil:
					last = fmt.Sprintf("replica %s: handshake trusting the caBundle: %v", replica, err)
				case !want(replica, leaf):
					last = fmt.Sprintf("replica %s serves serial %s", replica, leaf.SerialNumber)
				default:
					got[replica] = leaf
				}
			}
			if last == "" {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %s", what, last)
			}
		}
	}
	s1 := secret()
	ca1 := s1.Data["ca.crt"]
	leaf1 := servedBoth("both replicas serving the first leaf", func(_ string, leaf *x509.Certificate) bool {
		return bytes.Equal(leaf.Raw, pemDER(t, s1.Data["tls.crt"]))
	})["A"]
	if _, n := registrationPool(t, c); n != 1 {
		t.Fatalf("caBundle holds %d CAs after the first issue, want 1", n)
	}
	version := registrationVersion()

	// 45 minutes on, the leaf is renewed with the same CA: the caBundle stays as it was.
	skew.Store(int64(45 * time.Minute))
	leaf2 := servedBoth("both replicas serving the renewed leaf", func(_ string, leaf *x509.Certificate) bool {
		return !leaf.Equal(leaf1)
	})["A"]
	if s := secret(); !bytes.Equal(s.Data["ca.crt"], ca1) || len(s.Data["ca-previous.crt"]) != 0 {
		t.Fatal("the CA changed with a leaf renewal")
	}
	if v := registrationVersion(); v != version {
		t.Errorf("the registration was written (resourceVersion %s → %s) for a leaf renewed with the same CA", version, v)
	}

	// Replica B stops syncing, still serving leaf 2; the prober watches both from now on.
	stopB()
	var probes, failures atomic.Int64
	var firstFailure atomic.Pointer[string]
	probeCtx, stopProbe := context.WithCancel(ctx)
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		for probeCtx.Err() == nil {
			for replica, addr := range map[string]string{"A": addrA, "B": addrB} {
				before, _, err := readRegistrationPool(probeCtx, c)
				if err != nil {
					continue // the test's end cancelled the read
				}
				if _, err = served(addr, before, clock); err != nil {
					after, _, rerr := readRegistrationPool(probeCtx, c)
					if rerr != nil {
						continue
					}
					if _, err2 := served(addr, after, clock); err2 != nil {
						failures.Add(1)
						msg := fmt.Sprintf("replica %s: %v", replica, err)
						firstFailure.CompareAndSwap(nil, &msg)
					}
				}
				probes.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// 75 minutes on, the CA has 15 of its 90 minutes left: the leader rotates it.
	skew.Store(int64(75 * time.Minute))
	got := servedBoth("A serving a leaf of the new CA while B still serves the old one", func(replica string, leaf *x509.Certificate) bool {
		if replica == "B" {
			return leaf.Equal(leaf2)
		}
		return !leaf.Equal(leaf2) && !leaf.Equal(leaf1)
	})
	s3 := secret()
	if bytes.Equal(s3.Data["ca.crt"], ca1) {
		t.Fatal("the CA was not rotated")
	}
	if !bytes.Equal(s3.Data["ca-previous.crt"], ca1) {
		t.Errorf("ca-previous.crt is not the old CA:\n%s", s3.Data["ca-previous.crt"])
	}
	if _, n := registrationPool(t, c); n != 2 {
		t.Errorf("caBundle holds %d CAs across the rotation, want 2", n)
	}
	if err := got["A"].CheckSignatureFrom(parseCertPEM(t, s3.Data["ca.crt"])); err != nil {
		t.Errorf("replica A's leaf is not the new CA's: %v", err)
	}

	// A new leader knows the old CA from the Secret alone.
	stopLeader()
	leader2 := &certs.Rotator{Config: config(dirA), Client: c, Log: testr.New(t).WithName("leader2"), Now: clock}
	go func() { _ = leader2.RunLeader(ctx) }()
	time.Sleep(time.Second) // ten of its checks
	if _, n := registrationPool(t, c); n != 2 {
		t.Errorf("caBundle holds %d CAs after the leader restarted, want 2", n)
	}
	if got := servedBoth("B still serving the old CA's leaf", func(replica string, leaf *x509.Certificate) bool {
		return replica != "B" || leaf.Equal(leaf2)
	}); !got["B"].Equal(leaf2) {
		t.Fatal("B moved on")
	}

	// B catches up.
	go func() { _ = b.RunFiles(ctx) }()
	servedBoth("B serving the new CA's leaf", func(_ string, leaf *x509.Certificate) bool {
		return leaf.Equal(got["A"])
	})
	stopProbe()
	<-probed
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d handshakes trusting the caBundle failed across the rotation; first: %s", n, probes.Load(), *firstFailure.Load())
	} else {
		t.Logf("%d handshakes trusting the caBundle across the rotation, none failed", probes.Load())
	}

	// 91 minutes on, the old CA and every leaf it signed have expired: it leaves the caBundle.
	skew.Store(int64(91 * time.Minute))
	waitFor(t, "the expired CA dropped from the caBundle", 30*time.Second, func() bool {
		_, n := registrationPool(t, c)
		return n == 1
	})
	servedBoth("both replicas serving the new CA's leaf, trusted by the new caBundle", func(_ string, leaf *x509.Certificate) bool {
		return leaf.Equal(got["A"])
	})
}

func pemDER(t *testing.T, b []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("no PEM block in %q", b)
	}
	return block.Bytes
}

func parseCertPEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(pemDER(t, b))
	must(t, err)
	return c
}
