package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/internal/output"
)

const optionsUsage = `List every setting ferry reads: its environment variable, the flag the
commands that read it take, its default, what it means and which commands
read it. A command's --help lists only the settings that command reads.`

// optionsCommand is `ferry options`.
type optionsCommand struct {
	app    *app
	root   *cobra.Command
	format *output.Flag
}

func newOptionsCommand(a *app, root *cobra.Command) *cobra.Command {
	c := &optionsCommand{app: a, root: root, format: output.NewFlag()}
	cmd := &cobra.Command{
		Use: "options", Short: "List every FERRY_* setting with its flag, default and meaning", Long: optionsUsage, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.Run(cmd.Context()) },
	}
	c.format.Register(cmd.Flags())
	return cmd
}

func (c *optionsCommand) Run(context.Context) error {
	readBy := map[config.Group][]string{}
	walk(c.root, func(cmd *cobra.Command) {
		for _, g := range c.app.reads[cmd] {
			readBy[g] = append(readBy[g], cmd.CommandPath()[len(c.root.Name())+1:])
		}
	})
	opts := config.Options(readBy)
	return output.New(c.app.stdout, c.format.Format).Document(opts, func(w io.Writer) error {
		return config.WriteOptions(w, opts)
	})
}

// walk calls fn for cmd and every command below it, in help order.
func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, sub := range cmd.Commands() {
		walk(sub, fn)
	}
}
