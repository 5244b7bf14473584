package fetcher

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryworks/ferry/credcache"

	"github.com/ferryworks/ferry/fetcher/location"
)

// The checks of a verification, in the order they run.
const (
	CheckAssumeRole = "assume_role"
	CheckHeadBucket = "head_bucket"
	CheckGetObject  = "get_object"
	// CheckPolicy: the fleet's cross-account policy refuses this customer
	// before any AWS call.
	CheckPolicy = "policy"
)

// VerifyRequest is what `ferry integration verify` checks.
type VerifyRequest struct {
	CustomerID string
	// Buckets get a HeadBucket each, with ExpectedBucketOwner set to the
	// registered account, so a bucket of another account fails.
	Buckets []string
	// Objects (s3://bucket/key) get a one-byte ranged GetObject each, read
	// the way a task reads them; their buckets are head-checked too.
	Objects []string
	// Wait, when positive, repeats the whole verification while it fails
	// with access denied, with backoff, for up to this long: IAM takes
	// seconds to apply a new or changed role everywhere, to STS and S3 alike
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
	Wait time.Duration
	// OnWait is told of every retry: the failed check and how long until
	// the next attempt.
	OnWait func(failed VerifyCheck, next time.Duration)
}

// VerifyCheck is one line of a verification.
type VerifyCheck struct {
	Check  string `json:"check"`
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	Error  *Error `json:"error,omitempty"`
	// Note adds what the error may also mean (a role too young for IAM's
	// changes to have reached STS and S3).
	Note string `json:"note,omitempty"`
}

// VerifyReport is the result of a verification. It marshals to JSON and
// never holds credentials or the external ID.
type VerifyReport struct {
	CustomerID string        `json:"customer_id"`
	Mode       Mode          `json:"mode,omitempty"`
	AccountID  string        `json:"account_id,omitempty"`
	Checks     []VerifyCheck `json:"checks"`
	OK         bool          `json:"ok"`
	// Attempts is how many times the checks ran (more than one with Wait).
	Attempts int `json:"attempts"`
	// Error is set when the verification could not run at all (no
	// integration, Redis unreadable); Checks is then empty.
	Error *Error `json:"error,omitempty"`
}

// Failure is the first failed check as an integration status error, or nil
// when every check passed.
func (r VerifyReport) Failure(at time.Time) *credcache.StatusError {
	e := r.Error
	for _, c := range r.Checks {
		if e == nil && !c.OK {
			e = c.Error
		}
	}
	if r.OK && e == nil {
		return nil
	}
	se := &credcache.StatusError{Source: "verify", At: at.UTC()}
	if e != nil {
		se.Stage, se.Code, se.Message, se.Hint = string(e.Stage), e.Code, e.Message, e.Hint
	}
	return se
}

// Conclusive reports whether the report says something about the
// integration: every check passed, or one failed for a reason other than a
// transient one (throttling, a network error), a Redis failure or a
// malformed object URI.
func (r VerifyReport) Conclusive() bool {
	if r.OK {
		return true
	}
	if r.Error != nil {
		return false
	}
	for _, c := range r.Checks {
		// A mistyped --object says nothing about the integration either.
		if !c.OK && c.Error != nil && c.Error.Kind != KindTransient && c.Error.Stage != StageParse {
			return true
		}
	}
	return false
}

// deniedAnywhere reports whether some check failed with access denied, the
// failure a young role gives.
func (r VerifyReport) deniedAnywhere() (VerifyCheck, bool) {
	for _, c := range r.Checks {
		if !c.OK && c.Error != nil && c.Error.Kind == KindAccessDenied && c.Check != CheckPolicy {
			return c, true
		}
	}
	return VerifyCheck{}, false
}

// Backoff between attempts of a verification with Wait.
const (
	verifyBackoffMin = time.Second
	verifyBackoffMax = 8 * time.Second
)

