package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// ErrNoCA: the Secret's ca.crt is missing or unreadable, so there is no caBundle to inject (the
// leader's next check issues a new CA).
var ErrNoCA = errors.New("no readable CA certificate in ca.crt")

// maxPreviousCAs bounds ca-previous.crt and so the caBundle. A CA is renewed only near its expiry,
// so normally at most one previous CA is still valid; more pile up only if CAs are replaced early
// again and again (their keys lost). Past the bound the oldest is dropped, which can only break a
// replica still serving a leaf from a CA four replacements old.
const maxPreviousCAs = 4

// previousCAs returns the CA certificates of data's ca-previous.crt that have not expired at now,
// newest first, without duplicates and without the current ca.crt, at most maxPreviousCAs.
// Anything else in that key (another PEM type, a certificate that is not a CA, garbage) is ignored:
// the Secret is ours, but a bundle is only as good as what it is checked to contain.
func previousCAs(data map[string][]byte, now time.Time) []*x509.Certificate {
	current := parseCert(data[keyCA])
	var out []*x509.Certificate
	rest := data[keyPreviousCAs]
	for len(out) < maxPreviousCAs {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !c.IsCA || !now.Before(c.NotAfter) || (current != nil && c.Equal(current)) {
			continue
		}
		if slices.ContainsFunc(out, c.Equal) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// caBundle is what the registration must trust for data at now: ca.crt as stored (so with no
// previous CA the bundle is byte for byte ca.crt, as tools comparing the two expect), then the
// previous CAs still valid. It changes only when the CA is renewed or a previous CA expires — never
// with a leaf renewed by the same CA.
func caBundle(data map[string][]byte, now time.Time) ([]byte, error) {
	if parseCert(data[keyCA]) == nil {
		return nil, ErrNoCA
	}
	out := bytes.Clone(data[keyCA])
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, encodeCerts(previousCAs(data, now))...), nil
}

// trustedBy counts the registration's webhooks whose caBundle verifies leaf at now for server
// auth. An empty caBundle trusts none of ours (the API server would use its system roots).
func trustedBy(vwc *admissionregistrationv1.ValidatingWebhookConfiguration, leaf *x509.Certificate, now time.Time) int {
	n := 0
	for _, w := range vwc.Webhooks {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(w.ClientConfig.CABundle) {
			continue
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			n++
		}
	}
	return n
}

// countPEM counts the PEM blocks in b.
func countPEM(b []byte) int {
	n := 0
	for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
		n++
	}
	return n
}
