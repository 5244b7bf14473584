package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/output"
	"github.com/ferryworks/ferry/internal/render"
)

const checkAccessUsage = `Check whether ferry can read attachments for a customer, without copying.

For each URI it reports the parsed form, the access mode (delegated,
cross_account or https), the AssumeRole result, the bucket's region, the
HeadObject result and, when the object is not readable, the stage, the AWS
error code and a hint the customer can act on.

Exit status: 0 when every URI is readable, 1 when any is not.`

// checkAccessCommand is `ferry check-access`.
type checkAccessCommand struct {
	app      *app
	customer string
	format   *output.Flag
}

func newCheckAccessCommand(a *app) *cobra.Command {
	c := &checkAccessCommand{app: a, format: output.NewFlag()}
	cmd := &cobra.Command{
		Use:   "check-access --customer C URI...",
		Short: "Check that ferry can read attachments (copies nothing)",
		Long:  checkAccessUsage,
		RunE:  func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
	cmd.Flags().StringVar(&c.customer, "customer", "", "the `ID` of the customer whose integration and policy apply")
	c.format.Register(cmd.Flags())
	return a.settings(cmd, config.GroupRedis, config.GroupCredentials, config.GroupCopy, config.GroupS3, config.GroupAWS)
}

// Run checks every URI for the customer and exits 1 when any is unreadable.
func (c *checkAccessCommand) Run(ctx context.Context, uris []string) error {
	a, customer, format := c.app, c.customer, c.format.Format
	if customer == "" {
		return usagef("check-access needs --customer: the customer whose credentials and policy apply")
	}
	if len(uris) == 0 {
		return usagef("check-access needs at least one URI (s3://bucket/key or https://…)")
	}
	_, copier, err := a.readAccess(ctx, a.cfg.Bucket)
	if err != nil {
		return err
	}
	reports := make([]fetcher.CheckReport, 0, len(uris))
	allOK := true
	for _, u := range uris {
		rep := copier.Check(ctx, customer, u)
		allOK = allOK && rep.OK
		reports = append(reports, rep)
		if format == output.Text {
			// People see each answer as soon as it is known.
			render.CheckReport(a.stdout, rep)
		}
	}
	if format != output.Text {
		if err := output.New(a.stdout, format).Document(reports, nil); err != nil {
			return err
		}
	}
	if !allOK {
		return exitError{code: 1}
	}
	return nil
}