// Verify checks that ferry can use the customer's integration now, the way
// tasks would: for a delegated customer AssumeRole with their external ID
// (always a fresh STS call, never a cached answer), then HeadBucket on each
// bucket with ExpectedBucketOwner set to the registered account, then a
// one-byte GetObject of each object. A cross-account customer's checks use
// the fleet's credentials under the fleet's cross-account policy. Failures
// carry the same kinds, stages and hints as copies. Verify reads nothing
// but one byte per object and writes nothing.
func (c *Copier) Verify(ctx context.Context, req VerifyRequest) VerifyReport {
	deadline := time.Now().Add(req.Wait)
	backoff := verifyBackoffMin
	for attempt := 1; ; attempt++ {
		rep := c.verifyOnce(ctx, req)
		rep.Attempts = attempt
		failed, denied := rep.deniedAnywhere()
		left := time.Until(deadline)
		if rep.OK || !denied || left <= 0 || ctx.Err() != nil {
			return rep
		}
		// Full jitter around the backoff, never past the deadline.
		d := min(backoff/2+rand.N(backoff/2+1), left)
		if req.OnWait != nil {
			req.OnWait(failed, d)
		}
		select {
		case <-ctx.Done():
			return rep
		case <-time.After(d):
		}
		backoff = min(2*backoff, verifyBackoffMax)
	}
}

func (c *Copier) verifyOnce(ctx context.Context, req VerifyRequest) VerifyReport {
	rep := VerifyReport{CustomerID: req.CustomerID}
	in, err := c.opts.Integrations.Get(ctx, req.CustomerID)
	switch {
	case errors.Is(err, credcache.ErrNotFound):
		rep.Error = &Error{Kind: KindInvalid, Stage: StageIntegration, Code: "NoIntegration",
			Message: "the customer has no integration to verify",
			Hint:    "enable delegated access or register the customer's AWS account first"}
		return rep
	case err != nil:
		rep.Error = &Error{Kind: KindTransient, Stage: StageIntegration, Message: "could not read the customer's integration", Err: err}
		return rep
	}
	rep.AccountID = in.AccountID

	var objects []location.Location
	var badObjects []VerifyCheck
	buckets := append([]string(nil), req.Buckets...)
	seen, asked, objBucket := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, b := range buckets {
		seen[b], asked[b] = true, true
	}
	for _, u := range req.Objects {
		loc, err := ParseURI(u)
		var fe *Error
		switch {
		case err != nil:
			fe = asError(err)
		case loc.Scheme != location.SchemeS3:
			fe = &Error{Kind: KindInvalid, Stage: StageParse, URI: loc.Redacted(), Code: "NotS3",
				Message: "only S3 objects are read through an integration",
				Hint:    "name an object in the customer's bucket as s3://BUCKET/KEY"}
		}
		if fe != nil {
			// Reported after the checks that ran.
			badObjects = append(badObjects, VerifyCheck{Check: CheckGetObject, Target: location.RedactURLs(u), Error: fe})
			continue
		}
		objects = append(objects, loc)
		objBucket[loc.Bucket] = true
		if !seen[loc.Bucket] {
			seen[loc.Bucket] = true
			buckets = append(buckets, loc.Bucket)
		}
	}

	var a *access
	if in.Enabled {
		rep.Mode = ModeDelegated
		var chk VerifyCheck
		a, chk = c.verifyAssume(ctx, in, firstBucket(buckets))
		rep.Checks = append(rep.Checks, chk)
	} else {
		rep.Mode = ModeCrossAccount
		if len(buckets) == 0 && len(objects) == 0 {
			rep.Error = &Error{Kind: KindInvalid, Stage: StageIntegration, Mode: ModeCrossAccount, Code: "NothingToVerify",
				Message: "a cross-account integration has no role to assume, so only its buckets can be checked",
				Hint:    "name the customer's bucket (--bucket B) or an object in it (--object s3://B/KEY)"}
			return rep
		}
		var ferr *Error
		a, ferr = c.decide(ctx, Request{CustomerID: req.CustomerID}, location.Location{Scheme: location.SchemeS3, Bucket: firstBucket(buckets)})
		if ferr != nil {
			rep.Checks = append(rep.Checks, VerifyCheck{Check: CheckPolicy, Target: string(c.opts.CrossAccount), Error: ferr})
		}
	}
	if a != nil {
		for _, b := range buckets {
			if a.mode == ModeCrossAccount && objBucket[b] && !asked[b] {
				// HeadBucket needs s3:ListBucket, which cross-account
				// access does not ask for; the object's read, pinned to
				// the registered account, checks the bucket instead.
				continue
			}
			rep.Checks = append(rep.Checks, c.verifyBucket(ctx, a, in.AccountID, b))
		}
		for _, loc := range objects {
			rep.Checks = append(rep.Checks, c.verifyObject(ctx, a, loc))
		}
	}
	rep.Checks = append(rep.Checks, badObjects...)
	rep.OK = len(rep.Checks) > 0
	for _, chk := range rep.Checks {
		rep.OK = rep.OK && chk.OK
	}
	return rep
}

