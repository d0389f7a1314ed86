package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// t0 is the tests' epoch; every clock here is t0 plus an offset.
var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// testConfig has lifetimes short enough to walk through several renewals with a moved clock:
// the leaf is renewed with 20 of its 60 minutes left, the CA with 20 of its 180.
func testConfig(certDir string, names ...string) Config {
	c := Config{CertDir: certDir, DNSNames: names, CALifetime: 3 * time.Hour, CertLifetime: time.Hour,
		RenewBefore: 20 * time.Minute, CheckInterval: time.Millisecond}
	c.SetDefaults()
	return c
}

// registration is a ValidatingWebhookConfiguration with two webhooks (each gets the caBundle) and
// no caBundle yet, as the install applies it.
func registration() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "credchain"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{Name: "pullsecrets.credchain.io"}, {Name: "pods.credchain.io"},
		},
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// leaderCheck is one iteration of RunLeader's loop.
func leaderCheck(t *testing.T, r *Rotator) {
	t.Helper()
	must(t, r.ensureSecret(t.Context()))
	must(t, r.injectCABundle(t.Context()))
}

func readSecret(t *testing.T, c *fakeClient, cfg Config) corev1.Secret {
	t.Helper()
	var s corev1.Secret
	must(t, c.Get(t.Context(), (&Rotator{Config: cfg}).secretKey(), &s))
	return s
}

func readRegistration(t *testing.T, c *fakeClient) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	vwc := registration()
	must(t, c.Get(t.Context(), client.ObjectKeyFromObject(vwc), vwc))
	return vwc
}

func mustCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatalf("no PEM block in %q", certPEM)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	must(t, err)
	return c
}

// verify checks leaf as a TLS client trusting only bundle would at now.
func verify(bundle []byte, leaf *x509.Certificate, now time.Time) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func countCerts(bundle []byte) int {
	n := 0
	for b, rest := pem.Decode(bundle); b != nil; b, rest = pem.Decode(rest) {
		n++
	}
	return n
}

// TestCABundle walks the leader through leaf renewals and a CA rotation with a moved clock and
// checks the caBundle after its last check: every serving certificate issued so far that is still
// valid must verify against every webhook's caBundle (a replica may still serve any of them), the
// bundle must hold no more CAs than needed, and a leaf renewal with the same CA must not touch the
// registration at all.
//
// The timeline with testConfig: CA1 and leaf 1 at 0; leaf 2 at 45m, leaf 3 at 1h30m, leaf 4 at
// 2h15m (capped at CA1's expiry, 3h); at 2h45m CA1 has 15m left: CA2 and leaf 5, while leaf 4
// (CA1's) is valid until 3h.
func TestCABundle(t *testing.T) {
	t.Parallel()
	rotation := []time.Duration{0, 45 * time.Minute, 90 * time.Minute, 135 * time.Minute, 165 * time.Minute}
	cases := map[string]struct {
		at []time.Duration // the leader's checks, after t0
		// restart replaces the leader by a new Rotator before its last check: only the Secret
		// remembers the previous CA.
		restart bool
		// corrupt replaces this Secret key by garbage before the last check.
		corrupt        string
		wantLeaves     int // distinct serving certificates issued
		wantCAs        int // certificates in the final caBundle
		wantInjections int // updates of the registration
	}{
		"first certificate":                    {at: rotation[:1], wantLeaves: 1, wantCAs: 1, wantInjections: 1},
		"leaf renewed with the same CA":        {at: rotation[:2], wantLeaves: 2, wantCAs: 1, wantInjections: 1},
		"leaf renewed three times, same CA":    {at: rotation[:4], wantLeaves: 4, wantCAs: 1, wantInjections: 1},
		"CA rotated":                           {at: rotation, wantLeaves: 5, wantCAs: 2, wantInjections: 2},
		"CA rotated, then the leader restarts": {at: append(slices.Clone(rotation), 170*time.Minute), restart: true, wantLeaves: 5, wantCAs: 2, wantInjections: 2},
		"CA rotated, leader restarted at once": {at: append(slices.Clone(rotation), 165*time.Minute), restart: true, wantLeaves: 5, wantCAs: 2, wantInjections: 2},
		"old CA expired":                       {at: append(slices.Clone(rotation), 181*time.Minute), wantLeaves: 5, wantCAs: 1, wantInjections: 3},
		"CA key lost": {at: []time.Duration{0, 30 * time.Minute}, corrupt: "ca.key",
			wantLeaves: 2, wantCAs: 2, wantInjections: 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newFakeClient(registration())
			cfg := testConfig(t.TempDir(), "localhost")
			var now time.Time
			newLeader := func() *Rotator {
				return &Rotator{Config: cfg, Client: c, Log: testr.New(t), Now: func() time.Time { return now }}
			}
			r := newLeader()
			var leaves []*x509.Certificate
			for i, at := range tc.at {
				now = t0.Add(at)
				last := i == len(tc.at)-1
				if last && tc.restart {
					r = newLeader()
				}
				if last && tc.corrupt != "" {
					s := readSecret(t, c, cfg)
					s.Data[tc.corrupt] = []byte("-----BEGIN GARBAGE-----\n")
					must(t, c.Update(t.Context(), &s))
				}
				leaderCheck(t, r)
				leaf := mustCert(t, readSecret(t, c, cfg).Data["tls.crt"])
				if len(leaves) == 0 || !leaf.Equal(leaves[len(leaves)-1]) {
					leaves = append(leaves, leaf)
				}
			}
			if len(leaves) != tc.wantLeaves {
				t.Errorf("%d serving certificates issued, want %d", len(leaves), tc.wantLeaves)
			}
			vwc := readRegistration(t, c)
			for _, w := range vwc.Webhooks {
				bundle := w.ClientConfig.CABundle
				if n := countCerts(bundle); n != tc.wantCAs {
					t.Errorf("webhook %s: %d CAs in caBundle, want %d", w.Name, n, tc.wantCAs)
				}
				for i, leaf := range leaves {
					if now.After(leaf.NotAfter) {
						continue // expired: no replica can serve it
					}
					if err := verify(bundle, leaf, now); err != nil {
						t.Errorf("webhook %s: serving certificate %d (valid until %s) fails against the caBundle: %v",
							w.Name, i+1, leaf.NotAfter.Sub(t0), err)
					}
				}
			}
			if got := c.writeCount(vwc) - 1; got != tc.wantInjections {
				t.Errorf("registration updated %d times, want %d", got, tc.wantInjections)
			}
		})
	}
}

