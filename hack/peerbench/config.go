package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/credchain/credchain/internal/testenv"
)

// Config is one peer-benchmark run. SetDefaults fills the documented defaults once, before flags;
// Validate reports every problem before anything starts.
type Config struct {
	// Credchain is the credchain binary (`go build ./cmd/credchain`). Required.
	Credchain string
	// Kyverno is Kyverno's admission controller (hack/testbin.sh kyverno). Defaults to
	// $CREDCHAIN_KYVERNO, else the testbin cache.
	Kyverno string
	// Manifests is the repository's manifests directory: credchain is registered with
	// manifests/default's ValidatingWebhookConfiguration. Defaults to ../../manifests.
	Manifests string
	// Dir holds the logs, audit log and kubeconfigs. Defaults to a new temporary directory, kept
	// after the run (the logs explain a failure).
	Dir string
	// Sizes are the numbers of ExternalSecrets in the cluster, measured in this order (the cluster
	// grows between them). Defaults to 100 and 10,000.
	Sizes []int
	// Clients are the concurrent client counts of each round. Defaults to 1 and 8.
	Clients []int
	// Repeats is how many times each (size, clients, webhook) round runs, interleaved with the
	// other webhooks'. Defaults to 3.
	Repeats int
	// Requests is the number of dry-run CREATEs per round. Defaults to 1,000.
	Requests int
	// Warmup is the number of dry-run CREATEs sent before each round and not measured. Defaults
	// to 50.
	Warmup int
	// SkipBench runs only the correctness pass. Defaults to false.
	SkipBench bool
	// Settle is how long the API server is given to see a namespace label change (the webhooks'
	// namespaceSelector) before a probe confirms which webhook answers. Defaults to 1s.
	Settle time.Duration
	// KyvernoQPS, when positive, sets Kyverno's --clientRateLimitQPS (and a burst of twice it).
	// Defaults to 0: Kyverno's own default, 100 QPS with a burst of 200, which at three GETs per
	// review caps it at ~33 reviews/s.
	KyvernoQPS float64
}

// SetDefaults fills zero fields with their documented defaults.
func (c *Config) SetDefaults() {
	if c.Kyverno == "" {
		c.Kyverno = os.Getenv("CREDCHAIN_KYVERNO")
	}
	if c.Kyverno == "" {
		c.Kyverno = filepath.Join(testenv.CacheRoot(), "kyverno-"+KyvernoVersion, "kyverno")
	}
	if c.Manifests == "" {
		c.Manifests = filepath.Join("..", "..", "manifests")
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{100, 10000}
	}
	if len(c.Clients) == 0 {
		c.Clients = []int{1, 8}
	}
	if c.Repeats == 0 {
		c.Repeats = 3
	}
	if c.Requests == 0 {
		c.Requests = 1000
	}
	if c.Warmup == 0 {
		c.Warmup = 50
	}
	if c.Settle == 0 {
		c.Settle = time.Second
	}
}

// Validate reports every invalid field, joined.
func (c *Config) Validate() error {
	var errs []error
	for _, f := range []struct{ flag, path string }{{"--credchain", c.Credchain}, {"--kyverno", c.Kyverno}} {
		if f.path == "" {
			errs = append(errs, fmt.Errorf("%s: required", f.flag))
		} else if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w (build it: make peerbench does)", f.flag, f.path, err))
		}
	}
	if _, err := os.Stat(filepath.Join(c.Manifests, "default", "validatingwebhookconfiguration.yaml")); err != nil {
		errs = append(errs, fmt.Errorf("--manifests %s: %w", c.Manifests, err))
	}
	prev := 0
	for _, n := range c.Sizes {
		if n < len(benchSecrets) || n < prev {
			errs = append(errs, fmt.Errorf("--sizes %v: each at least %d and not decreasing (the cluster only grows)", c.Sizes, len(benchSecrets)))
			break
		}
		prev = n
	}
	for _, n := range c.Clients {
		if n < 1 {
			errs = append(errs, fmt.Errorf("--clients %v: each must be positive", c.Clients))
			break
		}
	}
	if c.Repeats < 1 || c.Requests < 10 || c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("--repeats %d, --requests %d, --warmup %d: need repeats ≥ 1, requests ≥ 10, warmup ≥ 0", c.Repeats, c.Requests, c.Warmup))
	}
	if c.Settle <= 0 {
		errs = append(errs, errors.New("--settle: must be positive"))
	}
	return errors.Join(errs...)
}

// KyvernoVersion is the Kyverno hack/testbin.sh builds (its KYVERNO_VERSION) and whose CRDs the
// benchmark installs from the module cache.
const KyvernoVersion = "1.19.1"
