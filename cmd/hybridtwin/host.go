package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/twin"
)

func newHostCommand() *cobra.Command {
	var target twinTarget
	cmd := &cobra.Command{
		Use:   "host fail|drain|repair NAME [--name TWIN | --state-dir DIR]",
		Short: "Crash, drain or repair an HCI host of a running twin; its VMs' nodes follow",
		Long: `host drives the hardware model of a running twin:
  fail    the host crashes: its VMs' nodes are cut off; after the failover delay the VMs restart on
          surviving hosts (their nodes come back, relabelled) or stay stranded (their nodes stay down)
  drain   planned maintenance: the VMs live-migrate away; their nodes stay Ready and are relabelled
  repair  the host is back; stranded VMs restart`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := twin.HostOp(args[0])
			if op != twin.HostFail && op != twin.HostDrain && op != twin.HostRepair {
				return &exitError{2, fmt.Errorf("%q is not a host operation; use fail, drain or repair", args[0])}
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
