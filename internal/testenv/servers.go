package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RegistryVersion is the registry hack/testbin.sh builds.
const RegistryVersion = "3.1.2"

// ESOBin returns ESO's controller binary: $CREDCHAIN_ESO, else the testbin cache.
func ESOBin() (string, error) {
	return cached("CREDCHAIN_ESO", "eso-"+strings.TrimPrefix(ESOVersion, "v"), "external-secrets")
}

// RegistryBin returns distribution's registry binary: $CREDCHAIN_REGISTRY, else the testbin cache.
func RegistryBin() (string, error) {
	return cached("CREDCHAIN_REGISTRY", "registry-"+RegistryVersion, "registry")
}

func cached(env, dir, name string) (string, error) {
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(CacheRoot(), dir, name)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found", p)
	}
	return p, nil
}

// Require fails under CI and skips loudly elsewhere when a server lookup returned err.
func Require(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		missing(t, err.Error())
	}
}
