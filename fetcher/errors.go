package fetcher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/awsclient"

	"github.com/ferryworks/ferry/fetcher/location"
)

// Kind classifies why an attachment could not be copied. It decides what the
// worker does next: only KindTransient is worth retrying; every other kind is
// a final answer for the attachment.
type Kind string

// The kinds of failure.
const (
	// KindAccessDenied: the customer's grants (role, trust policy, bucket
	// policy, registered account) do not let ferry read the object. Retrying
	// will not help until the customer changes something; the hint says what.
	KindAccessDenied Kind = "access_denied"
	// KindNotFound: the bucket or the key does not exist.
	KindNotFound Kind = "not_found"
	// KindInvalid: the task named something ferry will not fetch (bad URI,
	// refused scheme or host).
	KindInvalid Kind = "invalid"
	// KindTooLarge: the object exceeds Options.MaxObjectBytes.
	KindTooLarge Kind = "too_large"
	// KindTransient: throttling, 5xx, timeouts, broken connections; the same
	// request may succeed later.
	KindTransient Kind = "transient"
)

// Stage names the step of a copy that failed; customers read it in events.
type Stage string

// The stages of a copy.
const (
	StageParse Stage = "parse"
	// StageIntegration: the integration registry could not be read, so ferry
	// could not decide between delegated and cross-account access.
	StageIntegration Stage = "integration"
	// StagePolicy: the fleet's cross-account policy refused the request
	// before any AWS call was made.
	StagePolicy     Stage = "policy"
	StageAssumeRole Stage = "assume_role"
	StageHeadBucket Stage = "head_bucket"
	StageHeadObject Stage = "head_object"
	StageGetObject  Stage = "get_object"
	StageHTTPGet    Stage = "http_get"
	StagePutObject  Stage = "put_object"
)