// TestLeafNames: a leaf whose DNS names or IP SANs differ from the configured ones (the operator
// changed --cert-dns-names) is reissued at the leader's next check, with the same CA, so the
// caBundle does not change; the same names in another order are the same certificate.
func TestLeafNames(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		issued, configured []string
		wantReissue        bool
	}{
		"unchanged":        {issued: []string{"a.svc", "b.svc"}, configured: []string{"a.svc", "b.svc"}},
		"reordered":        {issued: []string{"a.svc", "b.svc"}, configured: []string{"b.svc", "a.svc"}},
		"duplicated":       {issued: []string{"a.svc"}, configured: []string{"a.svc", "a.svc"}},
		"name added":       {issued: []string{"a.svc"}, configured: []string{"a.svc", "b.svc"}, wantReissue: true},
		"name removed":     {issued: []string{"a.svc", "b.svc"}, configured: []string{"a.svc"}, wantReissue: true},
		"name replaced":    {issued: []string{"a.svc"}, configured: []string{"c.svc"}, wantReissue: true},
		"IP added":         {issued: []string{"a.svc"}, configured: []string{"a.svc", "10.0.0.1"}, wantReissue: true},
		"IP changed":       {issued: []string{"a.svc", "10.0.0.1"}, configured: []string{"a.svc", "10.0.0.2"}, wantReissue: true},
		"IP unchanged":     {issued: []string{"10.0.0.1", "a.svc"}, configured: []string{"a.svc", "10.0.0.1"}},
		"IPv6 spelled out": {issued: []string{"::1"}, configured: []string{"0:0:0:0:0:0:0:1"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newFakeClient(registration())
			now := t0
			clock := func() time.Time { return now }
			leaderCheck(t, &Rotator{Config: testConfig(t.TempDir(), tc.issued...), Client: c, Log: testr.New(t), Now: clock})
			cfg := testConfig(t.TempDir(), tc.configured...)
			before := readSecret(t, c, cfg)
			now = t0.Add(time.Minute)
			leaderCheck(t, &Rotator{Config: cfg, Client: c, Log: testr.New(t), Now: clock})
			after := readSecret(t, c, cfg)
			if reissued := !bytes.Equal(before.Data["tls.crt"], after.Data["tls.crt"]); reissued != tc.wantReissue {
				t.Fatalf("reissued %v, want %v", reissued, tc.wantReissue)
			}
			leaf := mustCert(t, after.Data["tls.crt"])
			var wantDNS, gotDNS, wantIPs, gotIPs []string
			for _, n := range tc.configured {
				if ip := net.ParseIP(n); ip != nil {
					wantIPs = append(wantIPs, ip.String())
				} else {
					wantDNS = append(wantDNS, n)
				}
			}
			gotDNS = slices.Clone(leaf.DNSNames)
			for _, ip := range leaf.IPAddresses {
				gotIPs = append(gotIPs, ip.String())
			}
			for _, s := range [][]string{wantDNS, gotDNS, wantIPs, gotIPs} {
				slices.Sort(s)
			}
			if !slices.Equal(slices.Compact(wantDNS), gotDNS) || !slices.Equal(slices.Compact(wantIPs), gotIPs) {
				t.Errorf("leaf names %v %v, want %v %v", gotDNS, gotIPs, wantDNS, wantIPs)
			}
			if !bytes.Equal(before.Data["ca.crt"], after.Data["ca.crt"]) {
				t.Error("the CA changed with the names")
			}
			if n := c.writeCount(registration()); n != 2 { // created, then the first injection
				t.Errorf("registration written %d times, want 2: new names must not touch the caBundle", n)
			}
		})
	}
}

