package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/twin"
)

func newDownCommand() *cobra.Command {
	var target twinTarget
	var keep bool
	cmd := &cobra.Command{
		Use:   "down [--name NAME | --state-dir DIR | -f twin.yaml] [--keep]",
		Short: "Stop a running twin and remove its state (--keep keeps it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := target.dir()
			if err != nil {
				return err
			}
			r, err := twin.Dial(dir)
			if errors.Is(err, twin.ErrNotRunning) {
				// Its `up` is gone (its children died with it: they run with a parent-death signal); only
				// files can be left.
				if _, serr := os.Stat(dir); serr != nil {
					return err
				}
				if keep {
					fmt.Fprintf(cmd.ErrOrStderr(), "no twin runs in %s; its state is kept\n", dir)
					return nil
				}
				if err := os.RemoveAll(dir); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "no twin was running in %s; removed its state\n", dir)
				return nil
			}
			if err != nil {
				return err
			}
			defer r.Close()
			if err := r.Down(cmd.Context(), keep); err != nil {
				return err
			}
			if keep {
				fmt.Fprintf(cmd.ErrOrStderr(), "twin stopped; state kept in %s\n", dir)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "twin stopped; state %s removed\n", dir)
			}
			return nil
		},
	}
	target.flags(cmd)
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the state directory (kubeconfig, logs, Gitea data)")
	return cmd
}
