// Command ferry is the fleet's one binary: `ferry work` runs a worker, and
// the other subcommands are the tools producers, on-call engineers and
// support use around it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// exitError carries a specific exit code (e.g. 1 from check-access when an
// object is not readable) without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(args []string) int {
	app := newApp()
	defer app.stopTracing()
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "ferry copies customers' attachments from their S3 buckets into internal storage",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return app.loadConfig(cmd)
		},
	}
	versionFlag(root)
	root.AddCommand(
		newWorkCommand(app),
		newEnqueueCommand(app),
		newEventsCommand(app),
		newIntegrationCommand(app),
		newCheckAccessCommand(app),
		newDLQCommand(app),
		newVersionCommand(app),
	)
	root.AddCommand(newOptionsCommand(app, root))
	app.completions(root)
	typeUsageErrors(root)
	root.SetArgs(args)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "ferry:", err)
		if isUsageError(err) {
			return 2
		}
		return 1
	}
}
