package webhook

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
)

// CertExpiry reports when the serving certificate in certDir expires, read at scrape time so it
// follows renewals in either --cert-mode (cert-manager's or credchain's own). 0 when unreadable,
// which an expiry alert treats as already expired.
func CertExpiry(certDir string) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "credchain_webhook_certificate_expiry_timestamp_seconds",
		Help: "Unix time at which the webhook's serving certificate (tls.crt in --cert-dir) expires; 0 if unreadable.",
	}, func() float64 {
		b, err := os.ReadFile(filepath.Join(certDir, "tls.crt"))
		if err != nil {
			return 0
		}
		block, _ := pem.Decode(b)
		if block == nil {
			return 0
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return 0
		}
		return float64(c.NotAfter.Unix())
	})
}
