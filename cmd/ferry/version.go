package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/internal/buildinfo"
)

const versionUsage = `Print which build of ferry this is: its version, the commit it was built
from and the Go toolchain. A worker reports the same as the metric
ferry_build_info{version,revision,goversion}.`

func newVersionCommand(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Long:  versionUsage,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := outputFormat(output); err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(a.stdout, buildinfo.Get())
			}
			_, err := io.WriteString(a.stdout, versionText())
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func versionText() string {
	in := buildinfo.Get()
	return fmt.Sprintf("ferry %s\ncommit: %s\ngo: %s\n", in.Version, in.Revision, in.GoVersion)
}

// versionFlag gives root a --version flag that prints what `ferry version`
// does.
func versionFlag(root *cobra.Command) {
	root.Version = buildinfo.Get().Version
	// A template without actions prints as it is.
	root.SetVersionTemplate(versionText())
}
