package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The binaries hack/testbin.sh builds: each is $CREDCHAIN_<NAME> when set, else its place in the
// testbin cache (CacheRoot), found by cached.

// VaultBin returns the vault binary: $CREDCHAIN_VAULT, else the testbin cache.
func VaultBin() (string, error) {
	return cached("CREDCHAIN_VAULT", "vault-"+VaultVersion, "vault")
}

// DevVault is a running `vault server -dev`.
// ESOBin returns ESO's controller binary: $CREDCHAIN_ESO, else the testbin cache.
func ESOBin() (string, error) {
	return cached("CREDCHAIN_ESO", "eso-"+strings.TrimPrefix(ESOVersion, "v"), "external-secrets")
}

// RegistryBin returns distribution's registry binary: $CREDCHAIN_REGISTRY, else the testbin cache.
func RegistryBin() (string, error) {
	return cached("CREDCHAIN_REGISTRY", "registry-"+RegistryVersion, "registry")
}

func cached(env string, rel ...string) (string, error) {
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(append([]string{CacheRoot()}, rel...)...)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found", p)
	}
	return p, nil
}

// tool returns $env, else rel under the testbin cache; missing when neither exists.
func tool(t testing.TB, env, rel string) string {
	t.Helper()
	p, err := cached(env, rel)
	if err != nil {
		missing(t, err.Error())
	}
	return p
}

// Helm is the helm v3 CLI built from helm.sh/helm/v3 ($CREDCHAIN_HELM, else the testbin cache).
func Helm(t testing.TB) string {
	return tool(t, "CREDCHAIN_HELM", filepath.Join("helm-"+HelmVersion, "helm"))
}

// PromCheck is hack/testbin/promql: Prometheus' own PromQL parser and rule loader as a CLI.
func PromCheck(t testing.TB) string {
	return tool(t, "CREDCHAIN_PROMCHECK", filepath.Join(fmt.Sprintf("promcheck-%s-r%d", PrometheusVersion, PromCheckRevision), "promcheck"))
}
