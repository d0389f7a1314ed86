// Command credchain keeps the chain Vault policy → Kubernetes auth role → ESO SecretStore →
// ExternalSecret → Secret → imagePullSecrets → workload from breaking silently.
package main

import (
	"context"
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
		os.Exit(1)
	}
}
