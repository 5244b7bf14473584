package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/output"
	"github.com/ferryworks/ferry/internal/render"
)

// integrationRotateCommand is `ferry integration rotate-external-id`.
type integrationRotateCommand struct {
	app        *app
	ttl        time.Duration
	externalID string
	finish     bool
	format     *output.Flag
}

func (c *integrationRotateCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-external-id CUSTOMER [--ttl D] | CUSTOMER --finish",
		Short: "Give a customer a new external ID, keeping the old one valid until --finish",
		Long: `Give a customer a new external ID without downtime. Until the rotation is
finished (--finish) or its TTL runs out, ferry presents the new ID first and
falls back to the old one when the role refuses the new, so the customer can
change the role's trust policy to accept both IDs, then only the new one.
The printout is what to send the customer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args[0]) },
	}
	cmd.Flags().DurationVar(&c.ttl, "ttl", credcache.DefaultRotationTTL,
		fmt.Sprintf("how long (`DURATION`) the old external ID stays valid if the rotation is not finished (at most %v)", credcache.MaxRotationTTL))
	cmd.Flags().StringVar(&c.externalID, "external-id", "", "use this new external `ID` instead of generating one (STS allows 2-1224 characters of [A-Za-z0-9_+=,.@:/-])")
	cmd.Flags().BoolVar(&c.finish, "finish", false, "end the rotation: forget the old external ID (once the customer's trust policy accepts the new one)")
	c.format = output.NewFlag()
	c.format.Register(cmd.Flags())
	return c.app.settings(cmd, config.GroupRedis, config.GroupCredentials, config.GroupAWS)
}

func (c *integrationRotateCommand) Run(ctx context.Context, customer string) error {
	if c.finish && c.externalID != "" {
		return usagef("--finish takes no --external-id: it ends the rotation in progress")
	}
	reg, err := c.app.registry(ctx)
	if err != nil {
		return err
	}
	if c.finish {
		in, err := reg.FinishRotation(ctx, customer)
		if errors.Is(err, credcache.ErrNoRotation) {
			return fmt.Errorf("%s has no external ID rotation to finish: start one with `ferry integration rotate-external-id %s`", customer, customer)
		}
		if err != nil {
			return explainRegistryError(err, customer)
		}
		return output.New(c.app.stdout, c.format.Format).Document(in, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "%s: external ID rotation finished; ferry presents only the new external ID from now on\n", customer)
			return err
		})
	}
	fleet, err := c.app.fleetAccountID(ctx)
	if err != nil {
		return err
	}
	in, err := reg.RotateExternalID(ctx, customer, c.externalID, c.ttl)
	switch {
	case errors.Is(err, credcache.ErrRotationInProgress):
		return fmt.Errorf("%w: finish it first with `ferry integration rotate-external-id %s --finish`", err, customer)
	case errors.Is(err, credcache.ErrInvalid):
		return fmt.Errorf("%w: fix --external-id or --ttl", err)
	case err != nil:
		return explainRegistryError(err, customer)
	}
	both := credcache.TrustPolicy(fleet, in.ExternalIDs(time.Now())...)
	return output.New(c.app.stdout, c.format.Format).Document(struct {
		credcache.Integration
		TrustPolicy json.RawMessage `json:"trust_policy"`
	}{in, json.RawMessage(both)}, func(w io.Writer) error {
		return render.RotationSteps(w, in, fleet, both)
	})
}

// fleetAccountID is the fleet's own AWS account, which customers' trust
// policies name; STS says which it is, so nobody types it in.
func (a *app) fleetAccountID(ctx context.Context) (string, error) {
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return "", err
	}
	id, err := a.stsClient(awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("ask STS for the fleet's account (GetCallerIdentity): %w; check the fleet's AWS credentials", err)
	}
	return aws.ToString(id.Account), nil
}
