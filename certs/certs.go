// Package certs manages the webhook's serving certificate itself: a CA and an ECDSA P-256 leaf for
// the Service's DNS names, kept in a Secret, renewed well before expiry by the leader, written to
// the certificate directory on every replica (controller-runtime's certwatcher reloads it without a
// restart) and injected as caBundle into the ValidatingWebhookConfiguration.
//
// Rotation never breaks TLS for a replica that has not caught up yet:
//   - A leaf renewed with the same CA changes nothing in the caBundle.
//   - When the CA is renewed (it has less than RenewBefore left, or its key is unreadable), the old
//     CA certificate moves to the Secret's ca-previous.crt and stays in the caBundle next to the new
//     one until its own NotAfter. No leaf the old CA signed outlives it (leaves are capped at their
//     CA's expiry, and a chain through an expired CA fails anyway), so that is exactly as long as any
//     replica — slow, partitioned, restarted from an old cert dir — may still serve one. With the
//     defaults the overlap is at most RenewBefore (30 days). The Secret carries it, so a restarted
//     or new leader keeps it; deleting the Secret starts over with one fresh CA (the way to drop a
//     compromised CA at once, at the price of replicas failing until they sync, up to CheckInterval).
//     A ca.crt lost or overwritten by hand cannot be kept: nothing else remembers it.
//   - A replica writes a new leaf to its cert dir only when the registration's caBundle trusts it
//     at least as widely as the leaf it serves now (see holdBack): the leader writes the Secret before
//     the caBundle and may fail or crash in between, and a replica that switched at once would serve
//     a leaf the API server does not trust yet. What remains is the API server's own watch latency on
//     the registration (milliseconds) against a replica's CheckInterval.
//
// Why not open-policy-agent/cert-controller (Gatekeeper's)? It pins its own controller-runtime and
// Kubernetes versions, which lag ours (controller-runtime v0.25, Kubernetes 1.37), and it watches
// Secrets cluster-wide through the manager's cache; this package reads one Secret through the API
// reader once per check interval and needs no Secret informer. The rotation logic is ~200 lines.
package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Config configures self-managed certificates. Zero fields take the documented defaults.
type Config struct {
	// SecretNamespace/SecretName hold ca.crt, ca.key, tls.crt, tls.key.
	// Defaults to credchain-system/credchain-webhook-tls.
	SecretNamespace, SecretName string
	// DNSNames of the serving certificate. Defaults to credchain-webhook.<SecretNamespace>.svc and
	// its .cluster.local form.
	DNSNames []string
	// WebhookConfigName is the ValidatingWebhookConfiguration whose caBundle is kept current.
	// Defaults to credchain.
	WebhookConfigName string
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// CALifetime defaults to 10 years; CertLifetime to 90 days.
	CALifetime, CertLifetime time.Duration
	// RenewBefore: a certificate with less than this left is renewed (the CA too, with the leaf).
	// Defaults to a third of CertLifetime.
	RenewBefore time.Duration
	// CheckInterval between checks. Defaults to 1m.
	CheckInterval time.Duration
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.SecretNamespace == "" {
		c.SecretNamespace = "credchain-system"
	}
	if c.SecretName == "" {
		c.SecretName = "credchain-webhook-tls"
	}
	if len(c.DNSNames) == 0 {
		svc := "credchain-webhook." + c.SecretNamespace + ".svc"
		c.DNSNames = []string{svc, svc + ".cluster.local"}
	}
	if c.WebhookConfigName == "" {
		c.WebhookConfigName = "credchain"
	}
	if c.CALifetime == 0 {
		c.CALifetime = 10 * 365 * 24 * time.Hour
	}
	if c.CertLifetime == 0 {
		c.CertLifetime = 90 * 24 * time.Hour
	}
	if c.RenewBefore == 0 {
		c.RenewBefore = c.CertLifetime / 3
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = time.Minute
	}
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.CertDir == "" {
		errs = append(errs, errors.New("certificate directory must be set"))
	}
	if c.RenewBefore >= c.CertLifetime {
		errs = append(errs, fmt.Errorf("--cert-renew-before %s must be shorter than --cert-lifetime %s", c.RenewBefore, c.CertLifetime))
	}
	if c.CertLifetime > c.CALifetime {
		errs = append(errs, fmt.Errorf("--cert-lifetime %s must not exceed --ca-lifetime %s", c.CertLifetime, c.CALifetime))
	}
	return errors.Join(errs...)
}

