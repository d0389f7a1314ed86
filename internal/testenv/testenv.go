// Package testenv finds the real servers built by hack/testbin.sh and ESO's CRDs for tests. A test
// that needs a server it cannot find fails under CI (CI=true) and skips loudly elsewhere, naming the
// command that builds it; `make test` always builds first, so it never skips there.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// CacheRoot is where hack/testbin.sh puts its builds.
func CacheRoot() string {
	if d := os.Getenv("CREDCHAIN_TESTBIN"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "credchain", "testbin")
}

// missing fails under CI and skips (with the fix in the message) elsewhere.
func missing(t testing.TB, what string) {
	t.Helper()
	msg := what + "; build it with `make testbin` (or run `make test`, which does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// NeedsServer skips the test under -short (`make unit`): it is about to start a real server or
// process built by hack/testbin.sh. Every starter in this package calls it first, so -short means
// no server, whatever is in the cache.
func NeedsServer(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs " + what)
	}
}

// Require fails under CI and skips loudly elsewhere when a server lookup returned err.
func Require(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		missing(t, err.Error())
	}
}
