package fetcher

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryworks/ferry/credcache"

	"github.com/ferryworks/ferry/fetcher/location"
)

// Proof of bucket ownership, what PolicyRequireVerified relies on
// (docs/architecture.md, Access modes): the customer puts their verification
// token at credcache.VerificationKey in the bucket; the fleet reads it with
// its own credentials pinned to the customer's registered account
// (ExpectedBucketOwner) and records the bucket as verified. A tenant who
// registered another tenant's account ID cannot pass: the object would have
// to be written into that account's bucket.

// OwnershipRecorder is the part of *credcache.Registry VerifyBucket writes to.
type OwnershipRecorder interface {
	MarkBucketVerified(ctx context.Context, customerID, bucket, accountID string) (credcache.VerifiedBucket, error)
}

// maxProofBytes bounds how much of the proof object is read: a token is 36
// characters, and a bucket owner's mistake (a large file at that key) must
// not be streamed into memory.
const maxProofBytes = 4096

// VerifyReason says why a bucket could not be verified.
type VerifyReason string

// The reasons a verification fails for something the customer or the
// operator must change (transient failures are a *Error of KindTransient).
const (
	VerifyNotRegistered VerifyReason = "not_registered"
	VerifyNoToken       VerifyReason = "no_token"
	VerifyNoBucket      VerifyReason = "no_bucket"
	VerifyObjectMissing VerifyReason = "object_missing"
	VerifyNotReadable   VerifyReason = "not_readable"
	VerifyOwnerMismatch VerifyReason = "owner_mismatch"
	VerifyTokenMismatch VerifyReason = "token_mismatch"
)

// VerifyError is a failed proof of bucket ownership. Its message says what
// was found and what to change; it never contains the token.
type VerifyError struct {
	Reason     VerifyReason
	CustomerID string
	Bucket     string
	AccountID  string
	// S3 is S3's answer to the proof read, when there was one.
	S3 *Error
}

// Error says what is wrong and what to do.
func (e *VerifyError) Error() string {
	obj := "s3://" + e.Bucket + "/" + credcache.VerificationKey(e.CustomerID)
	put := fmt.Sprintf("the customer puts an object at %s whose content is their verification token (`ferry integration show %s`)", obj, e.CustomerID)
	switch e.Reason {
	case VerifyNotRegistered:
		return fmt.Sprintf("customer %s has no registered AWS account: run `ferry integration register-account %s --account ID` first", e.CustomerID, e.CustomerID)
	case VerifyNoToken:
		return fmt.Sprintf("customer %s has no verification token: run `ferry integration register-account %s --account %s` to issue one", e.CustomerID, e.CustomerID, e.AccountID)
	case VerifyNoBucket:
		return fmt.Sprintf("bucket %s does not exist: check the name", e.Bucket)
	case VerifyObjectMissing:
		return fmt.Sprintf("%s does not exist: %s, then run this again", obj, put)
	case VerifyNotReadable:
		return fmt.Sprintf("the fleet may not read %s (S3: %s): either it does not exist, or the bucket policy does not grant the fleet's account s3:GetObject on it: %s and grants the fleet's account s3:GetObject on it, then run this again", obj, e.s3Code(), put)
	case VerifyOwnerMismatch:
		return fmt.Sprintf("bucket %s is not owned by account %s, the account registered for %s (S3 refuses the read pinned to that account): verify only buckets of the registered account, or register the account that owns the bucket", e.Bucket, e.AccountID, e.CustomerID)
	case VerifyTokenMismatch:
		return fmt.Sprintf("%s does not hold %s's verification token: the customer replaces its content with exactly the token shown by `ferry integration show %s` (surrounding whitespace is ignored), then run this again", obj, e.CustomerID, e.CustomerID)
	}
	return fmt.Sprintf("bucket %s not verified for %s: %s", e.Bucket, e.CustomerID, e.Reason)
}

func (e *VerifyError) s3Code() string {
	if e.S3 == nil || e.S3.Code == "" {
		return "refused"
	}
	return e.S3.Code
}

// Unwrap exposes S3's refusal.
func (e *VerifyError) Unwrap() error {
	if e.S3 == nil {
		return nil
	}
	return e.S3
}