// Rotator keeps the Secret valid (on the leader) and the certificate files and caBundle in sync.
type Rotator struct {
	Config Config
	// Reader/Writer talk to the API server directly (no Secret informer).
	Client client.Client
	Log    logr.Logger
	// Now defaults to time.Now.
	Now func() time.Time

	ready atomic.Bool
}

// Ready reports whether valid certificate files are in place.
func (r *Rotator) Ready() bool { return r.ready.Load() }

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Bootstrap makes sure certificate files exist before the webhook server starts (its certwatcher
// needs them): it issues the Secret if there is no usable certificate in it — concurrent replicas
// are safe, the API server lets one create or update win and the others read it — and writes the
// files. It renews nothing ahead of time and ignores a change of names: that is the leader's (see
// RunLeader), and a replica bootstrapping with other --cert-dns-names than the running leader would
// otherwise reissue the leader's certificate and the leader reissue it back.
func (r *Rotator) Bootstrap(ctx context.Context) error {
	for !r.Ready() {
		if err := r.issue(ctx, 0, nil); err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) {
			r.Log.Error(err, "issuing the first certificate; retrying")
		}
		if err := r.syncFiles(ctx); err != nil {
			r.Log.Error(err, "writing certificate files; retrying")
		}
		if r.Ready() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.Config.CheckInterval):
		}
	}
	return nil
}

// RunLeader renews the Secret when needed and keeps caBundle current, until ctx ends. Run it on
// the elected leader only, so replicas never race each other's renewals.
func (r *Rotator) RunLeader(ctx context.Context) error {
	return r.loop(ctx, func(ctx context.Context) error {
		if err := r.ensureSecret(ctx); err != nil {
			return err
		}
		return r.injectCABundle(ctx)
	})
}

// RunFiles writes the Secret's certificate to CertDir whenever it changes, on every replica.
func (r *Rotator) RunFiles(ctx context.Context) error {
	return r.loop(ctx, r.syncFiles)
}

func (r *Rotator) loop(ctx context.Context, step func(context.Context) error) error {
	for {
		if err := step(ctx); err != nil && ctx.Err() == nil {
			r.Log.Error(err, "certificate step failed; retrying")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.Config.CheckInterval):
		}
	}
}

func (r *Rotator) secretKey() types.NamespacedName {
	return types.NamespacedName{Namespace: r.Config.SecretNamespace, Name: r.Config.SecretName}
}

// ensureSecret is the leader's check: it renews the CA and leaf in the Secret ahead of expiry
// (RenewBefore) and reissues the leaf when its names differ from the configured ones.
func (r *Rotator) ensureSecret(ctx context.Context) error {
	return r.issue(ctx, r.Config.RenewBefore, r.Config.DNSNames)
}

