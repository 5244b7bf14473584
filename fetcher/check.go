package fetcher

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryworks/ferry/fetcher/location"
)

// CheckReport is what `ferry check-access` prints: how ferry would read an
// attachment and whether it can, without copying anything. It marshals to
// JSON and never contains credentials or presigned query strings.
type CheckReport struct {
	URI      string             `json:"uri"`
	Location *location.Location `json:"location,omitempty"`
	Mode     Mode               `json:"mode,omitempty"`
	// AssumeRole is "ok", "error" or "" (not delegated).
	AssumeRole string `json:"assume_role,omitempty"`
	// ExpectedBucketOwner is the account cross-account requests are pinned to.
	ExpectedBucketOwner string `json:"expected_bucket_owner,omitempty"`
	Region              string `json:"region,omitempty"`
	// Object is set when the source answered HeadObject (S3) or GET (https).
	Object *ObjectInfo `json:"object,omitempty"`
	OK     bool        `json:"ok"`
	Error  *Error      `json:"error,omitempty"`
	// Note adds what the error may also mean (a role too young for IAM's
	// changes to have reached STS and S3).
	Note string `json:"note,omitempty"`
}

// youngRoleNote is said of every delegated refusal: IAM applies changes
// eventually, and a role created or changed seconds ago is refused until
// then (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
// ferry usually may not read the role (iam:GetRole in the customer's
// account), so it stays a possibility.
const youngRoleNote = "a role created or changed in the last minutes may not be active yet: IAM takes a while to apply changes everywhere; check again in a minute"

// ObjectInfo is what a check learned about the source object.
type ObjectInfo struct {
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
	ETag        string `json:"etag,omitempty"`
}

// Check resolves how ferry would read uri for customerID (parse, mode,
// credentials, region) and asks the source for the object's size and type
// (S3 HeadObject; for https a GET whose body is not read), without copying.
// Failures are reported in CheckReport.Error with the same kinds, stages and
// hints as Copy.
func (c *Copier) Check(ctx context.Context, customerID, uri string) CheckReport {
	rep := CheckReport{URI: location.RedactURLs(uri)}
	loc, err := ParseURI(uri)
	if err != nil {
		rep.Error = asError(err)
		return rep
	}
	rep.URI = loc.Redacted()
	l := loc
	l.URL = nil
	rep.Location = &l
	if loc.Scheme != location.SchemeS3 {
		rep.Mode = ModeHTTPS
		obj, ferr := c.openHTTP(ctx, loc)
		if ferr != nil {
			rep.Error = ferr
			return rep
		}
		obj.body.Close()
		rep.Object = &ObjectInfo{Size: obj.size, ContentType: obj.contentType, ETag: obj.etag}
		rep.OK = true
		return rep
	}
	a, ferr := c.decide(ctx, Request{CustomerID: customerID}, loc)
	if ferr != nil {
		rep.Mode = ferr.Mode
		if ferr.Stage == StageAssumeRole {
			rep.AssumeRole = "error"
			if ferr.Kind == KindAccessDenied {
				rep.Note = youngRoleNote
			}
		}
		rep.Error = ferr
		return rep
	}
	rep.Mode = a.mode
	rep.ExpectedBucketOwner = a.expectedOwner
	if a.mode == ModeDelegated {
		rep.AssumeRole = "ok"
	}
	in := &s3.HeadObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Key), ExpectedBucketOwner: a.owner(),
		RequestPayer: a.payer()}
	if loc.VersionID != "" {
		in.VersionId = aws.String(loc.VersionID)
	}
	var out *s3.HeadObjectOutput
	region, ferr := c.s3Call(ctx, a, loc, StageHeadObject, func(fns ...func(*s3.Options)) error {
		var err error
		out, err = c.s3.HeadObject(ctx, in, fns...)
		return err
	})
	if region == "" {
		region = c.s3.Options().Region
	}
	rep.Region = region
	if ferr != nil {
		rep.Error = ferr
		if a.mode == ModeDelegated && ferr.Kind == KindAccessDenied {
			rep.Note = youngRoleNote
		}
		return rep
	}
	rep.Object = &ObjectInfo{Size: aws.ToInt64(out.ContentLength), ContentType: aws.ToString(out.ContentType), ETag: aws.ToString(out.ETag)}
	if out.ServerSideEncryption == s3types.ServerSideEncryptionAwsKms {
		// HeadObject needs no kms:Decrypt; reading does. One byte tells.
		rb := &rangedBody{c: c, ctx: ctx, a: a, loc: loc, part: 1}
		got, ferr := rb.get(ctx, 0, "")
		if ferr != nil {
			rep.Error = ferr
			return rep
		}
		got.Body.Close()
	}
	rep.OK = true
	return rep
}
