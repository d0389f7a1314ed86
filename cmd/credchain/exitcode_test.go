package main

import (
	"context"
	"errors"
	"testing"

	"github.com/credchain/credchain/cmd/credchain/app"
)

// Bad input exits 2, any other failure 1.
func TestExitCode(t *testing.T) {
	root := app.NewRootCommand(context.Background(), app.DefaultRunners())
	root.SetArgs([]string{"capabilities", "--policy-dir", t.TempDir(), "--policy", "no-such-policy", "secret/data/x"})
	root.SilenceErrors, root.SilenceUsage = true, true
	err := root.Execute()
	if err == nil {
		t.Fatal("a missing policy was accepted")
	}
	if got := exitCode(err); got != 2 {
		t.Errorf("exit code for %q = %d, want 2", err, got)
	}
	if got := exitCode(errors.New("vault unreachable")); got != 1 {
		t.Errorf("exit code for a plain failure = %d, want 1", got)
	}
}