// issue creates or renews what the Secret needs (see check): certificates with less than
// renewBefore left are renewed, and the leaf is reissued when names is non-nil and differs from its
// SANs. A renewed CA moves to ca-previous.crt.
func (r *Rotator) issue(ctx context.Context, renewBefore time.Duration, names []string) error {
	var s corev1.Secret
	err := r.Client.Get(ctx, r.secretKey(), &s)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading secret %s: %w", r.secretKey(), err)
	}
	now := r.now()
	need := check(s.Data, now, renewBefore, names)
	if need == upToDate {
		return nil
	}
	data, err := renew(s.Data, need, now, r.Config)
	if err != nil {
		return err
	}
	s.Data = data
	s.Type = corev1.SecretTypeTLS
	if exists {
		err = r.Client.Update(ctx, &s) // resourceVersion guards against a concurrent writer
	} else {
		s.ObjectMeta = metav1.ObjectMeta{Namespace: r.Config.SecretNamespace, Name: r.Config.SecretName,
			Labels: map[string]string{"app.kubernetes.io/name": "credchain"}}
		err = r.Client.Create(ctx, &s)
	}
	if err != nil {
		return fmt.Errorf("writing secret %s: %w", r.secretKey(), err)
	}
	leaf, _, _ := parsePair(data[keyLeaf], data[keyLeafKey], now, 0)
	r.Log.Info("issued serving certificate", "secret", r.secretKey().String(), "reason", need.String(),
		"renewedCA", need.renewsCA(), "previousCAs", len(previousCAs(data, now)),
		"notAfter", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// injectCABundle sets caBundle on every webhook of the configuration: the current CA and the
// previous ones still valid (see caBundle). It writes only when a webhook's bundle differs, so a
// leaf renewed with the same CA never touches the registration.
func (r *Rotator) injectCABundle(ctx context.Context) error {
	var s corev1.Secret
	if err := r.Client.Get(ctx, r.secretKey(), &s); err != nil {
		return fmt.Errorf("reading secret %s: %w", r.secretKey(), err)
	}
	bundle, err := caBundle(s.Data, r.now())
	if err != nil {
		return fmt.Errorf("secret %s: %w", r.secretKey(), err)
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := r.Client.Get(ctx, types.NamespacedName{Name: r.Config.WebhookConfigName}, &vwc); err != nil {
		return fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", r.Config.WebhookConfigName, err)
	}
	changed := false
	for i := range vwc.Webhooks {
		if !bytes.Equal(vwc.Webhooks[i].ClientConfig.CABundle, bundle) {
			vwc.Webhooks[i].ClientConfig.CABundle = bundle
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := r.Client.Update(ctx, &vwc); err != nil {
		return fmt.Errorf("injecting caBundle into %s: %w", r.Config.WebhookConfigName, err)
	}
	r.Log.Info("injected caBundle", "webhookConfiguration", r.Config.WebhookConfigName, "cas", countPEM(bundle))
	return nil
}

// syncFiles writes tls.crt/tls.key from the Secret when they differ (atomically, by rename) — but
// not while that would make this replica serve a leaf fewer of the registration's webhooks trust
// than the one it serves now (see holdBack).
func (r *Rotator) syncFiles(ctx context.Context) error {
	var s corev1.Secret
	if err := r.Client.Get(ctx, r.secretKey(), &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // the leader has not issued one yet
		}
		return fmt.Errorf("reading secret %s: %w", r.secretKey(), err)
	}
	now := r.now()
	next, _, ok := parsePair(s.Data["tls.crt"], s.Data["tls.key"], now, 0)
	if !ok {
		return nil
	}
	dir := r.Config.CertDir
	curCrt, errCrt := os.ReadFile(filepath.Join(dir, "tls.crt"))
	curKey, errKey := os.ReadFile(filepath.Join(dir, "tls.key"))
	if errCrt == nil && errKey == nil && bytes.Equal(curCrt, s.Data["tls.crt"]) && bytes.Equal(curKey, s.Data["tls.key"]) {
		r.ready.Store(true)
		return nil
	}
	if served, _, ok := parsePair(curCrt, curKey, now, 0); ok {
		hold, err := r.holdBack(ctx, served, next, now)
		if hold {
			r.ready.Store(true) // a valid certificate is in place
			if err == nil {
				r.Log.Info("keeping the served certificate until the caBundle trusts the new one",
					"webhookConfiguration", r.Config.WebhookConfigName, "serial", next.SerialNumber.String())
			}
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []string{"tls.key", "tls.crt"} { // key first: certwatcher reloads on tls.crt
		path := filepath.Join(dir, f)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, s.Data[f]) {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, s.Data[f], 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	r.ready.Store(true)
	return nil
}

// holdBack reports whether a replica serving the valid leaf served should keep it rather than
// switch to next: when fewer of the registration's webhooks trust next than trust served. That
// holds a leaf of a new CA back until the leader has put the CA into the caBundle, and lets
// everything else through at once: a renewal with the same CA (trusted alike), a caBundle that
// trusts neither (just installed, or replaced by hand: nothing to lose), no registration at all.
// When the registration cannot be read it holds back, with the error: served is still valid, and
// once it expires it is no longer asked (syncFiles writes whatever is valid).
func (r *Rotator) holdBack(ctx context.Context, served, next *x509.Certificate, now time.Time) (bool, error) {
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := r.Client.Get(ctx, types.NamespacedName{Name: r.Config.WebhookConfigName}, &vwc); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil // no API server client to keep
		}
		return true, fmt.Errorf("reading ValidatingWebhookConfiguration %s to check the new certificate is trusted: %w", r.Config.WebhookConfigName, err)
	}
	return trustedBy(&vwc, next, now) < trustedBy(&vwc, served, now), nil
}

// parsePair reports whether a PEM certificate and EC key parse, match, and stay valid for more
// than renewBefore.
func parsePair(certPEM, keyPEM []byte, now time.Time, renewBefore time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, bool) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, false
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, false
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, false
	}
	if now.Add(renewBefore).After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return nil, nil, false
	}
	return cert, key, true
}

func newCA(now time.Time, lifetime time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "credchain-webhook-ca"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(lifetime),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newLeaf(now time.Time, lifetime time.Duration, dns []string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating serving key: %w", err)
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	names, ips := splitNames(dns)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: dns[0]}, DNSNames: names, IPAddresses: ips,
		NotBefore: now.Add(-time.Minute), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("internal error: encoding serving key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
