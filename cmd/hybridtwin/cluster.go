package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/twin"
)

func newClusterCommand() *cobra.Command {
	var target twinTarget
	var output string
	cmd := &cobra.Command{
		Use:   "cluster delete|recreate NAME | cluster scale NAME POOL COUNT [--name TWIN | --state-dir DIR]",
		Short: "Delete, recreate or scale a workload cluster of a running twin",
		Long: `cluster changes the workload clusters of a running twin; the hardware model decides first.
  delete NAME            the disaster: the cluster's Arc agent and reconciler stop, its connectedCluster
                         is deleted (as az connectedk8s delete), its control plane stops and its VMs are
                         released in the hardware model
  recreate NAME          a deleted cluster of the spec comes back as planned: VMs placed, control plane
                         and nodes started, connected to Arc, its configurations created; it converges
                         from Git
  scale NAME POOL COUNT  set a node pool's VM count (as az aksarc nodepool scale); if the VMs do not fit
                         with the N-1 reserve the estate is planned with, nothing changes and the hardware
                         model's reason is printed (exit 1)`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 {
				return &exitError{2, fmt.Errorf("give an operation and a cluster: cluster delete|recreate NAME, or cluster scale NAME POOL COUNT")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return &exitError{2, fmt.Errorf("-o %q: use text or json", output)}
			}
			op := args[0]
			var count int
			switch op {
			case "delete", "recreate":
				if len(args) != 2 {
					return &exitError{2, fmt.Errorf("cluster %s takes one argument, the cluster's name", op)}
				}
			case "scale":
				if len(args) != 4 {
					return &exitError{2, fmt.Errorf("cluster scale takes three arguments: CLUSTER POOL COUNT")}
				}
				n, err := strconv.Atoi(args[3])
				if err != nil || n < 0 {
					return &exitError{2, fmt.Errorf("COUNT %q: give the node pool's new VM count, 0 or more", args[3])}
				}
				count = n
			default:
				return &exitError{2, fmt.Errorf("%q is not a cluster operation; use delete, recreate or scale", op)}
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
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			var rep *twin.ClusterReport
			switch op {
			case "delete":
				rep, err = r.RemoveCluster(ctx, args[1])
			case "recreate":
				rep, err = r.RecreateCluster(ctx, args[1])
			case "scale":
				rep, err = r.ScaleNodePool(ctx, args[1], args[2], count)
			}
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printClusterReport(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	target.flags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func printClusterReport(w io.Writer, rep *twin.ClusterReport) {
	what := fmt.Sprintf("%s %s", rep.Op, rep.Cluster)
	if rep.Op == twin.OpScalePool {
		what = fmt.Sprintf("%s %s/%s: %d -> %d VM(s)", rep.Op, rep.Cluster, rep.Pool, rep.From, rep.To)
		if rep.From == rep.To {
			fmt.Fprintf(w, "%s: nothing to do\n", what)
			return
		}
	}
	fmt.Fprintf(w, "%s: done in %s\n", what, rep.Took.Round(10*time.Millisecond))
	for _, s := range rep.Steps {
		line := fmt.Sprintf("  [%6.1fs] %s", s.After.Seconds(), s.Step)
		if s.Detail != "" {
			line += ": " + s.Detail
		}
		fmt.Fprintln(w, line)
	}
	if rep.Capacity != "" {
		fmt.Fprintf(w, "  hardware: %s\n", rep.Capacity)
	}
}
