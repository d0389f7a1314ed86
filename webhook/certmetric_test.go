package webhook

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCertExpiry(t *testing.T) {
	t.Parallel()
	dir, _ := selfSignedFor(t)
	crt, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		content []byte
		min     float64
	}{
		"valid certificate": {content: crt, min: float64(time.Now().Unix())},
		"garbage":           {content: []byte("not a certificate"), min: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, "tls.crt"), tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			got := testutil.ToFloat64(CertExpiry(d))
			if tc.min == 0 && got != 0 || tc.min > 0 && got < tc.min {
				t.Errorf("expiry = %v, want ≥ %v (0 for unreadable)", got, tc.min)
			}
		})
	}
	if got := testutil.ToFloat64(CertExpiry(t.TempDir())); got != 0 {
		t.Errorf("missing file: %v, want 0", got)
	}
}
