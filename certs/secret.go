package certs

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"time"
)

// Keys of the certificate Secret. ca.crt, tls.crt and tls.key are the usual kubernetes.io/tls
// ones (cert-manager's too), so tools reading the Secret see the CA that signed tls.crt.
const (
	keyCA      = "ca.crt"
	keyCAKey   = "ca.key"
	keyLeaf    = "tls.crt"
	keyLeafKey = "tls.key"
	// keyPreviousCAs holds the CA certificates (no keys) that ca.crt replaced and that may still
	// have signed a leaf some replica serves: PEM, newest first, each until its NotAfter.
	keyPreviousCAs = "ca-previous.crt"
)

// need is what the Secret's content lacks; check reports the most severe.
type need int

const (
	upToDate need = iota
	// leafNames: the leaf's DNS names or IP SANs differ from the configured ones (e.g. the operator
	// changed --cert-dns-names). Reissued with the same CA, so the caBundle does not change.
	leafNames
	// leafForeign: the leaf was not signed by ca.crt (a CA replaced by hand without its leaf).
	leafForeign
	// leafExpiring: the leaf is missing, unreadable, or has less than the renewal margin left.
	leafExpiring
	// caExpiring: the CA is missing, unreadable (its key too), or has less than the renewal margin
	// left. A new CA and leaf; the old CA certificate moves to ca-previous.crt.
	caExpiring
)

func (n need) String() string {
	switch n {
	case upToDate:
		return "up to date"
	case leafNames:
		return "names changed"
	case leafForeign:
		return "serving certificate not signed by the CA"
	case leafExpiring:
		return "serving certificate missing or expiring"
	case caExpiring:
		return "CA missing or expiring"
	}
	return fmt.Sprintf("need(%d)", int(n))
}

func (n need) renewsCA() bool { return n == caExpiring }

// check reports what data needs at now: certificates with less than renewBefore left are renewed
// (0: only unusable ones), and with names non-nil a leaf whose SANs differ is reissued.
func check(data map[string][]byte, now time.Time, renewBefore time.Duration, names []string) need {
	ca, _, ok := parsePair(data[keyCA], data[keyCAKey], now, renewBefore)
	if !ok {
		return caExpiring
	}
	leaf, _, ok := parsePair(data[keyLeaf], data[keyLeafKey], now, renewBefore)
	switch {
	case !ok:
		return leafExpiring
	case leaf.CheckSignatureFrom(ca) != nil:
		return leafForeign
	case names != nil && !sameNames(leaf, names):
		return leafNames
	}
	return upToDate
}

// renew returns the Secret's new content for n (not upToDate): a new leaf, and for caExpiring a
// new CA first, the old CA certificate (if it still parses and has not expired — its key may be
// what was lost) joining the previous ones. Expired previous CAs are dropped.
func renew(data map[string][]byte, n need, now time.Time, cfg Config) (map[string][]byte, error) {
	previous := previousCAs(data, now)
	ca, caKey, _ := parsePair(data[keyCA], data[keyCAKey], now, 0)
	if n.renewsCA() {
		if old := parseCert(data[keyCA]); old != nil && old.IsCA && now.Before(old.NotAfter) {
			previous = append([]*x509.Certificate{old}, previous...)
		}
		var err error
		if ca, caKey, err = newCA(now, cfg.CALifetime); err != nil {
			return nil, err
		}
	}
	if len(previous) > maxPreviousCAs {
		previous = previous[:maxPreviousCAs]
	}
	leafPEM, keyPEM, err := newLeaf(now, cfg.CertLifetime, cfg.DNSNames, ca, caKey)
	if err != nil {
		return nil, err
	}
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return nil, fmt.Errorf("internal error: encoding CA key: %w", err)
	}
	out := map[string][]byte{
		keyCA:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
		keyCAKey:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKeyDER}),
		keyLeaf:    leafPEM,
		keyLeafKey: keyPEM,
	}
	if len(previous) > 0 {
		out[keyPreviousCAs] = encodeCerts(previous)
	}
	return out, nil
}

// sameNames reports whether leaf's SANs are names, split as newLeaf splits them; order and
// duplicates do not matter, and IPs compare by value (::1 is 0:0:0:0:0:0:0:1).
func sameNames(leaf *x509.Certificate, names []string) bool {
	dns, ips := splitNames(names)
	return sameSet(dns, leaf.DNSNames) && sameSet(ipStrings(ips), ipStrings(leaf.IPAddresses))
}

// splitNames separates IP addresses (IP SANs: an out-of-cluster URL clientConfig in tests and dev
// names an IP) from DNS names.
func splitNames(names []string) (dns []string, ips []net.IP) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

func ipStrings(ips []net.IP) []string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return s
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// parseCert parses the first PEM block of b as a certificate, or returns nil.
func parseCert(b []byte) *x509.Certificate {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return c
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
