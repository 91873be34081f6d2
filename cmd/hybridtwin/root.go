package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code other than 1 (for example 2 for bad input, as `capacity` documents).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "hybridtwin",
		Short: "A digital twin of an AKS hybrid GitOps platform (Azure Stack HCI, Azure Arc, Flux v2)",
		Long: `hybridtwin runs a faithful stand-in of an AKS hybrid estate on one machine: the HCI hardware model,
real Kubernetes control planes for the workload clusters, a real Gitea and OCI registry, Azure Arc fakes
and a Flux-semantics reconciler, so platform teams can see whether their GitOps repositories converge,
how fast, and what happens on drift and host failure.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// A flag the command does not know, or a bad value, is a usage error: exit 2, as the commands'
	// own input errors, never 1, which means findings (validate, diff, capacity).
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{2, fmt.Errorf("%w; see `%s --help`", err, c.CommandPath())}
	})
	root.AddCommand(newVersionCommand(), newDoctorCommand(), newToolsCommand(), newCapacityCommand(),
		newReportCommand(), newUpCommand(), newDownCommand(), newStatusCommand(), newHostCommand())
	root.AddCommand(newValidateCommand(), newDiffCommand())
	root.AddCommand(newClusterCommand())
	return root
}
