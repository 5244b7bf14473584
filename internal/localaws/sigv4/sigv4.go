// Package sigv4 reads an AWS Signature Version 4 from a request (the
// Authorization header or a presigned query) and verifies it by signing the
// request again with the SDK's signer and the stored secret.
package sigv4

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const algorithm = "AWS4-HMAC-SHA256"

// AmzDateFormat is the layout of X-Amz-Date, the signing time that the
// signature, the credential scope and every aws-chunked chunk signature
// repeat.
const AmzDateFormat = "20060102T150405Z"

var errMalformed = errors.New("malformed SigV4 authorization")

// Info is what a request says about its own signature.
type Info struct {
	AccessKey     string
	Date          string // YYYYMMDD of the scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	Presigned     bool
	AmzDate       time.Time
	Expires       time.Duration // presigned only
	SecurityToken string
}

// parseCredentialScope splits KEY/DATE/REGION/SERVICE/aws4_request.
func parseCredentialScope(cred string, si *Info) bool {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" || parts[2] == "" || parts[3] == "" {
		return false
	}
	si.AccessKey, si.Date, si.Region, si.Service = parts[0], parts[1], parts[2], parts[3]
	return true
}

// Parse reads the SigV4 parameters from the Authorization header or the
// presigned query. ok is false for an unsigned request; err reports a
// request that tries to sign but is malformed, which no secret can verify.
func Parse(r *http.Request) (si Info, ok bool, err error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		rest, found := strings.CutPrefix(auth, algorithm+" ")
		if !found {
			return si, true, errMalformed
		}
		for part := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "Credential":
				if !parseCredentialScope(v, &si) {
					return si, true, errMalformed
				}
			case "SignedHeaders":
				si.SignedHeaders = strings.Split(v, ";")
			case "Signature":
				si.Signature = v
			}
		}
		if si.AccessKey == "" || len(si.SignedHeaders) == 0 || si.Signature == "" {
			return si, true, errMalformed
		}
		t, perr := time.Parse(AmzDateFormat, r.Header.Get("X-Amz-Date"))
		if perr != nil {
			return si, true, errMalformed
		}
		si.AmzDate = t
		si.SecurityToken = r.Header.Get("X-Amz-Security-Token")
		return si, true, nil
	}
	if !strings.Contains(r.URL.RawQuery, "X-Amz-Credential") {
		return si, false, nil
	}
	q := r.URL.Query()
	cred := q.Get("X-Amz-Credential")
	if cred == "" {
		return si, false, nil
	}
	si.Presigned = true
	if q.Get("X-Amz-Algorithm") != algorithm || !parseCredentialScope(cred, &si) {
		return si, true, errMalformed
	}
	si.SignedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	si.Signature = q.Get("X-Amz-Signature")
	t, perr := time.Parse(AmzDateFormat, q.Get("X-Amz-Date"))
	exp, eerr := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if perr != nil || eerr != nil || exp <= 0 || si.Signature == "" {
		return si, true, errMalformed
	}
	si.AmzDate = t
	si.Expires = time.Duration(exp) * time.Second
	si.SecurityToken = q.Get("X-Amz-Security-Token")
	return si, true, nil
}

// signer caches the derived signing key per region and service under the
// access key ID and day, not the secret: Verify is right only while an
// access key ID stands for one secret, as the gate's random IDs do.
var signer = v4.NewSigner(func(o *v4.SignerOptions) {
	o.DisableHeaderHoisting = true
})

// Verify reports whether r carries a valid signature for secret: it
// re-signs a copy of r holding only the headers the client signed, with the
// stored secret and the client's own date, region, service and payload hash,
// and compares the signatures in constant time. The SDK signer always signs
// Content-Length when the length is positive and never signs User-Agent,
// Expect, Transfer-Encoding, Authorization or X-Amzn-Trace-Id, so a client
// that signed one of those the other way cannot be verified (it gets
// SignatureDoesNotMatch).
func Verify(ctx context.Context, r *http.Request, si Info, secret, payloadHash string) bool {
	u := *r.URL
	u.Scheme = "http"
	u.Host = r.Host
	u.User = nil
	u.Fragment = ""
	clone := &http.Request{
		Method: r.Method,
		URL:    &u,
		Host:   r.Host,
		Header: make(http.Header, len(si.SignedHeaders)),
	}
	creds := aws.Credentials{AccessKeyID: si.AccessKey, SecretAccessKey: secret}
	for _, h := range si.SignedHeaders {
		switch h {
		case "host", "":
			continue
		case "content-length":
			clone.ContentLength = r.ContentLength
			if cl, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64); err == nil {
				clone.ContentLength = cl
			}
			continue
		case "x-amz-security-token":
			creds.SessionToken = r.Header.Get("X-Amz-Security-Token")
		}
		key := textproto.CanonicalMIMEHeaderKey(h)
		clone.Header[key] = r.Header.Values(key)
	}
	optFns := func(o *v4.SignerOptions) {
		// S3 signs the path escaped once, every other service escapes it
		// again.
		o.DisableURIPathEscaping = si.Service == "s3"
		o.DisableHeaderHoisting = true
	}
	var got string
	if si.Presigned {
		q := u.Query()
		q.Del("X-Amz-Signature")
		creds.SessionToken = q.Get("X-Amz-Security-Token")
		u.RawQuery = q.Encode()
		signed, _, err := signer.PresignHTTP(ctx, creds, clone, payloadHash, si.Service, si.Region, si.AmzDate, optFns)
		if err != nil {
			return false
		}
		su, err := url.Parse(signed)
		if err != nil {
			return false
		}
		got = su.Query().Get("X-Amz-Signature")
	} else {
		if err := signer.SignHTTP(ctx, creds, clone, payloadHash, si.Service, si.Region, si.AmzDate, optFns); err != nil {
			return false
		}
		auth := clone.Header.Get("Authorization")
		if i := strings.LastIndex(auth, "Signature="); i >= 0 {
			got = auth[i+len("Signature="):]
		}
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(si.Signature)) == 1
}
