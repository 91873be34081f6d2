package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/hybridtwin/hybridtwin/tools/toolcache"
)

// version is stamped by `go tool task build` (-X main.version=...); otherwise it comes from the build info.
var version = ""

func hybridtwinVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hybridtwin's version and the pinned versions of the tools it runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "hybridtwin %s (%s, %s/%s)\n", hybridtwinVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(w, "tool pins %s:\n", toolcache.PinsVersion)
			for _, t := range toolcache.Pinned() {
				fmt.Fprintf(w, "  %-24s %s\n", t.Name, t.Version)
			}
			return nil
		},
	}
}
