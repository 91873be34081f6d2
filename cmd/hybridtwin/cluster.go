package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/twin"
)

func newClusterCommand() *cobra.Command {
	var target twinTarget
	var output string
	cmd := &cobra.Command{
		Use:   "cluster add -f cluster.yaml | cluster delete|recreate NAME | cluster scale NAME POOL COUNT [--name TWIN | --state-dir DIR]",
		Short: "Add, delete, recreate or scale a workload cluster of a running twin",
		Long: `cluster changes the workload clusters of a running twin; the hardware model decides first.
  add -f cluster.yaml    onboard a new cluster from a cluster file (see cluster add --help): VMs placed,
                         control plane and nodes started, connected to Arc, configurations Compliant
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
				return &exitError{2, fmt.Errorf("give an operation and a cluster: cluster add -f cluster.yaml, cluster delete|recreate NAME, or cluster scale NAME POOL COUNT")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
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
				return &exitError{2, fmt.Errorf("%q is not a cluster operation; use add, delete, recreate or scale", op)}
			}
			r, ctx, err := target.dial(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
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
			return printResult(cmd.OutOrStdout(), output, rep, printClusterReport)
		},
	}
	target.flags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.AddCommand(newClusterAddCommand())
	return cmd
}

func newClusterAddCommand() *cobra.Command {
	var target twinTarget
	var file, output string
	cmd := &cobra.Command{
		Use:   "add -f cluster.yaml [--twin NAME | --state-dir DIR] [-o text|json]",
		Short: "Onboard a new workload cluster on a running twin from a cluster file",
		Long: `add onboards a new workload cluster on a running twin, as a platform team onboards a new AKS
cluster on Azure Stack HCI: the cluster file is checked first (an unknown field, a taken name, a VM size the
profile lacks, a configuration naming a repository the twin does not serve: exit 2, naming the file, line
and field, nothing started); then the hardware model decides on the running estate with the N-1 reserve
it is planned with (a no prints the model's reason, exit 1, nothing changed); then the control plane and
its nodes start, the cluster is connected to Arc, the spec's configurations that target every cluster and
the file's own are created, and the command waits until they are Compliant. Each stage is printed as it
is done. A failure part-way, or Ctrl-C, undoes everything the add started.

The cluster file is one entry of a ClusterPlan's workloadClusters, with the Kubernetes version and,
optionally, GitOps configurations in the twin spec's spec.gitops shape (clusters may be left out):

  name: edge
  kubernetesVersion: v1.33.13          # optional; the twin runs this release only
  controlPlane: {count: 1, vmSize: Standard_A4_v2}
  nodePools:
  - {name: linux, vmSize: Standard_K8S3_v1, count: 2}
  gitops:                              # optional
  - name: edge-apps
    repo: gitops-config                # a repository of the twin spec's spec.git.repos
    ref: {branch: main}
    kustomizations:
      apps: {path: ./apps, prune: true}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if file == "" {
				return &exitError{2, errors.New("-f: give the cluster file (name, kubernetesVersion, controlPlane, nodePools, gitops); see hybridtwin cluster add --help")}
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return &exitError{2, fmt.Errorf("-f %s: cannot read the cluster file: %w", file, errors.Unwrap(err))}
			}
			// What needs no twin is checked before dialling one.
			f, err := twin.ParseClusterFragment(file, data)
			if err != nil {
				return &exitError{2, err}
			}
			r, ctx, err := target.dial(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
			errw := cmd.ErrOrStderr()
			fmt.Fprintf(errw, "add cluster %s from %s: the hardware model decides first\n", f.Name, file)
			rep, err := r.AddCluster(ctx, file, data, func(s twin.LifecycleStep) { fmt.Fprintln(errw, stepLine(s)) })
			var fe *twin.ClusterFileError
			var ce *twin.CapacityError
			switch {
			case err == nil:
			case errors.As(err, &fe):
				return &exitError{2, err}
			case errors.As(err, &ce):
				return fmt.Errorf("%w\n%s", err, shrinkHint(f))
			case ctx.Err() != nil:
				return undone(r, errw, f.Name, err)
			default:
				return err
			}
			return printResult(cmd.OutOrStdout(), output, rep, printClusterReport)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the cluster file")
	cmd.Flags().StringVar(&target.name, "twin", "", "the twin's name (metadata.name); its state is $XDG_STATE_HOME/hybridtwin/<name>")
	cmd.Flags().StringVar(&target.stateDir, "state-dir", "", "the twin's state directory")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// shrinkHint points at the fields of the cluster file that size it, for a cluster the model refused.
func shrinkHint(f *twin.ClusterFragment) string {
	var at []string
	for i, np := range f.NodePools {
		field := fmt.Sprintf("nodePools[%d].count", i)
		at = append(at, fmt.Sprintf("%s:%d: %s: %d", f.File, f.Line(field), field, np.Count))
	}
	return "  make the cluster smaller, or free room on the estate first (hybridtwin capacity shows the plan's headroom):\n    " + strings.Join(at, "\n    ")
}

// undone waits, after Ctrl-C, until the twin has undone the interrupted add -- no VM of the cluster is
// left in the hardware model and the cluster does not run -- and says so.
func undone(r *twin.Remote, w io.Writer, name string, cause error) error {
	fmt.Fprintf(w, "interrupted: the twin undoes what the add of %s started; waiting for it\n", name)
	prof, _ := twin.RunProfileFor("") // UndoWait and UndoPoll are the same in every time profile
	ctx, cancel := context.WithTimeout(context.Background(), prof.UndoWait)
	defer cancel()
	tick := time.NewTicker(prof.UndoPoll)
	defer tick.Stop()
	for {
		st, err := r.Status(ctx)
		if err == nil && !clusterLeft(st, name) {
			return &exitError{130, fmt.Errorf("add cluster %s interrupted; undone: nothing of it runs (%v)", name, cause)}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("add cluster %s interrupted, and the twin did not confirm the undo within %s: check `hybridtwin status` (%v)", name, prof.UndoWait, cause)
		case <-tick.C:
		}
	}
}

// clusterLeft says whether anything of the cluster is in the twin: a VM in the model or the cluster.
func clusterLeft(st *twin.Status, name string) bool {
	if slices.ContainsFunc(st.VMs, func(v twin.VMState) bool { return v.Cluster == name }) {
		return true
	}
	return slices.ContainsFunc(st.Clusters, func(c twin.ClusterStatus) bool { return c.Name == name })
}

func stepLine(s twin.LifecycleStep) string {
	line := fmt.Sprintf("  [%6.1fs] %s", s.After.Seconds(), s.Step)
	if s.Detail != "" {
		line += ": " + s.Detail
	}
	return line
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
		fmt.Fprintln(w, stepLine(s))
	}
	if rep.Capacity != "" {
		fmt.Fprintf(w, "  hardware: %s\n", rep.Capacity)
	}
}
