// Command demo replays the order-service incident for a person: the healthy chain, the policy
// delete undone by credchain's audit guard, and the incident as it happened without the guard —
// the rollout denied with Vault's 403 instead of pods in ImagePullBackOff — then the runbook's fix.
// Every server is real and local (see e2e/), and everything stops when it ends.
//
// Run it with `make demo`, which builds the servers (hack/testbin.sh) and credchain first.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/credchain/credchain/e2e"
)

func main() {
	credchain := flag.String("credchain", "bin/credchain", "credchain binary")
	manifests := flag.String("manifests", "manifests", "the repository's manifests directory")
	keep := flag.Bool("keep-logs", false, "keep the work directory (every server's log) after the demo")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *credchain, *manifests, *keep)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, credchain, manifests string, keep bool) error {
	dir, err := os.MkdirTemp("", "credchain-demo-")
	if err != nil {
		return err
	}
	if keep {
		defer fmt.Printf("\nlogs kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	n := e2e.Console{W: os.Stdout}
	start := time.Now()
	s, err := e2e.Start(ctx, e2e.Options{Credchain: credchain, Manifests: manifests, Dir: dir, Narrator: n})
	if err != nil {
		return err
	}
	defer func() {
		n.Step("Cleaning up: stopping credchain, ESO, the registry, Vault, NATS, kube-apiserver and etcd")
		s.Stop()
	}()
	n.Say("demo", fmt.Sprintf("every server up in %s", time.Since(start).Round(100*time.Millisecond)))
	fail := func(err error) error { return fmt.Errorf("%w\n%s", err, s.Logs()) }
	if err := s.Healthy(ctx); err != nil {
		return fail(err)
	}
	window, err := s.GuardOn(ctx)
	if err != nil {
		return fail(err)
	}
	n.Say("demo", fmt.Sprintf("with the guard on, the policy was missing for %s and nothing broke", window.Round(100*time.Microsecond)))
	if err := s.GuardOff(ctx); err != nil {
		return fail(err)
	}
	n.Step("Done: the guard undoes the delete that broke production; without it, the webhook stops the broken rollout " +
		"at apply time with the reason, where Kubernetes would only have shown ImagePullBackOff")
	return nil
}
