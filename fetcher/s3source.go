package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferryworks/ferry/credcache"

	"github.com/ferryworks/ferry/fetcher/location"
)

// access is the decided way to read one customer's S3 objects.
type access struct {
	mode     Mode
	customer string
	integ    credcache.Integration
	// provider hands out the delegated credentials for each request, so a
	// copy that outlives its session signs its later requests with fresh
	// ones. It is asked once before the first S3 call, so a broken role
	// fails at assume_role, not inside a signer.
	provider aws.CredentialsProvider
	// requesterPays sends x-amz-request-payer: requester.
	requesterPays bool
	// expectedOwner is sent as ExpectedBucketOwner on every cross-account
	// request ("" when the customer registered no account).
	expectedOwner string
}

func (a *access) hint(bucket string) hintInput {
	return hintInput{bucket: bucket, role: a.integ.RoleName, account: a.integ.AccountID, noRequesterPays: !a.requesterPays}
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
		p := a.provider
		fns = append(fns, func(o *s3.Options) { o.Credentials = p })
	}
	return fns
}

// payer is the RequestPayer of a source request.
func (a *access) payer() s3types.RequestPayer {
	if a.requesterPays {
		return s3types.RequestPayerRequester
	}
	return ""
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
func (c *Copier) decide(ctx context.Context, req Request, loc location.Location) (*access, *Error) {
	red := loc.Redacted()
	customer := req.CustomerID
	var in credcache.Integration
	var err error
	if req.Integration != nil {
		in, err = req.Integration()
	} else {
		in, err = c.opts.Integrations.Get(ctx, customer)
	}
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
		a.provider = c.opts.Credentials.Provider(in)
		a.requesterPays = c.opts.RequesterPays != RequesterPaysNever
		if _, err := a.provider.Retrieve(ctx); err != nil {
			return nil, classifyAssume(err, ModeDelegated, red, a.hint(loc.Bucket))
		}
		return a, nil
	}
	a := &access{mode: ModeCrossAccount, customer: customer, integ: in, expectedOwner: in.AccountID,
		requesterPays: c.opts.RequesterPays == RequesterPaysAlways}
	switch c.opts.CrossAccount {
	case PolicyDeny:
		return nil, &Error{Kind: KindAccessDenied, Stage: StagePolicy, Mode: ModeCrossAccount, URI: red, Code: hCrossAccountDisabled.code(),
			Message: "this fleet reads customer buckets only with delegated access",
			Hint:    hCrossAccountDisabled.render(hintVars{})}
	case PolicyRequireOwner, PolicyRequireVerified:
		if in.AccountID == "" {
			return nil, &Error{Kind: KindAccessDenied, Stage: StagePolicy, Mode: ModeCrossAccount, URI: red, Code: hAccountNotRegistered.code(),
				Message: "cross-account access requires a registered AWS account ID",
				Hint:    hAccountNotRegistered.render(hintVars{})}
		}
		if c.opts.CrossAccount == PolicyRequireVerified && !in.VerifiedFor(loc.Bucket) {
			return nil, &Error{Kind: KindAccessDenied, Stage: StagePolicy, Mode: ModeCrossAccount, URI: red, Code: hBucketNotVerified.code(),
				Message: "cross-account access requires a bucket verified for this customer",
				Hint:    hBucketNotVerified.render(hintVars{bucket: loc.Bucket, customer: customer})}
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
	if _, err := a.provider.Retrieve(ctx); err != nil {
		return classifyAssume(err, ModeDelegated, red, a.hint(bucket))
	}
	return nil
}

// s3Call runs one source request with the bucket's region, following one
// region redirect (learning the region fleet-wide) and, for delegated
// access, refreshing expired credentials once.
func (c *Copier) s3Call(ctx context.Context, a *access, loc location.Location, stage Stage, call func(fns ...func(*s3.Options)) error) (string, *Error) {
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
		var ae *credcache.AssumeRoleError
		if errors.As(err, &ae) {
			// The provider failed to renew the session mid-copy.
			return region, classifyAssume(ae, ModeDelegated, red, a.hint(loc.Bucket))
		}
		return region, classifyS3(err, stage, a.mode, red, a.hint(loc.Bucket), a.expectedOwner)
	}
}

// openS3 starts reading loc with the decided access. The object is read as
// consecutive ranged GETs of PartSize bytes, each a request of its own with
// credentials current at that moment: a copy that outlives the session it
// started with renews it and carries on from where it was, rather than
// starting over. Later ranges carry If-Match with the first answer's ETag,
// so an object replaced mid-copy is never stitched from two versions.
func (c *Copier) openS3(ctx context.Context, a *access, loc location.Location) (*object, *Error) {
	rb := &rangedBody{c: c, ctx: ctx, a: a, loc: loc, part: c.opts.PartSize}
	out, ferr := rb.get(ctx, 0, "")
	if ferr != nil && ferr.Code == "InvalidRange" {
		// An empty object has no byte 0 to range over.
		out, ferr = rb.get(ctx, -1, "")
	}
	if ferr != nil {
		return nil, ferr
	}
	obj := &object{body: rb, size: -1, contentType: aws.ToString(out.ContentType), etag: aws.ToString(out.ETag)}
	rb.etag, rb.body = obj.etag, out.Body
	if out.ContentLength != nil {
		obj.size = *out.ContentLength
	}
	if total, ok := contentRangeTotal(aws.ToString(out.ContentRange)); ok {
		obj.size = total
	}
	rb.size = obj.size
	return obj, nil
}

// rangedBody is an object body read range by range (see openS3).
type rangedBody struct {
	c    *Copier
	ctx  context.Context
	a    *access
	loc  location.Location
	part int64
	etag string
	size int64 // -1: unknown, the first answer is the whole body
	off  int64 // bytes handed to the reader so far
	body io.ReadCloser
}

// get sends one GetObject for PART bytes from off (off < 0: the whole
// object), with If-Match etag when set.
func (b *rangedBody) get(ctx context.Context, off int64, etag string) (*s3.GetObjectOutput, *Error) {
	in := &s3.GetObjectInput{Bucket: aws.String(b.loc.Bucket), Key: aws.String(b.loc.Key), ExpectedBucketOwner: b.a.owner(),
		RequestPayer: b.a.payer()}
	if b.loc.VersionID != "" {
		in.VersionId = aws.String(b.loc.VersionID)
	}
	if off >= 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+b.part-1))
	}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	var out *s3.GetObjectOutput
	_, ferr := b.c.s3Call(ctx, b.a, b.loc, StageGetObject, func(fns ...func(*s3.Options)) error {
		var err error
		out, err = b.c.s3.GetObject(ctx, in, fns...)
		return err
	})
	if ferr != nil && ferr.Code == "PreconditionFailed" {
		ferr.Kind, ferr.Hint = KindTransient, ""
		ferr.Message = "the object changed while it was being copied"
	}
	return out, ferr
}

func (b *rangedBody) Read(p []byte) (int, error) {
	for {
		if b.body != nil {
			n, err := b.body.Read(p)
			b.off += int64(n)
			if err == io.EOF {
				_ = b.body.Close()
				b.body = nil
				if n > 0 {
					return n, nil
				}
				continue
			}
			return n, err
		}
		if b.size < 0 || b.off >= b.size {
			return 0, io.EOF
		}
		out, ferr := b.get(b.ctx, b.off, b.etag)
		if ferr != nil {
			return 0, ferr
		}
		b.body = out.Body
	}
}

func (b *rangedBody) Close() error {
	if b.body == nil {
		return nil
	}
	err := b.body.Close()
	b.body = nil
	return err
}

// contentRangeTotal reads the object size from "bytes 0-99/1234".
func contentRangeTotal(cr string) (int64, bool) {
	_, total, ok := strings.Cut(cr, "/")
	if !ok || total == "*" {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil
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
