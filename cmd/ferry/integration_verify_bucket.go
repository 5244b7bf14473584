package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/credcache"
)

const verifyBucketUsage = `Prove that a customer controls a bucket, for FERRY_CROSS_ACCOUNT=require-verified.

The customer first puts an object at s3://BUCKET/` + credcache.VerificationKeyPrefix + `CUSTOMER
whose content is their verification token (issued by register-account, shown by
show) and lets the fleet's account read it. This command reads it with the
fleet's credentials, pinned to the customer's registered account
(ExpectedBucketOwner), and records the bucket as verified for the customer.

Exit status: 0 when the bucket is verified, 1 when not (the message says why
and what to change).`

// integrationVerifyBucketCommand is `ferry integration verify-bucket`.
type integrationVerifyBucketCommand struct{ app *app }

func (c *integrationVerifyBucketCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "verify-bucket CUSTOMER BUCKET", Short: "Record a bucket the customer proved control of", Long: verifyBucketUsage,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args[0], args[1]) },
	}
	// The proof is read the way check-access reads: the copy settings say
	// whether the fleet pays for Requester Pays buckets.
	return c.app.settings(cmd, config.GroupRedis, config.GroupCredentials, config.GroupCopy, config.GroupS3, config.GroupAWS)
}

func (c *integrationVerifyBucketCommand) Run(ctx context.Context, customer, bucket string) error {
	reg, copier, err := c.app.readAccess(ctx, "")
	if err != nil {
		return err
	}
	v, err := copier.VerifyBucket(ctx, reg, customer, bucket)
	if err != nil {
		return fmt.Errorf("verify-bucket %s %s: %w", customer, bucket, err)
	}
	fmt.Fprintf(c.app.stdout, "%s: bucket %s verified (owned by account %s); under FERRY_CROSS_ACCOUNT=require-verified its cross-account reads are allowed\n",
		customer, v.Bucket, v.AccountID)
	return nil
}
