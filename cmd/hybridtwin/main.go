// Command hybridtwin runs a digital twin of an AKS hybrid + Azure Arc + Flux GitOps platform on one machine.
//
// This package only parses flags, calls the project's packages and prints; the work lives in the packages.
// Each subcommand is in its own file.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hybridtwin/hybridtwin/reconciler"
)

func main() {
	// The twin's reconcilers run in this process: give it their garbage-collector setting (GOGC and
	// GOMEMLIMIT in the environment win).
	reconciler.SetProcessGC(reconciler.DefaultProfile())
	// Ctrl-C and SIGTERM cancel the context: every long step (tool builds, bring-up) stops and cleans up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(exitCode(err))
	}
}