// Error is the typed outcome of a failed copy or check. It carries what a
// customer needs to fix their side (Stage, Mode, AWS Code, Hint) and never
// credentials, session tokens, external IDs or presigned query strings: URI is
// the redacted form of the source.
type Error struct {
	Kind    Kind   `json:"kind"`
	Stage   Stage  `json:"stage"`
	Mode    Mode   `json:"mode,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Hint    string `json:"hint,omitempty"`
	URI     string `json:"uri,omitempty"`
	Err     error  `json:"-"`
}

// Error renders "copy URI: STAGE: CODE: MESSAGE".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("copy ")
	if e.URI != "" {
		b.WriteString(e.URI)
	} else {
		b.WriteString("attachment")
	}
	b.WriteString(": ")
	b.WriteString(string(e.Stage))
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the underlying SDK, network or credcache error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed later: true only for
// KindTransient. The worker retries the task (and eventually dead-letters it)
// on true, and publishes a terminal event on false.
func (e *Error) Retryable() bool { return e.Kind == KindTransient }

// Is makes errors.Is(err, &Error{Kind: K}) match any *Error of kind K (and,
// when set, of the same Stage), so callers can test outcomes without string
// matching.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Kind != "" && t.Kind != e.Kind {
		return false
	}
	if t.Stage != "" && t.Stage != e.Stage {
		return false
	}
	return t.Kind != "" || t.Stage != ""
}

// Sentinels for errors.Is.
var (
	ErrAccessDenied = &Error{Kind: KindAccessDenied}
	ErrNotFound     = &Error{Kind: KindNotFound}
	ErrInvalid      = &Error{Kind: KindInvalid}
	ErrTooLarge     = &Error{Kind: KindTooLarge}
	ErrTransient    = &Error{Kind: KindTransient}
)

// errTooLarge is raised inside the streaming path by the limit reader.
var errTooLarge = errors.New("object exceeds the size limit")

// errShortBody: the source ended before its Content-Length.
var errShortBody = errors.New("source body shorter than its content length")

// errLongBody: the source sent more than its Content-Length.
var errLongBody = errors.New("source body longer than its content length")

// hintInput is what hint texts may mention.
type hintInput struct {
	bucket  string
	role    string
	account string
	// noRequesterPays: the read did not carry x-amz-request-payer, so a
	// Requester Pays bucket refuses it.
	noRequesterPays bool
}

func (h hintInput) vars() hintVars {
	return hintVars{bucket: h.bucket, role: h.role, account: h.account}
}

// classifyAssume turns a credentials failure into an Error at stage assume_role.
func classifyAssume(err error, mode Mode, uri string, h hintInput) *Error {
	var ae *credcache.AssumeRoleError
	if errors.As(err, &ae) {
		e := &Error{Stage: StageAssumeRole, Mode: mode, URI: uri, Code: ae.Code, Message: ae.Message, Err: err}
		if ae.Denied {
			e.Kind = KindAccessDenied
			e.Hint = assumeHint(ae.Code, ae.Message, h)
		} else {
			e.Kind = KindTransient
		}
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindTransient, Stage: StageAssumeRole, Mode: mode, URI: uri, Message: err.Error(), Err: err}
	}
	return &Error{Kind: KindTransient, Stage: StageAssumeRole, Mode: mode, URI: uri, Message: "could not obtain credentials", Err: err}
}

// assumeHint picks the catalogue row of an STS refusal.
func assumeHint(code, msg string, h hintInput) string {
	lmsg := strings.ToLower(msg)
	switch {
	case code == "NoSuchEntity" || strings.Contains(lmsg, "does not exist") || strings.Contains(lmsg, "no such role"):
		return hAssumeNoRole.render(h.vars())
	case strings.Contains(lmsg, "external"):
		return hAssumeExternalID.render(h.vars())
	default:
		// STS gives the same AccessDenied for a wrong external ID, a role
		// that does not trust the fleet and a missing role; the external ID
		// is the commonest mistake, so it leads.
		return hAssumeDenied.render(h.vars())
	}
}

// classifyS3 turns an S3 API error into an Error.
func classifyS3(err error, stage Stage, mode Mode, uri string, h hintInput, expectedOwner string) *Error {
	e := &Error{Stage: stage, Mode: mode, URI: uri, Err: err}
	status := 0
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status = re.Response.StatusCode
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
		e.Message = api.ErrorMessage()
	}
	if e.Code == "" && status != 0 {
		// HEAD responses have no body, so only the status is known.
		e.Code = http.StatusText(status)
	}
	if e.Message == "" {
		e.Message = safeMessage(err)
	}
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindTransient
	case isTransientCode(e.Code) || status == http.StatusTooManyRequests || status >= 500:
		e.Kind = KindTransient
	case e.Code == "NoSuchKey" || e.Code == "NoSuchBucket" || e.Code == "NotFound" || status == http.StatusNotFound:
		e.Kind = KindNotFound
		e.Hint = notFoundHint(e.Code, h)
	case status == http.StatusForbidden || isDeniedCode(e.Code):
		e.Kind = KindAccessDenied
		e.Hint = deniedHint(e.Code, e.Message, mode, h, expectedOwner)
	case e.Code == "ExpiredToken" || e.Code == "InvalidToken" || e.Code == "TokenRefreshRequired":
		// Reached only after the one refresh-and-retry already failed.
		e.Kind = KindTransient
	case status == http.StatusMovedPermanently:
		e.Kind = KindTransient
		e.Message = "bucket is in another region and S3 did not say which"
	case status >= 400 && status < 500:
		e.Kind = KindInvalid
	default:
		// Connection resets, DNS failures, timeouts: the request never got
		// an AWS answer.
		e.Kind = KindTransient
	}
	return e
}

// isTransientCode reports whether an S3 error code means S3 could not
// serve the request now, so the copy is retried: what the SDK itself retries
// by code (throttling such as SlowDown, RequestTimeout), a clock skew S3
// rejected, and S3's own faults. S3 can report those last ones with a 200 and
// an error body (CompleteMultipartUpload), so the status alone does not show
// them:
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html
func isTransientCode(code string) bool {
	switch code {
	case "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable":
		return true
	}
	return awsclient.RetriedCode(code)
}

func isDeniedCode(code string) bool { return slices.Contains(deniedCodes, code) }

func notFoundHint(code string, h hintInput) string {
	if code == hNoSuchBucket.code() {
		return hNoSuchBucket.render(h.vars())
	}
	return hNoSuchKey.render(h.vars())
}

// kmsKeyARN finds a KMS key ARN in an error message.
var kmsKeyARN = regexp.MustCompile(`arn:aws:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-fA-F-]+`)

// deniedHint picks the catalogue row of an S3 refusal.
func deniedHint(code, msg string, mode Mode, h hintInput, expectedOwner string) string {
	v := h.vars()
	v.owner = expectedOwner
	if strings.Contains(msg, "kms:Decrypt") {
		// S3 relays KMS's refusal to decrypt an SSE-KMS object
		// (https://repost.aws/knowledge-center/decrypt-kms-encrypted-objects-s3).
		v.kmsKey = kmsKeyARN.FindString(msg)
		if v.kmsKey == "" {
			v.kmsKey = "that encrypts the object (aws s3api head-object shows it as SSEKMSKeyId)"
		}
		if mode == ModeDelegated {
			return hKMSDelegated.render(v)
		}
		return hKMSCrossAccount.render(v)
	}
	var hint string
	switch {
	case code == hAllAccessDisabled.code():
		return hAllAccessDisabled.render(v)
	case expectedOwner != "" && mode == ModeCrossAccount:
		// With ExpectedBucketOwner set, S3 answers 403 both for a foreign
		// bucket and for a missing grant; name both.
		hint = hDeniedPinned.render(v)
	case mode == ModeDelegated:
		hint = hDeniedDelegated.render(v)
	default:
		hint = hDeniedCrossAccount.render(v)
	}
	if h.noRequesterPays {
		hint += "; " + hRequesterPays.render(v)
	}
	return hint
}

// safeMessage is err's text with anything after a "?" in URLs dropped, since
// SDK and net/http errors quote request URLs, which may be presigned.
func safeMessage(err error) string {
	return location.RedactURLs(err.Error())
}

// classifyNet classifies a failure of the https source.
func classifyNet(err error, uri string) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// net/http quotes the full request URL, which may be presigned.
		ue.URL = location.RedactURLs(ue.URL)
	}
	e := &Error{Stage: StageHTTPGet, Mode: ModeHTTPS, URI: uri, Err: err, Message: safeMessage(err)}
	var be *blockedError
	var ne net.Error
	switch {
	case errors.As(err, &be):
		e.Kind = KindInvalid
		e.Code = hBlockedAddress.code()
		e.Message = be.Error()
		e.Hint = hBlockedAddress.render(hintVars{})
	case errors.Is(err, errTooLarge):
		e.Kind = KindTooLarge
		e.Code = hTooLarge.code()
	case errors.Is(err, errTooManyRedirects):
		e.Kind = KindInvalid
		e.Code = hTooManyRedirects.code()
		e.Hint = hTooManyRedirects.render(hintVars{})
	case errors.Is(err, errInsecureRedirect):
		e.Kind = KindInvalid
		e.Code = hInsecureRedirect.code()
		e.Hint = hInsecureRedirect.render(hintVars{})
	case isCertificateError(err):
		// Retrying cannot help: the server's certificate is what it is.
		e.Kind = KindInvalid
		e.Code = hTLSCertificate.code()
		e.Hint = hTLSCertificate.render(hintVars{})
	case isHandshakeError(err):
		e.Kind = KindInvalid
		e.Code = hTLSHandshake.code()
		e.Hint = hTLSHandshake.render(hintVars{})
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindTransient
	case errors.As(err, &ne):
		e.Kind = KindTransient
	default:
		e.Kind = KindTransient
	}
	return e
}

// classifyHTTPStatus classifies a non-2xx answer of an https source.
func classifyHTTPStatus(status int, uri string) *Error {
	e := &Error{Stage: StageHTTPGet, Mode: ModeHTTPS, URI: uri, Code: fmt.Sprintf("HTTP%d", status), Message: http.StatusText(status)}
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		e.Kind = KindNotFound
		e.Hint = hHTTPNotFound.render(hintVars{})
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind = KindAccessDenied
		e.Hint = hHTTPDenied.render(hintVars{})
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		e.Kind = KindTransient
	default:
		e.Kind = KindInvalid
	}
	return e
}

// isCertificateError reports a failed verification of a server's
// certificate chain or name.
func isCertificateError(err error) bool {
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var cie x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie)
}

// isHandshakeError reports a TLS handshake the server broke off with an
// alert (crypto/tls reports those as a "remote error"), or a server that
// does not speak TLS at all.
func isHandshakeError(err error) bool {
	var ae tls.AlertError
	var rhe tls.RecordHeaderError
	var oe *net.OpError
	return errors.As(err, &ae) || errors.As(err, &rhe) || (errors.As(err, &oe) && oe.Op == "remote error") ||
		// net/http turns the RecordHeaderError of a plain http answer
		// into this text.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}
