package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/output"
	"github.com/ferryworks/ferry/internal/render"
	"github.com/ferryworks/ferry/rolesetup"
)

const integrationUsage = `Manage customers' AWS integrations (the registry in Redis).

  enable CUSTOMER --account ID [--external-id X] [--bucket B]... [--kms-key ARN]...
      Turn on delegated access: ferry assumes arn:aws:iam::ID:role/ROLE with
      the customer's external ID and never reads their data with its own
      credentials. Prints what the customer must set up; with
      -o cloudformation or -o terraform, as a template that creates the role.
  disable CUSTOMER
      Back to cross-account access (the fleet's own credentials).
  register-account CUSTOMER --account ID
      Record the customer's AWS account without delegation, so cross-account
      reads carry ExpectedBucketOwner and S3 refuses buckets they do not own.
      Prints the customer's bucket-verification token.
  rotate-external-id CUSTOMER [--ttl D] [--external-id X]
      Issue a new external ID; the old one stays valid (ferry falls back to
      it) until --finish or the TTL, so the customer switches without downtime.
  rotate-external-id CUSTOMER --finish
      Forget the old external ID.
  verify CUSTOMER [--bucket B]... [--object s3://B/KEY]... [--wait D]
      Check that ferry can use the integration now; the result becomes its
      status (pending, active, failing).
  verify-bucket CUSTOMER BUCKET
      Record a bucket the customer proved control of (require-verified).
  show CUSTOMER [-o json]      list [-o json]
  export [--file F]            import --file F   (JSON; external IDs in clear)`

func newIntegrationCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "integration", Short: "Manage customers' AWS integrations", Long: integrationUsage}
	cmd.AddCommand(
		(&integrationEnableCommand{app: a}).command(),
		(&integrationDisableCommand{app: a}).command(),
		(&integrationRegisterCommand{app: a}).command(),
		(&integrationRotateCommand{app: a}).command(),
		(&integrationVerifyCommand{app: a}).command(),
		(&integrationVerifyBucketCommand{app: a}).command(),
		(&integrationShowCommand{app: a}).command(),
		(&integrationListCommand{app: a}).command(),
		(&integrationExportCommand{app: a}).command(),
		(&integrationImportCommand{app: a}).command(),
	)
	return cmd
}

const accountUsage = "the customer's 12-digit AWS account `ID`"

// integrationEnableCommand is `ferry integration enable`.
type integrationEnableCommand struct {
	app                 *app
	account, externalID string
	buckets, kmsKeys    []string
	format              *output.Flag
}

func (c *integrationEnableCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "enable CUSTOMER --account ID", Short: "Enable delegated access", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args[0]) },
	}
	cmd.Flags().StringVar(&c.account, "account", "", accountUsage)
	cmd.Flags().StringVar(&c.externalID, "external-id", "", "keep this external `ID` (customers migrating an existing role)")
	cmd.Flags().StringArrayVar(&c.buckets, "bucket", nil, "bucket `NAME` the role may read (repeat for more); fills the permission policy")
	cmd.Flags().StringArrayVar(&c.kmsKeys, "kms-key", nil, "KMS key `ARN` the role may decrypt with (SSE-KMS objects; repeat for more)")
	c.format = output.NewFlag(templateFormats()...)
	c.format.Register(cmd.Flags())
	return c.app.settings(cmd, config.GroupRedis, config.GroupCredentials, config.GroupAWS)
}

func (c *integrationEnableCommand) Run(ctx context.Context, customer string) error {
	if c.account == "" {
		return usagef("enable needs --account: the customer's 12-digit AWS account ID")
	}
	if isTemplate(c.format.Format) && len(c.buckets) == 0 {
		return usagef("-o %s needs --bucket: the buckets the role may read", c.format.Format)
	}
	return c.app.integrationEnable(ctx, customer, c.account, c.externalID, c.buckets, c.kmsKeys, c.format.Format)
}

// integrationDisableCommand is `ferry integration disable`.
type integrationDisableCommand struct{ app *app }

func (c *integrationDisableCommand) command() *cobra.Command {
	return c.app.settings(&cobra.Command{
		Use: "disable CUSTOMER", Short: "Disable delegated access", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args[0]) },
	}, config.GroupRedis, config.GroupCredentials)
}

func (c *integrationDisableCommand) Run(ctx context.Context, customer string) error {
	reg, err := c.app.registry(ctx)
	if err != nil {
		return err
	}
	if err := reg.Disable(ctx, customer); err != nil {
		return explainRegistryError(err, customer)
	}
	fmt.Fprintf(c.app.stdout, "%s: delegated access disabled; reads use the fleet's credentials (cross-account)\n", customer)
	return nil
}

