package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/hardware"
	"github.com/hybridtwin/hybridtwin/reports"
)

func newCapacityCommand() *cobra.Command {
	var files []string
	var format, outDir string
	cmd := &cobra.Command{
		Use:   "capacity -f INVENTORY.yaml [-f PLAN.yaml] [-o html|json|md] [--out DIR]",
		Short: "Check whether a plan fits an Azure Stack HCI estate (N-1, 15% reserve, S2D, IP pools) and write a report",
		Long: `capacity reads an HCICluster inventory and an optional ClusterPlan (several -f, or several documents
in one file), evaluates the plan with the hardware model of the inventory's limit profile (aks-hci-2022,
aks-arc-23h2) and writes a capacity report: verdict and findings with their sources, headroom of cores,
memory and storage, hosts before and after the worst host failure, the S2D waterfall, IP and VIP pools,
limits, placement and what-if answers (smallest host count, how many more workers fit).

Without --out the report goes to standard output; with --out DIR it is written to DIR/capacity.<format>.

Exit codes: 0 the plan fits, 1 it does not, 2 the input is invalid.`,
		Example: `  hybridtwin capacity -f examples/hardware/branch-4node.yaml -f examples/hardware/plan.yaml
  hybridtwin capacity -f examples/hardware/edge-2node.yaml -f examples/hardware/plan.yaml -o html --out report/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return &exitError{2, errors.New("no input: pass the inventory with -f inventory.yaml (and a plan with another -f)")}
			}
			f, err := reports.ParseFormat(format)
			if err != nil {
				return &exitError{2, err}
			}
			inv, plan, err := hardware.LoadFiles(files...)
			if err != nil {
				return &exitError{2, err}
			}
			res, err := hardware.Analyze(inv, plan)
			if err != nil {
				return &exitError{2, err}
			}
			var buf bytes.Buffer
			if err := reports.WriteCapacity(&buf, f, res); err != nil {
				return fmt.Errorf("render %s report: %w", f, err)
			}
			if outDir == "" {
				if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
					return err
				}
			} else {
				if err := os.MkdirAll(outDir, 0o755); err != nil {
					return fmt.Errorf("create the report directory: %w", err)
				}
				path := filepath.Join(outDir, "capacity."+f.Ext())
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					return fmt.Errorf("write the report: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "report: %s\n", path)
			}
			if !res.Fits {
				return &exitError{1, errors.New(res.Summary())}
			}
			fmt.Fprintln(cmd.ErrOrStderr(), res.Summary())
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "inventory (kind HCICluster) and plan (kind ClusterPlan) YAML files; repeat -f")
	cmd.Flags().StringVarP(&format, "output", "o", "md", "report format: html, json or md")
	cmd.Flags().StringVar(&outDir, "out", "", "write the report to DIR/capacity.<format> instead of standard output")
	return cmd
}
