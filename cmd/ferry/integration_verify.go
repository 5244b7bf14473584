package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/output"
	"github.com/ferryworks/ferry/internal/render"
)

const integrationVerifyUsage = `Check that ferry can use a customer's integration now, as tasks would.

For a delegated customer: AssumeRole with their external ID (a fresh STS
call, never a cached answer); then, for each --bucket, HeadBucket with the
registered account as the expected bucket owner; then, for each --object, a
one-byte read. A cross-account customer's buckets and objects are checked
with the fleet's credentials (name an --object: HeadBucket needs
s3:ListBucket, which cross-account access does not).

One line per check: ok, or the error with the hint to send the customer. The
result becomes the integration's status (ferry integration list).

A role created or changed a moment ago is refused until IAM has applied it
everywhere; --wait D retries access denied with backoff for up to D, saying
on stderr that it waits.

Exit status: 0 when every check passed, 1 otherwise.`

// integrationVerifyCommand is `ferry integration verify`.
type integrationVerifyCommand struct {
	app              *app
	buckets, objects []string
	wait             time.Duration
	format           *output.Flag
}

func (c *integrationVerifyCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "verify CUSTOMER [--bucket B]... [--object s3://B/KEY]... [--wait D]", Short: "Check that an integration works now",
		Long: integrationVerifyUsage, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args[0]) },
	}
	cmd.Flags().StringArrayVar(&c.buckets, "bucket", nil, "a `BUCKET` of the customer to check (repeatable)")
	cmd.Flags().StringArrayVar(&c.objects, "object", nil, "an object to read one byte of, `s3://BUCKET/KEY` (repeatable)")
	cmd.Flags().DurationVar(&c.wait, "wait", 0, "retry access denied for up to this `DURATION` (e.g. 2m), for a role just created")
	c.format = output.NewFlag()
	c.format.Register(cmd.Flags())
	c.app.settings(cmd, config.GroupRedis, config.GroupCredentials, config.GroupS3, config.GroupAWS)
	// The copy settings that decide how objects are read (FERRY_CROSS_ACCOUNT,
	// FERRY_REQUESTER_PAYS) come from the environment only: here --bucket
	// names the customer's bucket, not FERRY_BUCKET.
	c.app.reads[cmd] = append(c.app.reads[cmd], config.GroupCopy)
	return cmd
}

func (c *integrationVerifyCommand) Run(ctx context.Context, customer string) error {
	if c.wait < 0 {
		return usagef("--wait %v: give a duration of 0 or more, e.g. 2m", c.wait)
	}
	a := c.app
	reg, copier, err := a.readAccess(ctx, "")
	if err != nil {
		return err
	}
	waitUntil := time.Now().Add(c.wait)
	rep := copier.Verify(ctx, fetcher.VerifyRequest{CustomerID: customer, Buckets: c.buckets, Objects: c.objects, Wait: c.wait,
		OnWait: func(failed fetcher.VerifyCheck, next time.Duration) {
			fmt.Fprintf(a.stderr, "waiting: %s %s refused (%s); IAM may not have applied the role yet: next attempt in %s, giving up in %s\n",
				failed.Check, failed.Target, failed.Error.Code, next.Round(100*time.Millisecond), time.Until(waitUntil).Round(time.Second))
		}})
	if rep.Conclusive() {
		now := time.Now()
		if err := reg.RecordVerification(ctx, customer, now, rep.Failure(now)); err != nil {
			fmt.Fprintf(a.stderr, "warning: the integration's status was not updated: %v\n", err)
		}
	}
	if err := output.New(a.stdout, c.format.Format).Document(rep, func(w io.Writer) error {
		render.VerifyReport(w, rep)
		return nil
	}); err != nil {
		return err
	}
	if !rep.OK {
		return exitError{code: 1}
	}
	return nil
}
