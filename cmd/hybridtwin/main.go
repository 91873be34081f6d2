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
)

func main() {
	// Ctrl-C and SIGTERM cancel the context: every long step (tool builds, bring-up) stops and cleans up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(exitCode(err))
	}
}
