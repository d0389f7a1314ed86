// Command credchain keeps the chain Vault policy → Kubernetes auth role → ESO SecretStore →
// ExternalSecret → Secret → imagePullSecrets → workload from breaking silently.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/credchain/credchain/cmd/credchain/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.NewRootCommand(ctx, app.DefaultRunners()).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "credchain:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is 1 for a failure, or what the error says: bad input is 2 (`capabilities`, `check`),
// so a CI job can tell "the change breaks something" from "the job is misconfigured".
func exitCode(err error) int {
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return 1
}
