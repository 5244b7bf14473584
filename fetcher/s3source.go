package fetcher

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferryworks/ferry/credcache"
)

// access is the decided way to read one customer's S3 objects.
type access struct {
	mode     Mode
	customer string
	integ    credcache.Integration
	// creds are the delegated credentials, retrieved before the first S3
	// call so a broken role fails at assume_role, not inside a signer.
	creds aws.Credentials
	// expectedOwner is sent as ExpectedBucketOwner on every cross-account
	// request ("" when the customer registered no account).
	expectedOwner string
}

func (a *access) hint(bucket string) hintInput {
	return hintInput{bucket: bucket, role: a.integ.RoleName, account: a.integ.AccountID}
}

// optFns are the per-call options of a source request: the region and, for
// delegated reads, the customer's credentials in place of the fleet's; and
// the region of a wrong-region answer kept where redirectRegion looks.
func (a *access) optFns(region string) []func(*s3.Options) {
	fns := []func(*s3.Options){regionFromErrorBody}
	if region != "" {
		fns = append(fns, func(o *s3.Options) { o.Region = region })
	}
	if a.mode == ModeDelegated {
		creds := a.creds
		fns = append(fns, func(o *s3.Options) {
			o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
		})
	}
	return fns
}

func (a *access) owner() *string {
	if a.expectedOwner == "" {
		return nil
	}
	return aws.String(a.expectedOwner)
}

// decide applies the access rules 2–5 of docs/architecture.md: an enabled integration means delegated
// access and never the fleet's own credentials; otherwise cross-account
// access as the fleet policy allows, pinned to the registered account.
func (c *Copier) decide(ctx context.Context, customer string, loc Location) (*access, *Error) {
	red := loc.Redacted()
	in, err := c.opts.Integrations.Get(ctx, customer)
	switch {
	case errors.Is(err, credcache.ErrNotFound):
		in = credcache.Integration{CustomerID: customer}
	case err != nil:
		return nil, &Error{Kind: KindTransient, Stage: StageIntegration, URI: red, Message: "could not read the customer's integration", Err: err}
	}
	if in.Enabled {
		a := &access{mode: ModeDelegated, customer: customer, integ: in}
		if c.opts.Credentials == nil {
			return nil, &Error{Kind: KindTransient, Stage: StageAssumeRole, Mode: ModeDelegated, URI: red,
				Message: "delegated access is not configured on this worker"}
		}
		creds, err := c.opts.Credentials.Provider(in).Retrieve(ctx)
		if err != nil {
			return nil, classifyAssume(err, ModeDelegated, red, a.hint(loc.Bucket))
		}
		a.creds = creds
		return a, nil
	}
	a := &access{mode: ModeCrossAccount, customer: customer, integ: in, expectedOwner: in.AccountID}
	switch c.opts.CrossAccount {
	case PolicyDeny:
		return nil, &Error{Kind: KindAccessDenied, Stage: StagePolicy, Mode: ModeCrossAccount, URI: red, Code: "CrossAccountDisabled",
			Message: "this fleet reads customer buckets only with delegated access",
			Hint:    "enable delegated access: create the role " + credcache.DefaultRoleName + " as the integration guide describes and register your AWS account ID"}
	case PolicyRequireOwner:
		if in.AccountID == "" {
			return nil, &Error{Kind: KindAccessDenied, Stage: StagePolicy, Mode: ModeCrossAccount, URI: red, Code: "AccountNotRegistered",
				Message: "cross-account access requires a registered AWS account ID",
				Hint:    "register the AWS account ID that owns your bucket with ferry (or enable delegated access)"}
		}
	}
	return a, nil
}

// refreshCreds drops the cached delegated credentials and fetches new ones,
// after S3 said the session token expired or is invalid.
func (c *Copier) refreshCreds(ctx context.Context, a *access, red, bucket string) *Error {
	if err := c.opts.Credentials.Invalidate(ctx, a.customer); err != nil {
		c.log.Warn().Str("customer_id", a.customer).Err(err).Msg("invalidate delegated credentials")
	}
	creds, err := c.opts.Credentials.Provider(a.integ).Retrieve(ctx)
	if err != nil {
		return classifyAssume(err, ModeDelegated, red, a.hint(bucket))
	}
	a.creds = creds
	return nil
}

// s3Call runs one source request with the bucket's region, following one
// region redirect (learning the region fleet-wide) and, for delegated
// access, refreshing expired credentials once.
func (c *Copier) s3Call(ctx context.Context, a *access, loc Location, stage Stage, call func(fns ...func(*s3.Options)) error) (string, *Error) {
	red := loc.Redacted()
	region, cached := c.regions.get(ctx, loc.Bucket)
	if !cached {
		region = loc.Region
	}
	redirected, refreshed := false, false
	for {
		err := call(a.optFns(region)...)
		if err == nil {
			switch {
			case cached:
			case region != "":
				c.regions.put(ctx, loc.Bucket, region)
			default:
				// The client's own region served the bucket: remember that
				// here, so the next task skips the Redis lookup (one round
				// trip per task otherwise). A bucket that moves answers
				// with a redirect, which is followed and learned.
				c.regions.putMem(loc.Bucket, "", time.Now())
			}
			return region, nil
		}
		if r := redirectRegion(err); r != "" && r != region && !redirected {
			c.log.Debug().Str("bucket", loc.Bucket).Str("region", r).Msg("bucket region learned from redirect")
			c.regions.put(ctx, loc.Bucket, r)
			region, cached, redirected = r, true, true
			continue
		}
		if a.mode == ModeDelegated && !refreshed && isTokenError(err) {
			refreshed = true
			if ferr := c.refreshCreds(ctx, a, red, loc.Bucket); ferr != nil {
				return region, ferr
			}
			continue
		}
		return region, classifyS3(err, stage, a.mode, red, a.hint(loc.Bucket), a.expectedOwner)
	}
}

// openS3 starts reading loc with the decided access.
func (c *Copier) openS3(ctx context.Context, a *access, loc Location) (*object, *Error) {
	in := &s3.GetObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Key), ExpectedBucketOwner: a.owner()}
	if loc.VersionID != "" {
		in.VersionId = aws.String(loc.VersionID)
	}
	var out *s3.GetObjectOutput
	_, ferr := c.s3Call(ctx, a, loc, StageGetObject, func(fns ...func(*s3.Options)) error {
		var err error
		out, err = c.s3.GetObject(ctx, in, fns...)
		return err
	})
	if ferr != nil {
		return nil, ferr
	}
	obj := &object{body: out.Body, size: -1, contentType: aws.ToString(out.ContentType), etag: aws.ToString(out.ETag)}
	if out.ContentLength != nil {
		obj.size = *out.ContentLength
	}
	return obj, nil
}

// redirectRegion returns the region S3 named in a 301 PermanentRedirect or
// a 400 for a wrong signing region (the header of a HEAD answer, or the
// body's <Region>, which regionFromErrorBody moves into the header), or "".
func redirectRegion(err error) string {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return ""
	}
	switch re.Response.StatusCode {
	case http.StatusMovedPermanently, http.StatusBadRequest, http.StatusTemporaryRedirect:
		return re.Response.Header.Get("x-amz-bucket-region")
	}
	return ""
}

func isTokenError(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "ExpiredTokenException":
		return true
	}
	return strings.Contains(api.ErrorMessage(), "token has expired")
}