// issuer is a test CA.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newIssuer(t *testing.T, now time.Time) issuer {
	t.Helper()
	cert, key, err := newCA(now, 3*time.Hour)
	must(t, err)
	return issuer{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}
}

func (i issuer) leaf(t *testing.T, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := newLeaf(now, time.Hour, []string{"localhost"}, i.cert, i.key)
	must(t, err)
	return certPEM, keyPEM
}

// TestFilesWaitForTrustedCA: a replica writes a new serving certificate to its cert dir only once
// the registration's caBundle trusts it — unless the certificate it serves now is no better off
// (none, expired, or not trusted either). After a CA rotation the leader updates the Secret before
// the caBundle (and may crash in between); a replica that switched at once would serve a leaf the
// API server does not trust yet.
func TestFilesWaitForTrustedCA(t *testing.T) {
	t.Parallel()
	ca1, ca2, ca3 := newIssuer(t, t0), newIssuer(t, t0), newIssuer(t, t0)
	cas := map[string]issuer{"ca1": ca1, "ca2": ca2, "ca3": ca3}
	cases := map[string]struct {
		onDisk      string   // CA of the leaf in the cert dir: "" none, "ca1-expired" one that expired
		secret      string   // CA of the Secret's leaf
		bundle      []string // CAs in every webhook's caBundle; nil: no registration at all
		wantWritten bool
	}{
		"no certificate in the directory":   {secret: "ca2", bundle: []string{"ca1"}, wantWritten: true},
		"new CA not in the caBundle yet":    {onDisk: "ca1", secret: "ca2", bundle: []string{"ca1"}},
		"new CA in the caBundle":            {onDisk: "ca1", secret: "ca2", bundle: []string{"ca2", "ca1"}, wantWritten: true},
		"caBundle trusts neither":           {onDisk: "ca1", secret: "ca2", bundle: []string{"ca3"}, wantWritten: true},
		"caBundle empty, as installed":      {onDisk: "ca1", secret: "ca2", bundle: []string{}, wantWritten: true},
		"renewed with the same CA":          {onDisk: "ca1", secret: "ca1", bundle: []string{"ca1"}, wantWritten: true},
		"directory's certificate expired":   {onDisk: "ca1-expired", secret: "ca2", bundle: []string{"ca1"}, wantWritten: true},
		"no registration":                   {onDisk: "ca1", secret: "ca2", wantWritten: true},
		"one webhook without the new CA":    {onDisk: "ca1", secret: "ca2", bundle: []string{"ca1", "ca2|"}},
		"new CA only in the second webhook": {onDisk: "ca1", secret: "ca2", bundle: []string{"ca1", "|ca2"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			now := t0.Add(10 * time.Minute)
			cfg := testConfig(t.TempDir(), "localhost")
			crt, key := cas[tc.secret].leaf(t, now)
			c := newFakeClient(&corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: cfg.SecretNamespace, Name: cfg.SecretName},
				Data:       map[string][]byte{"ca.crt": cas[tc.secret].pem, "tls.crt": crt, "tls.key": key},
			})
			if tc.bundle != nil {
				vwc := registration()
				for _, spec := range tc.bundle {
					// "a|b": the first webhook gets a, the second b; otherwise both get it.
					first, second, split := strings.Cut(spec, "|")
					for i := range vwc.Webhooks {
						part := spec
						if split {
							part = [2]string{first, second}[i]
						}
						if part != "" {
							vwc.Webhooks[i].ClientConfig.CABundle = append(vwc.Webhooks[i].ClientConfig.CABundle, cas[part].pem...)
						}
					}
				}
				must(t, c.Create(t.Context(), vwc))
			}
			var diskCrt, diskKey []byte
			switch tc.onDisk {
			case "ca1":
				diskCrt, diskKey = ca1.leaf(t, now.Add(-5*time.Minute))
			case "ca1-expired":
				diskCrt, diskKey = ca1.leaf(t, now.Add(-2*time.Hour))
			}
			if diskCrt != nil {
				must(t, os.MkdirAll(cfg.CertDir, 0o700))
				must(t, os.WriteFile(filepath.Join(cfg.CertDir, "tls.crt"), diskCrt, 0o600))
				must(t, os.WriteFile(filepath.Join(cfg.CertDir, "tls.key"), diskKey, 0o600))
			}
			r := &Rotator{Config: cfg, Client: c, Log: testr.New(t), Now: func() time.Time { return now }}
			_ = r.syncFiles(t.Context()) // an error is fine if the result is right; the result is checked
			gotCrt, _ := os.ReadFile(filepath.Join(cfg.CertDir, "tls.crt"))
			gotKey, _ := os.ReadFile(filepath.Join(cfg.CertDir, "tls.key"))
			switch written := bytes.Equal(gotCrt, crt); {
			case written != tc.wantWritten:
				t.Fatalf("new certificate written %v, want %v", written, tc.wantWritten)
			case written && !bytes.Equal(gotKey, key):
				t.Fatal("tls.crt written without its tls.key")
			case !written && (!bytes.Equal(gotCrt, diskCrt) || !bytes.Equal(gotKey, diskKey)):
				t.Fatal("the served pair was changed although the new one was held back")
			}
			if !r.Ready() {
				t.Error("not ready although a valid certificate is in place")
			}
		})
	}
}