func firstBucket(b []string) string {
	if len(b) == 0 {
		return ""
	}
	return b[0]
}

// credentialsAssumeNow is the fresh AssumeRole of *credcache.Cache.
type credentialsAssumeNow interface {
	AssumeNow(ctx context.Context, in credcache.Integration) (aws.Credentials, error)
}

// verifyAssume assumes the customer's role now and returns the access the
// other checks use: exactly the session just issued.
func (c *Copier) verifyAssume(ctx context.Context, in credcache.Integration, bucket string) (*access, VerifyCheck) {
	chk := VerifyCheck{Check: CheckAssumeRole, Target: in.RoleARN()}
	a := &access{mode: ModeDelegated, customer: in.CustomerID, integ: in, requesterPays: c.opts.RequesterPays != RequesterPaysNever}
	fresh, ok := c.opts.Credentials.(credentialsAssumeNow)
	if !ok {
		chk.Error = &Error{Kind: KindTransient, Stage: StageAssumeRole, Mode: ModeDelegated,
			Message: "delegated access is not configured on this worker"}
		return nil, chk
	}
	creds, err := fresh.AssumeNow(ctx, in)
	if err != nil {
		chk.Error = classifyAssume(err, ModeDelegated, "", a.hint(bucket))
		if chk.Error.Kind == KindAccessDenied {
			chk.Note = youngRoleNote
		}
		return nil, chk
	}
	a.provider = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	chk.OK = true
	return a, chk
}

// verifyBucket is HeadBucket with the registered account as
// ExpectedBucketOwner (none when no account is registered).
func (c *Copier) verifyBucket(ctx context.Context, a *access, account, bucket string) VerifyCheck {
	chk := VerifyCheck{Check: CheckHeadBucket, Target: bucket}
	in := &s3.HeadBucketInput{Bucket: aws.String(bucket)}
	if account != "" {
		in.ExpectedBucketOwner = aws.String(account)
	}
	loc := location.Location{Scheme: location.SchemeS3, Bucket: bucket}
	// Delegated reads do not pin the owner (the role's grants bound them),
	// but the check asks whether the bucket is the customer's: with the
	// owner set, a foreign bucket is a 403 and gets that hint.
	owner := a.expectedOwner
	if account != "" {
		owner = account
	}
	check := *a
	check.expectedOwner = owner
	_, ferr := c.s3Call(ctx, &check, loc, StageHeadBucket, func(fns ...func(*s3.Options)) error {
		_, err := c.s3.HeadBucket(ctx, in, fns...)
		return err
	})
	if ferr != nil {
		if ferr.Kind == KindNotFound {
			// A HEAD answer has no body: only "404", which is the bucket.
			ferr.Code, ferr.Hint = "NoSuchBucket", notFoundHint("NoSuchBucket", a.hint(bucket))
		}
		chk.Error = ferr
		switch {
		case a.mode == ModeDelegated && ferr.Kind == KindAccessDenied:
			chk.Note = youngRoleNote
		case ferr.Kind == KindAccessDenied:
			chk.Note = headBucketCrossAccountNote
		}
		return chk
	}
	chk.OK = true
	return chk
}

// headBucketCrossAccountNote explains a refused HeadBucket of a
// cross-account customer, whose bucket policy need not grant it.
const headBucketCrossAccountNote = "HeadBucket needs s3:ListBucket, which cross-account access does not require: verify with --object s3://BUCKET/KEY to check a read instead"

// verifyObject reads the first byte of loc as a task would read it.
func (c *Copier) verifyObject(ctx context.Context, a *access, loc location.Location) VerifyCheck {
	chk := VerifyCheck{Check: CheckGetObject, Target: loc.Redacted()}
	rb := &rangedBody{c: c, ctx: ctx, a: a, loc: loc, part: 1}
	out, ferr := rb.get(ctx, 0, "")
	if ferr != nil && ferr.Code == "InvalidRange" {
		// An empty object has no byte 0 to range over.
		out, ferr = rb.get(ctx, -1, "")
	}
	if ferr != nil {
		chk.Error = ferr
		if a.mode == ModeDelegated && ferr.Kind == KindAccessDenied {
			chk.Note = youngRoleNote
		}
		return chk
	}
	out.Body.Close()
	chk.OK = true
	return chk
}
