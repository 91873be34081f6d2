package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/twin"
	"github.com/hybridtwin/hybridtwin/twin/hostops"
)

func newHostCommand() *cobra.Command {
	var target twinTarget
	cmd := &cobra.Command{
		Use:   "host " + strings.Join(hostops.Names(), "|") + " NAME [--name TWIN | --state-dir DIR]",
		Short: "Crash, drain or repair an HCI host of a running twin; its VMs' nodes follow",
		Long:  "host drives the hardware model of a running twin:\n" + hostOpsHelp(),
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := twin.HostOp(args[0])
			if _, ok := hostops.Lookup(op); !ok {
				return &exitError{2, fmt.Errorf("%q is not a host operation; use %s", args[0], strings.Join(hostops.Names(), ", "))}
			}
			dir, err := target.dir()
			if err != nil {
				return err
			}
			r, err := twin.Dial(dir)
			if err != nil {
				return err
			}
			defer r.Close()
			recs, err := r.Host(cmd.Context(), op, args[1])
			if err != nil {
				return err
			}
			for _, rec := range recs {
				line := rec.Event.String()
				if len(rec.Actions) > 0 {
					acts := make([]string, len(rec.Actions))
					for i, a := range rec.Actions {
						acts[i] = string(a)
					}
					line += fmt.Sprintf(" -> node %s/%s: %s", rec.Cluster, rec.Node, strings.Join(acts, ", "))
				}
				if rec.Error != "" {
					line += " (error: " + rec.Error + ")"
				}
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			return nil
		},
	}
	target.flags(cmd)
	return cmd
}

// hostOpsHelp lists the host operations of the table (hostops.Operations), one per line.
func hostOpsHelp() string {
	var b strings.Builder
	for _, o := range hostops.Operations {
		fmt.Fprintf(&b, "  %-7s %s\n", o.Op, o.Doc)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