// TestBootstrapLeavesRenewalToLeader: Bootstrap, which every replica runs before the manager (and
// its leader election) starts, issues a certificate only when there is no usable one — none, an
// expired or unreadable one. Renewing ahead of time and reissuing for other names is the leader's:
// during a rollout that changes --cert-dns-names, a new replica's bootstrap and the old leader
// would otherwise reissue each other's certificate back and forth.
func TestBootstrapLeavesRenewalToLeader(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		leader    []time.Duration // the leader's checks before the bootstrap, after t0
		at        time.Duration   // the bootstrap, after t0
		names     []string        // the bootstrapping replica's names; default localhost
		corrupt   string          // a Secret key replaced by garbage before the bootstrap
		wantIssue bool
	}{
		"no Secret":                  {at: 0, wantIssue: true},
		"valid certificate":          {leader: []time.Duration{0}, at: 10 * time.Minute},
		"leaf in its renewal window": {leader: []time.Duration{0}, at: 45 * time.Minute},
		"other names":                {leader: []time.Duration{0}, at: 10 * time.Minute, names: []string{"credchain.example"}},
		"leaf expired":               {leader: []time.Duration{0}, at: 61 * time.Minute, wantIssue: true},
		"leaf key unreadable":        {leader: []time.Duration{0}, at: 10 * time.Minute, corrupt: "tls.key", wantIssue: true},
		"CA in its renewal window": {leader: []time.Duration{0, 45 * time.Minute, 90 * time.Minute, 135 * time.Minute},
			at: 165 * time.Minute},
		"CA expired": {leader: []time.Duration{0, 45 * time.Minute, 90 * time.Minute, 135 * time.Minute},
			at: 181 * time.Minute, wantIssue: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newFakeClient()
			var now time.Time
			clock := func() time.Time { return now }
			leader := &Rotator{Config: testConfig(t.TempDir(), "localhost"), Client: c, Log: testr.New(t), Now: clock}
			for _, at := range tc.leader {
				now = t0.Add(at)
				must(t, leader.ensureSecret(t.Context()))
			}
			names := tc.names
			if names == nil {
				names = []string{"localhost"}
			}
			cfg := testConfig(t.TempDir(), names...)
			var before []byte
			if len(tc.leader) > 0 {
				s := readSecret(t, c, cfg)
				if tc.corrupt != "" {
					s.Data[tc.corrupt] = []byte("-----BEGIN GARBAGE-----\n")
					must(t, c.Update(t.Context(), &s))
				}
				before = s.Data["tls.crt"]
			}
			now = t0.Add(tc.at)
			r := &Rotator{Config: cfg, Client: c, Log: testr.New(t), Now: clock}
			must(t, r.Bootstrap(t.Context()))
			after := readSecret(t, c, cfg).Data["tls.crt"]
			if issued := !bytes.Equal(before, after); issued != tc.wantIssue {
				t.Errorf("issued %v, want %v", issued, tc.wantIssue)
			}
			served, err := os.ReadFile(filepath.Join(cfg.CertDir, "tls.crt"))
			must(t, err)
			if !bytes.Equal(served, after) {
				t.Error("the cert dir does not hold the Secret's certificate")
			}
		})
	}
}