// integrationRegisterCommand is `ferry integration register-account`.
type integrationRegisterCommand struct {
	app     *app
	account string
}

func (c *integrationRegisterCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "register-account CUSTOMER --account ID", Short: "Record the customer's AWS account (cross-account owner check)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args[0]) },
	}
	cmd.Flags().StringVar(&c.account, "account", "", accountUsage)
	return c.app.settings(cmd, config.GroupRedis, config.GroupCredentials)
}

func (c *integrationRegisterCommand) Run(ctx context.Context, customer string) error {
	if c.account == "" {
		return usagef("register-account needs --account: the customer's 12-digit AWS account ID")
	}
	reg, err := c.app.registry(ctx)
	if err != nil {
		return err
	}
	in, err := reg.RegisterAccount(ctx, customer, c.account)
	if err != nil {
		return explainRegistryError(err, customer)
	}
	fmt.Fprintf(c.app.stdout, "%s: account %s registered; cross-account reads now require buckets owned by it\n", in.CustomerID, in.AccountID)
	render.Verification(c.app.stdout, in)
	return nil
}

// integrationShowCommand is `ferry integration show`.
type integrationShowCommand struct {
	app    *app
	format *output.Flag
}

func (c *integrationShowCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "show CUSTOMER", Short: "Show one integration (includes the external ID)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args[0]) },
	}
	c.format = output.NewFlag()
	c.format.Register(cmd.Flags())
	return c.app.settings(cmd, config.GroupRedis, config.GroupCredentials, config.GroupS3, config.GroupAWS)
}

func (c *integrationShowCommand) Run(ctx context.Context, customer string) error {
	reg, err := c.app.registry(ctx)
	if err != nil {
		return err
	}
	in, err := reg.Get(ctx, customer)
	if err != nil {
		return explainRegistryError(err, customer)
	}
	st, err := reg.Status(ctx, in)
	if err != nil {
		return err
	}
	canonical := c.app.fleetCanonicalID(ctx)
	fleet, _ := c.app.fleetAccountID(ctx) // the trust policy shows a placeholder without it
	now := time.Now()
	var trust json.RawMessage
	if ids := in.ExternalIDs(now); len(ids) > 0 && fleet != "" {
		trust = json.RawMessage(credcache.TrustPolicy(fleet, ids...))
	}
	return output.New(c.app.stdout, c.format.Format).Document(struct {
		credcache.Integration
		FleetCanonicalUserID string                      `json:"fleet_canonical_user_id,omitempty"`
		TrustPolicy          json.RawMessage             `json:"trust_policy,omitempty"`
		Status               credcache.IntegrationStatus `json:"status"`
	}{in, canonical, trust, st}, func(w io.Writer) error {
		render.Integrations(w, []credcache.Integration{in}, nil, true)
		render.TrustPolicy(w, in, fleet, now)
		render.StatusDetail(w, st)
		render.Verification(w, in)
		if canonical == "" {
			canonical = "unknown (the fleet's credentials may not call s3:ListAllMyBuckets)"
		}
		_, err := fmt.Fprintf(w, "\nfleet canonical user ID (grantee of object ACLs for cross-account reads): %s\n", canonical)
		return err
	})
}

// fleetCanonicalID is the fleet account's S3 canonical user ID, which S3
// gives as the Owner of ListBuckets
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/finding-canonical-user-id.html);
// "" when it cannot be asked.
func (a *app) fleetCanonicalID(ctx context.Context) string {
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return ""
	}
	out, err := a.s3Client(awsCfg).ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(1)})
	if err != nil || out.Owner == nil {
		return ""
	}
	return aws.ToString(out.Owner.ID)
}

// integrationListCommand is `ferry integration list`.
type integrationListCommand struct {
	app    *app
	format *output.Flag
}

func (c *integrationListCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "list", Short: "List integrations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.Run(cmd.Context()) },
	}
	c.format = output.NewFlag()
	c.format.Register(cmd.Flags())
	return c.app.settings(cmd, config.GroupRedis, config.GroupCredentials)
}

func (c *integrationListCommand) Run(ctx context.Context) error {
	reg, err := c.app.registry(ctx)
	if err != nil {
		return err
	}
	all, err := reg.List(ctx)
	if err != nil {
		return err
	}
	statuses, err := reg.StatusOf(ctx, all)
	if err != nil {
		return err
	}
	type listed struct {
		credcache.Integration
		Status credcache.IntegrationStatus `json:"status"`
	}
	out := make([]listed, 0, len(all))
	for _, in := range all {
		out = append(out, listed{in, statuses[in.CustomerID]})
	}
	return output.New(c.app.stdout, c.format.Format).Document(out, func(w io.Writer) error {
		render.Integrations(w, all, statuses, false)
		return nil
	})
}

