package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/internal/buildinfo"
	"github.com/ferryworks/ferry/internal/output"
)

const versionUsage = `Print which build of ferry this is: its version, the commit it was built
from and the Go toolchain. A worker reports the same as the metric
ferry_build_info{version,revision,goversion}.`

func newVersionCommand(a *app) *cobra.Command {
	format := output.NewFlag()
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Long:  versionUsage,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := a.need(); err != nil {
				return err
			}
			return output.New(a.stdout, format.Format).Document(buildinfo.Get(), func(w io.Writer) error {
				_, err := io.WriteString(w, buildinfo.Get().Text())
				return err
			})
		},
	}
	format.Register(cmd.Flags())
	return a.settings(cmd)
}

// versionFlag gives root a --version flag that prints what `ferry version`
// does.
func versionFlag(root *cobra.Command) {
	root.Version = buildinfo.Get().Version
	// A template without actions prints as it is.
	root.SetVersionTemplate(buildinfo.Get().Text())
}
