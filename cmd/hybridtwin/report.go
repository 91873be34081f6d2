package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/reports"
)

func newReportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Render, merge and compare results (benchmark runs)",
	}
	var threshold, output, out string
	var history []string
	var noiseAware bool
	compare := &cobra.Command{
		Use:   "compare BASE.json NEW.json",
		Short: "Compare a benchmark run against a baseline; exit 1 if a metric regressed beyond the threshold",
		Long: `Compare every metric's median in NEW against BASE (files written by 'go tool task bench').
A metric regresses when it is worse than the baseline by more than its tolerance in its own direction
(slower, bigger, or lower throughput), or when it is missing from NEW. The tolerance is --threshold,
widened with --noise-aware (the default) to the metric's own noise when that is larger: twice the
distance from the median to the worse quartile of either run's samples, over the median (a metric
whose samples scatter by 40% cannot be said to regress by 15%). Exit codes: 0 no regression,
1 regression, 2 the files could not be read.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseThreshold(threshold)
			if err != nil {
				return &exitError{2, err}
			}
			base, err := result.Read(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			next, err := result.Read(args[1])
			if err != nil {
				return &exitError{2, err}
			}
			var hist []*result.Run
			for _, h := range history {
				r, err := result.Read(h)
				if err != nil {
					return &exitError{2, err}
				}
				hist = append(hist, r)
			}
			c := reports.Compare(base, next, reports.CompareOptions{Threshold: t, NoiseAware: noiseAware}, hist...)
			var w io.Writer = cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return &exitError{2, fmt.Errorf("write the comparison: %w", err)}
				}
				defer f.Close()
				w = f
			}
			switch output {
			case "text":
				err = reports.ComparisonText(w, c)
			case "json":
				err = reports.ComparisonJSON(w, c)
			case "html":
				err = reports.ComparisonHTML(w, c)
			default:
				return &exitError{2, fmt.Errorf("-o %q: want text, json or html", output)}
			}
			if err != nil {
				return &exitError{2, err}
			}
			if out != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			}
			if c.Regressed() {
				return &exitError{1, fmt.Errorf("regressed beyond %s: %s", c.ToleranceText(), strings.Join(c.Failed, ", "))}
			}
			return nil
		},
	}
	compare.Flags().StringVar(&threshold, "threshold", "10%", "tolerated relative worsening per metric, e.g. 10% or 0.1")
	compare.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or html")
	compare.Flags().StringVar(&out, "out", "", "write the report to this file instead of standard output")
	compare.Flags().StringSliceVar(&history, "history", nil, "older result files, oldest first, for the trend lines of the HTML report")
	compare.Flags().BoolVar(&noiseAware, "noise-aware", true, "widen a metric's tolerance to its own noise (sample scatter) when larger than --threshold")
	cmd.AddCommand(compare, newReportMergeCommand(), newReportGoBenchCommand(), newReportMachineKindCommand())
	return cmd
}

func newReportMergeCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge -o OUT.json IN.json|DIR...",
		Short: "Merge the benchmark drivers' result files of one run into one result file",
		Long: `Merge the result files the benchmark drivers wrote (bench/result schema) into one run: every
metric, the environment facts united (tools, notes prefixed with the driver's name, the time profile).
A directory stands for every *.json in it except OUT and files of another schema (a driver's own
detail file, like cluster-start.json), which are skipped with a line on standard error.
Cores, memory, CPU model, Go version, pinned tool versions and the time profile must agree between the
files, and no metric may be in two files: otherwise nothing is written and the exit code is 2.`,
		Example: `  hybridtwin report merge -o out/bench/20261121T180000Z/bench.json out/bench/20261121T180000Z/`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &exitError{2, fmt.Errorf("merge: -o OUT.json is required")}
			}
			outAbs, _ := filepath.Abs(out)
			var parts []result.Part
			for _, a := range args {
				st, err := os.Stat(a)
				if err != nil {
					return &exitError{2, fmt.Errorf("merge: %w", err)}
				}
				if !st.IsDir() {
					r, err := result.Read(a)
					if err != nil {
						return &exitError{2, fmt.Errorf("merge: %w", err)}
					}
					parts = append(parts, result.Part{Name: result.PartName(a), Run: r})
					continue
				}
				files, err := filepath.Glob(filepath.Join(a, "*.json"))
				if err != nil {
					return &exitError{2, err}
				}
				sort.Strings(files)
				for _, f := range files {
					if abs, _ := filepath.Abs(f); abs == outAbs {
						continue
					}
					r, err := result.Read(f)
					if errors.Is(err, result.ErrSchema) {
						fmt.Fprintf(cmd.ErrOrStderr(), "merge: skipping %s: %v\n", f, err)
						continue
					}
					if err != nil {
						return &exitError{2, fmt.Errorf("merge: %w", err)}
					}
					parts = append(parts, result.Part{Name: result.PartName(f), Run: r})
				}
			}
			if len(parts) == 0 {
				return &exitError{2, fmt.Errorf("merge %s: no benchmark result file found", strings.Join(args, " "))}
			}
			run, err := result.Merge(parts...)
			if err != nil {
				return &exitError{2, err}
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return &exitError{2, fmt.Errorf("merge: %w", err)}
			}
			if err := run.Write(out); err != nil {
				return &exitError{2, err}
			}
			var names []string
			for _, p := range run.Parts {
				names = append(names, fmt.Sprintf("%s (%d)", p.Name, p.Metrics))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged %d metrics from %s into %s (machine kind %s)\n", len(run.Metrics), strings.Join(names, ", "), out, run.Env.MachineKind())
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the merged result file to write")
	return cmd
}

func newReportGoBenchCommand() *cobra.Command {
	var out, prefix string
	var notes []string
	cmd := &cobra.Command{
		Use:   "gobench [FILE]",
		Short: "Turn 'go test -bench' text output into a benchmark result file",
		Long: `Read the text output of 'go test -bench' (FILE, or standard input without one or with -) and write
it as a result file (bench/result schema): a metric per benchmark and unit, named
<prefix>.<benchmark>.<unit> (prefix: the package's last path element unless --prefix), every -count
repetition a sample, the project's goals for these metrics attached. A failed benchmark, or output
without a benchmark line, is an error (exit 2) and nothing is written.`,
		Example: `  go test -run '^$' -bench . -count 3 ./hardware/ | tee planner.txt
  hybridtwin report gobench -o out/bench/latest/hardware-planner.json planner.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			name := "standard input"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return &exitError{2, fmt.Errorf("gobench: %w", err)}
				}
				defer f.Close()
				in, name = f, args[0]
			}
			run, err := result.ParseGoBench(in, prefix)
			if err != nil {
				return &exitError{2, fmt.Errorf("gobench %s: %w", name, err)}
			}
			run.RunAt = time.Now().UTC()
			run.Env.Notes = append(run.Env.Notes, notes...)
			run.Env.Notes = append(run.Env.Notes, "goals: "+result.GoalsVersion)
			if out == "" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(run)
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return &exitError{2, fmt.Errorf("gobench: %w", err)}
			}
			if err := run.Write(out); err != nil {
				return &exitError{2, err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d metrics from %s to %s\n", len(run.Metrics), name, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the result file to write (default: standard output)")
	cmd.Flags().StringVar(&prefix, "prefix", "", "metric name prefix (default: the last element of each benchmark's package path)")
	cmd.Flags().StringArrayVar(&notes, "note", nil, "a note for the environment (repeatable), e.g. the go test command line")
	return cmd
}

func newReportMachineKindCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "machine-kind [RUN.json]",
		Short: "Print the machine kind of a benchmark run (or of this machine), the name of its baseline file",
		Long: `Print <goos>-<goarch>-<cores>cpu-<memory in GiB>gib for a result file, or for this machine without
one. Baselines are kept as bench/results/baseline/<machine kind>.json.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env := result.CurrentEnvironment()
			if len(args) == 1 {
				r, err := result.Read(args[0])
				if err != nil {
					return &exitError{2, err}
				}
				env = r.Env
			}
			fmt.Fprintln(cmd.OutOrStdout(), env.MachineKind())
			return nil
		},
	}
}

func parseThreshold(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("--threshold %q: want a non-negative percentage like 10%% or a fraction like 0.1", s)
	}
	if pct {
		v /= 100
	}
	return v, nil
}
