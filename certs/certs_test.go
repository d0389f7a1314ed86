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

// TestRotation: against a real kube-apiserver, the rotator issues a CA and an ECDSA P-256 serving
// certificate into a Secret, injects the CA into the install's ValidatingWebhookConfiguration, and
// renews the certificate when its renewal point passes; the running webhook server serves the new
// one without a restart. The clock is moved forward rather than the lifetime made seconds short:
// a seconds-long lifetime renews again while a loaded machine is still starting the server.
func TestRotation(t *testing.T) {
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

	// The webhook server reads CertDir through controller-runtime's certwatcher.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir})
	srv.Register("/validate", &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})})
	go func() { _ = srv.Start(rctx) }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
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