// VerifyBucket proves that customerID controls bucket and records it with
// rec: it reads credcache.VerificationKey(customerID) from the bucket with
// the fleet's own credentials and ExpectedBucketOwner = the registered
// account, and compares its content with the customer's token in constant
// time. Failures the customer or operator must fix are a *VerifyError; a
// transient S3 or Redis failure is returned as is.
func (c *Copier) VerifyBucket(ctx context.Context, rec OwnershipRecorder, customerID, bucket string) (credcache.VerifiedBucket, error) {
	if err := location.CheckBucket(bucket); err != nil {
		return credcache.VerifiedBucket{}, err
	}
	in, err := c.opts.Integrations.Get(ctx, customerID)
	switch {
	case errors.Is(err, credcache.ErrNotFound):
		return credcache.VerifiedBucket{}, &VerifyError{Reason: VerifyNotRegistered, CustomerID: customerID, Bucket: bucket}
	case err != nil:
		return credcache.VerifiedBucket{}, err
	}
	ve := &VerifyError{CustomerID: customerID, Bucket: bucket, AccountID: in.AccountID}
	if in.AccountID == "" {
		ve.Reason = VerifyNotRegistered
		return credcache.VerifiedBucket{}, ve
	}
	if in.VerificationToken == "" {
		ve.Reason = VerifyNoToken
		return credcache.VerifiedBucket{}, ve
	}
	loc := location.Location{Scheme: location.SchemeS3, Bucket: bucket, Key: credcache.VerificationKey(customerID)}
	a := &access{mode: ModeCrossAccount, customer: customerID, integ: in, expectedOwner: in.AccountID,
		requesterPays: c.opts.RequesterPays == RequesterPaysAlways}
	got, ferr := c.readProof(ctx, a, loc)
	if ferr != nil {
		if ferr.Kind == KindTransient {
			return credcache.VerifiedBucket{}, ferr
		}
		ve.S3 = ferr
		switch {
		case ferr.Code == "NoSuchBucket":
			ve.Reason = VerifyNoBucket
		case ferr.Kind == KindNotFound:
			ve.Reason = VerifyObjectMissing
		case ferr.Kind == KindAccessDenied && c.servedUnpinned(ctx, a, loc):
			ve.Reason = VerifyOwnerMismatch
		default:
			ve.Reason = VerifyNotReadable
		}
		return credcache.VerifiedBucket{}, ve
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(string(got))), []byte(in.VerificationToken)) != 1 {
		ve.Reason = VerifyTokenMismatch
		return credcache.VerifiedBucket{}, ve
	}
	return rec.MarkBucketVerified(ctx, customerID, bucket, in.AccountID)
}

// readProof reads at most maxProofBytes of the proof object.
func (c *Copier) readProof(ctx context.Context, a *access, loc location.Location) ([]byte, *Error) {
	in := &s3.GetObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Key), ExpectedBucketOwner: a.owner(),
		RequestPayer: a.payer(), Range: aws.String(fmt.Sprintf("bytes=0-%d", maxProofBytes-1))}
	var out *s3.GetObjectOutput
	_, ferr := c.s3Call(ctx, a, loc, StageGetObject, func(fns ...func(*s3.Options)) error {
		var err error
		out, err = c.s3.GetObject(ctx, in, fns...)
		return err
	})
	if ferr != nil && ferr.Code == "InvalidRange" {
		// An empty object has no byte 0: it holds no token.
		return nil, nil
	}
	if ferr != nil {
		return nil, ferr
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, maxProofBytes))
	if err != nil {
		return nil, &Error{Kind: KindTransient, Stage: StageGetObject, Mode: ModeCrossAccount, URI: loc.Redacted(), Code: "ReadError",
			Message: safeMessage(err), Err: err}
	}
	return b, nil
}

// servedUnpinned tells a bucket of another account from a missing grant,
// which S3 answers alike (403) when the request is pinned to an owner: it
// asks for the object's metadata without ExpectedBucketOwner, and an answer
// other than 403 means only the pin was refused. Nothing read this way is
// trusted; it only picks the error message.
func (c *Copier) servedUnpinned(ctx context.Context, a *access, loc location.Location) bool {
	unpinned := *a
	unpinned.expectedOwner = ""
	_, ferr := c.s3Call(ctx, &unpinned, loc, StageHeadObject, func(fns ...func(*s3.Options)) error {
		_, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Key),
			RequestPayer: unpinned.payer()}, fns...)
		return err
	})
	return ferr == nil || ferr.Kind == KindNotFound
}
