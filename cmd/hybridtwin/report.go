package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/bench/result"
	"github.com/hybridtwin/hybridtwin/reports"
)

func newReportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Render and compare results (benchmark runs)",
	}
	var threshold, output, out string
	var history []string
	compare := &cobra.Command{
		Use:   "compare BASE.json NEW.json",
		Short: "Compare a benchmark run against a baseline; exit 1 if a metric regressed beyond the threshold",
		Long: `Compare every metric's median in NEW against BASE (files written by 'go tool task bench').
A metric regresses when it is worse than the baseline by more than --threshold in its own direction
(slower, bigger, or lower throughput), or when it is missing from NEW. Exit codes: 0 no regression,
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
			c := reports.CompareRuns(base, next, t, hist...)
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
				return &exitError{1, fmt.Errorf("regressed beyond %s: %s", threshold, strings.Join(c.Failed, ", "))}
			}
			return nil
		},
	}
	compare.Flags().StringVar(&threshold, "threshold", "10%", "tolerated relative worsening per metric, e.g. 10% or 0.1")
	compare.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or html")
	compare.Flags().StringVar(&out, "out", "", "write the report to this file instead of standard output")
	compare.Flags().StringSliceVar(&history, "history", nil, "older result files, oldest first, for the trend lines of the HTML report")
	cmd.AddCommand(compare)
	return cmd
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
