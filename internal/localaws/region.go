package localaws

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/ferryworks/ferry/internal/localaws/sigv4"
)

// The stack's own address ("127.0.0.1:4566") is an endpoint of every region:
// a request may be signed for any, and only the bucket's region decides.
// Regional host names of the stack ("s3-eu-west-1.localhost:4566",
// "s3.eu-west-1.localhost:4566", resolving to the same address) are the
// endpoint of that one region, as S3's regional endpoints are, so the
// answers S3 gives at the wrong endpoint or for the wrong signing region
// can be tested:
//
//   - signed for another region than the regional endpoint's: 400
//     AuthorizationHeaderMalformed naming the expected region (in the body's
//     <Region>; a HEAD answer has no body and carries x-amz-bucket-region);
//   - signed for (or sent to) another region than the bucket's: 301
//     PermanentRedirect with x-amz-bucket-region, and <Endpoint> and
//     <Bucket> in the body of answers that have one.
//
// https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList
// (AuthorizationHeaderMalformed, PermanentRedirect),
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
// (x-amz-bucket-region on HEAD answers), and
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingRouting.html
// (requests that reach the wrong regional endpoint).

var regionalHost = regexp.MustCompile(`^s3[.-]([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.localhost$`)

// endpointRegion is the region of a regional host name of the stack, ""
// for any other host (the stack's address serves every region).
func endpointRegion(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if m := regionalHost.FindStringSubmatch(host); m != nil {
		return m[1]
	}
	return ""
}

// regionalEndpoint is the host (with r's port) of region's endpoint.
func regionalEndpoint(r *http.Request, region string) string {
	host := "s3-" + region + ".localhost"
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		host = net.JoinHostPort(host, port)
	}
	return host
}

// wrongSigningRegion is S3's answer to a request signed for another region
// than the regional endpoint it reached; nil when they agree.
func wrongSigningRegion(r *http.Request, si sigv4.Info) *apiError {
	ep := endpointRegion(r.Host)
	if ep == "" || ep == si.Region {
		return nil
	}
	e := apiError{Status: http.StatusBadRequest, Code: "AuthorizationHeaderMalformed",
		Message: "The authorization header is malformed; the region '" + si.Region + "' is wrong; expecting '" + ep + "'",
		XML:     "<Region>" + xmlEscape(ep) + "</Region>"}
	if r.Method == http.MethodHead {
		e.Header = map[string]string{"x-amz-bucket-region": ep}
	}
	return &e
}

// wrongBucketRegion is S3's answer to a request for a bucket in another
// region than the one it was signed for; nil when they agree.
func wrongBucketRegion(r *http.Request, si sigv4.Info, bucket, region string) *apiError {
	if region == si.Region {
		return nil
	}
	return &apiError{Status: http.StatusMovedPermanently, Code: "PermanentRedirect",
		Message: "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
		Header:  map[string]string{"x-amz-bucket-region": region},
		XML:     "<Endpoint>" + xmlEscape(regionalEndpoint(r, region)) + "</Endpoint><Bucket>" + xmlEscape(bucket) + "</Bucket>"}
}

// RegionalEndpoint is the base URL of region's endpoint of the stack
// ("https://s3-eu-west-1.localhost:PORT"). The name resolves nowhere; the
// clients of Config dial the stack for every *.localhost name.
func (s *Stack) RegionalEndpoint(region string) string {
	scheme, addr, _ := strings.Cut(s.URL, "://")
	_, port, _ := net.SplitHostPort(addr)
	return scheme + "://" + net.JoinHostPort("s3-"+region+".localhost", port)
}

// dialLocalhostNames sends connections to any *.localhost name to the
// stack's own address.
func (s *Stack) dialLocalhostNames(next func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, ".localhost") {
			addr = s.ln.Addr().String()
		}
		return next(ctx, network, addr)
	}
}
