package testenv

import (
	"flag"
	"testing"
)

// Issue 12 item 8: -short (`make unit`) starts no server, whatever the testbin cache holds.
func TestShortStartsNoServer(t *testing.T) {
	if err := flag.Set("test.short", "true"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flag.Set("test.short", "false") })
	for name, start := range map[string]func(t *testing.T){
		"vault":   func(t *testing.T) { StartVault(t) },
		"nats":    func(t *testing.T) { StartNATS(t) },
		"envtest": func(t *testing.T) { KubebuilderAssets(t) },
		"kubectl": func(t *testing.T) { Kubectl(t) },
	} {
		var skipped bool
		t.Run(name, func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			start(t)
		})
		if !skipped {
			t.Errorf("%s started under -short", name)
		}
	}
}