// integrationExportCommand is `ferry integration export`.
type integrationExportCommand struct {
	app  *app
	file string
}

func (c *integrationExportCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "export", Short: "Write every integration as JSON", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.Run(cmd.Context()) },
	}
	cmd.Flags().StringVar(&c.file, "file", "", "write to `FILE` instead of stdout (created with mode 0600: it holds external IDs)")
	return c.app.settings(cmd, config.GroupRedis, config.GroupCredentials)
}

func (c *integrationExportCommand) Run(ctx context.Context) error {
	reg, err := c.app.registry(ctx)
	if err != nil {
		return err
	}
	var w io.Writer = c.app.stdout
	if c.file != "" {
		fh, err := os.OpenFile(c.file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("export --file: %w", err)
		}
		defer fh.Close()
		w = fh
	}
	return reg.Export(ctx, w)
}

// integrationImportCommand is `ferry integration import`.
type integrationImportCommand struct {
	app  *app
	file string
}

func (c *integrationImportCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "import --file F", Short: "Load integrations from an export (all or nothing)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.Run(cmd.Context(), cmd.InOrStdin()) },
	}
	cmd.Flags().StringVar(&c.file, "file", "", "`FILE` written by ferry integration export (- for stdin)")
	return c.app.settings(cmd, config.GroupRedis, config.GroupCredentials)
}

func (c *integrationImportCommand) Run(ctx context.Context, stdin io.Reader) error {
	if c.file == "" {
		return usagef("import needs --file: a file written by `ferry integration export` (- for stdin)")
	}
	reg, err := c.app.registry(ctx)
	if err != nil {
		return err
	}
	r := stdin
	if c.file != "-" {
		fh, err := os.Open(c.file)
		if err != nil {
			return fmt.Errorf("import --file: %w", err)
		}
		defer fh.Close()
		r = fh
	}
	n, err := reg.Import(ctx, r)
	if err != nil {
		return fmt.Errorf("import %s: %w (nothing was written)", c.file, err)
	}
	fmt.Fprintf(c.app.stdout, "imported %d integrations\n", n)
	return nil
}

func (a *app) integrationEnable(ctx context.Context, customer, account, externalID string, buckets, kmsKeys []string, format output.Format) error {
	reg, err := a.registry(ctx)
	if err != nil {
		return err
	}
	fleet, err := a.fleetAccountID(ctx)
	if err != nil {
		return err
	}
	if isTemplate(format) {
		// Refused before anything is enabled: a template the customer
		// cannot apply is no use.
		probe := rolesetup.Role{Name: a.cfg.RoleName, FleetAccountID: fleet, ExternalIDs: []string{"probe"}, Buckets: buckets, KMSKeyARNs: kmsKeys}
		if err := probe.Validate(); err != nil {
			return usagef("%v", err)
		}
	}
	in, err := reg.Enable(ctx, customer, account, externalID)
	if err != nil {
		return explainRegistryError(err, customer)
	}
	if isTemplate(format) {
		return rolesetup.Role{Name: in.RoleName, FleetAccountID: fleet, ExternalIDs: in.ExternalIDs(time.Now()),
			Buckets: buckets, KMSKeyARNs: kmsKeys}.Write(a.stdout, rolesetup.Format(format))
	}
	shown := buckets
	if len(shown) == 0 {
		shown = []string{"YOUR_BUCKET_NAME"}
	}
	trust := credcache.TrustPolicy(fleet, in.ExternalIDs(time.Now())...)
	read := credcache.PolicyJSON(credcache.ReadPolicyDocument(shown, kmsKeys))
	return output.New(a.stdout, format).Document(struct {
		credcache.Integration
		TrustPolicy json.RawMessage `json:"trust_policy"`
		ReadPolicy  json.RawMessage `json:"read_policy"`
	}{in, json.RawMessage(trust), json.RawMessage(read)}, func(w io.Writer) error {
		return render.Setup(w, in, fleet, trust, read, shown[0])
	})
}

// templateFormats are the setup-template formats -o takes besides the
// output formats: rolesetup's.
func templateFormats() []output.Format {
	var fs []output.Format
	for _, f := range rolesetup.Formats() {
		fs = append(fs, output.Format(f))
	}
	return fs
}

// isTemplate says whether -o names a setup template.
func isTemplate(f output.Format) bool {
	return slices.Contains(rolesetup.Formats(), rolesetup.Format(f))
}

func explainRegistryError(err error, customer string) error {
	if errors.Is(err, credcache.ErrNotFound) {
		return fmt.Errorf("customer %q has no integration: enable it with `ferry integration enable %s --account ID` or register an account", customer, customer)
	}
	return err
}
