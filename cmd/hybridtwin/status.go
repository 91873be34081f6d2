package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/twin"
)

// twinTarget selects a running twin for status, down and host: --state-dir, --name, -f SPEC, or the
// only twin in the state root.
type twinTarget struct {
	stateDir, name, file string
}

func (t *twinTarget) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.stateDir, "state-dir", "", "the twin's state directory")
	cmd.Flags().StringVar(&t.name, "name", "", "the twin's name (metadata.name); its state is $XDG_STATE_HOME/hybridtwin/<name>")
	cmd.Flags().StringVarP(&t.file, "file", "f", "", "the twin's spec; its metadata.name names the twin")
}

func (t *twinTarget) dir() (string, error) {
	switch {
	case t.stateDir != "":
		return filepath.Abs(t.stateDir)
	case t.name != "":
		return twin.DefaultStateDir(t.name)
	case t.file != "":
		spec, err := twin.LoadSpec(t.file)
		if err != nil {
			return "", &exitError{2, err}
		}
		return twin.DefaultStateDir(spec.Metadata.Name)
	}
	root, err := twin.StateRoot()
	if err != nil {
		return "", err
	}
	entries, _ := os.ReadDir(root)
	var found []string
	for _, e := range entries {
		if _, err := os.Stat(twin.SocketPath(filepath.Join(root, e.Name()))); err == nil {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 1:
		return filepath.Join(root, found[0]), nil
	case 0:
		return "", fmt.Errorf("%w in %s; start one with `hybridtwin up -f twin.yaml`, or name it with --state-dir", twin.ErrNotRunning, root)
	}
	return "", &exitError{2, fmt.Errorf("%d twins run (%s); pick one with --name", len(found), strings.Join(found, ", "))}
}

// dial connects to the twin the flags select; the context is the command's.
func (t *twinTarget) dial(cmd *cobra.Command) (*twin.Remote, context.Context, error) {
	dir, err := t.dir()
	if err != nil {
		return nil, nil, err
	}
	r, err := twin.Dial(dir)
	if err != nil {
		return nil, nil, err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return r, ctx, nil
}

// checkOutput refuses an -o other than text or json (exit 2).
func checkOutput(output string) error {
	if output != "text" && output != "json" {
		return &exitError{2, fmt.Errorf("-o %q: use text or json", output)}
	}
	return nil
}

// printResult prints v as indented JSON, or as text does.
func printResult[T any](w io.Writer, output string, v T, text func(io.Writer, T)) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w, v)
	return nil
}

func newStatusCommand() *cobra.Command {
	var target twinTarget
	var output string
	cmd := &cobra.Command{
		Use:   "status [--name NAME | --state-dir DIR | -f twin.yaml] [-o text|json]",
		Short: "Show a running twin: components, hosts, VMs, nodes and GitOps compliance",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			r, ctx, err := target.dial(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
			st, err := r.Status(ctx)
			if err != nil {
				return err
			}
			return printResult(cmd.OutOrStdout(), output, st, printStatus)
		},
	}
	target.flags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func printStatus(out io.Writer, st *twin.Status) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "twin %s (time profile %s, up %s, state %s)\n", st.Name, st.TimeProfile, st.Uptime, st.StateDir)
	fmt.Fprintf(w, "kubeconfig %s; gitea %s; registry %s; arc %s\n\n", st.Info.Kubeconfig, st.Info.GiteaURL, st.Info.Registry, st.Info.ArcEndpoint)
	fmt.Fprintln(w, "COMPONENT\tPID\tPORTS\tUP\tRESTARTS\tDETAIL")
	for _, c := range st.Components {
		fmt.Fprintf(w, "%s\t%d\t%s\t%t\t%d\t%s\n", c.Name, c.PID, ports(c.Ports), c.Up, c.Restarts, c.Detail)
	}
	if len(st.Restarts) > 0 {
		fmt.Fprintln(w, "\nRESTARTED\tAT\tRESTARTS\tNEW PID\tCRASHED WITH")
		for _, r := range st.Restarts {
			why := r.Exited
			if r.Error != "" {
				why += "; restart failed: " + r.Error
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", r.Component, r.At.UTC().Format(time.TimeOnly), r.Restarts, r.PID, why)
		}
	}
	fmt.Fprintln(w, "\nHOST\tSTATE\tVCPU USED\tMEMORY USED\tVMS")
	for _, h := range st.Hosts {
		fmt.Fprintf(w, "%s\t%s\t%d/%s\t%d/%s GiB\t%s\n", h.Name, h.State, h.VCPUUsed, trimFloat(h.VCPUCapacity),
			h.MemoryUsedGiB, trimFloat(h.MemoryCapacityGiB), strings.Join(h.VMs, ","))
	}
	fmt.Fprintln(w, "\nVM\tROLE\tCLUSTER\tSTATE\tHOST\tNODE READY")
	var stranded []twin.VMState
	for _, v := range st.VMs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Role, v.Cluster, v.State, v.Host, v.NodeReady)
		if v.Reason != "" {
			stranded = append(stranded, v)
		}
	}
	if len(stranded) > 0 {
		fmt.Fprintln(w, "\nSTRANDED VM\tWHY (the hardware model)")
		for _, v := range stranded {
			fmt.Fprintf(w, "%s\t%s\n", v.Name, v.Reason)
		}
	}
	fmt.Fprintln(w, "\nCLUSTER\tNODE\tREADY\tHCI HOST")
	for _, c := range st.Clusters {
		if c.Error != "" {
			fmt.Fprintf(w, "%s\t-\t-\t%s\n", c.Name, c.Error)
		}
		for _, n := range c.Nodes {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Name, n.Name, n.Ready, n.Host)
		}
	}
	fmt.Fprintln(w, "\nCLUSTER\tFLUXCONFIGURATION\tCOMPLIANCE\tCOMMIT\tMESSAGE")
	for _, g := range st.GitOps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", g.Cluster, g.Name, g.ComplianceState, g.SyncedCommit, g.Message)
		for _, k := range g.Kustomizations {
			name := k.Name
			if k.AppliedBy != "" { // one a configuration's Kustomization applied (the bootstrap layout's)
				name = k.Namespace + "/" + k.Name + " (applied by " + k.AppliedBy + ")"
			}
			fmt.Fprintf(w, "\t  kustomization %s\t%s\t\t%s\n", name, k.ComplianceState, k.Message)
		}
	}
	_ = w.Flush()
}

// trimFloat prints a capacity without trailing zeros: 64, 243.2.
func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func ports(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}
