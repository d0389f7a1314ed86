package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// ClientAuth returns the TLS option that makes the webhook server accept only clients presenting a
// certificate signed by a CA in caFile: the API server, configured with the AdmissionConfiguration in
// docs/install.md. Without it /validate answers any caller that can reach the port (see docs/install.md,
// "Who can call /validate"). The file is read once, at start: a bad file stops start-up with an error
// rather than serving without verification.
func ClientAuth(caFile string) (func(*tls.Config), error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--client-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--client-ca-file %s: no PEM certificate in it", caFile)
	}
	return func(c *tls.Config) {
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}, nil
}
