package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
)

func newToolsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "Build and locate the pinned external tools (Kubernetes, etcd, kwok, Gitea) in the tool cache",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "build [NAME...]",
		Short: "Build the named pinned tools, or the default set, into the tool cache (cached ones are reused)",
		Long: `Build the pinned tools from their wrapper modules under tools/ into the tool cache
($HYBRIDTWIN_CACHE, else $XDG_CACHE_HOME/hybridtwin, else ~/.cache/hybridtwin).
Without names it builds the default set (Kubernetes, etcd, kwok, Gitea): about 30 minutes cold on
2 cores, seconds when cached. The Flux controllers (source-controller, kustomize-controller) serve
the 'reconciler: flux' mode; name them, or use --all.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tools, err := selectTools(args)
			if err != nil {
				return err
			}
			if all, _ := cmd.Flags().GetBool("all"); all {
				tools = toolcache.Pinned()
			}
			c, err := toolcache.New()
			if err != nil {
				return err
			}
			c.Progress = cmd.ErrOrStderr()
			start := time.Now()
			results, err := c.EnsureAll(cmd.Context(), tools)
			if err != nil {
				return err
			}
			built := 0
			for i, r := range results {
				state := "cached"
				if r.Built {
					state, built = "built in "+r.Elapsed.Round(time.Second).String(), built+1
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-24s %-10s %s (%s)\n", tools[i].Name, tools[i].Version, r.Path, state)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d tools ready (%d built) in %s\n", len(results), built, time.Since(start).Round(time.Second))
			return nil
		},
	})
	cmd.Commands()[0].Flags().Bool("all", false, "build every pinned tool, the optional Flux controllers included")
	cmd.AddCommand(&cobra.Command{
		Use:   "path NAME",
		Short: "Print the cache path of a pinned tool, building it first if needed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tools, err := selectTools(args)
			if err != nil {
				return err
			}
			c, err := toolcache.New()
			if err != nil {
				return err
			}
			c.Progress = cmd.ErrOrStderr()
			r, err := c.Ensure(cmd.Context(), tools[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), r.Path)
			return nil
		},
	})
	return cmd
}

func selectTools(names []string) ([]toolcache.Tool, error) {
	if len(names) == 0 {
		return toolcache.Default(), nil
	}
	var out []toolcache.Tool
	for _, n := range names {
		t, ok := toolcache.Lookup(n)
		if !ok {
			var known []string
			for _, p := range toolcache.Pinned() {
				known = append(known, p.Name)
			}
			return nil, &exitError{2, fmt.Errorf("unknown tool %q: the pinned tools are %s", n, strings.Join(known, ", "))}
		}
		out = append(out, t)
	}
	return out, nil
}
