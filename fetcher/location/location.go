// Package location parses the attachment URIs a task names (s3:// URIs, the
// https forms of S3 URLs, plain http(s) URLs) into a Location, validates S3
// bucket names and keys, redacts presigned query strings, and sanitises the
// base name a stored copy gets.
//
// It imports only the standard library so that its tests and fuzz targets
// build without the AWS SDK the fetcher needs; the fetcher turns an *Error
// of this package into its own classified error.
package location

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Scheme says how an attachment is fetched.
type Scheme string

// The schemes ferry fetches.
const (
	// SchemeS3 is read with the S3 API (s3:// URIs and the https forms of
	// S3 URLs).
	SchemeS3 Scheme = "s3"
	// SchemeHTTPS is a plain https download through the SSRF-safe client.
	SchemeHTTPS Scheme = "https"
	// SchemeHTTP is plain http; Copier refuses it unless the host is in
	// Options.HTTPAllowHosts, because customers' data must travel encrypted.
	SchemeHTTP Scheme = "http"
)

// maxKeyBytes is S3's limit on key length.
const maxKeyBytes = 1024

// Location is a parsed attachment URI.
type Location struct {
	Scheme Scheme `json:"scheme"`
	// Bucket and Key are set for SchemeS3. Key is exactly the S3 object key.
	Bucket string `json:"bucket,omitempty"`
	Key    string `json:"key,omitempty"`
	// VersionID is an S3 https URL's versionId query parameter.
	VersionID string `json:"version_id,omitempty"`
	// Region is the region named by an S3 https host ("" when the host names
	// none, e.g. s3.amazonaws.com); it is the first region tried.
	Region string `json:"region,omitempty"`
	// Style records which S3 form was given: "s3", "path", "virtual".
	Style string `json:"style,omitempty"`
	// URL is the parsed URL of an http(s) source (nil for SchemeS3).
	URL *url.URL `json:"-"`
}

// String renders the location: s3://bucket/key for S3 (the key literally, so
// Parse(l.String()) gives l back for the s3:// form), the URL otherwise.
// For http(s) it includes the query string, which may be a presigned
// signature: use Redacted for anything logged or published.
func (l Location) String() string {
	if l.Scheme == SchemeS3 {
		return "s3://" + l.Bucket + "/" + l.Key
	}
	if l.URL != nil {
		return l.URL.String()
	}
	return ""
}

// Redacted is String without query strings (replaced by "?<redacted>") so it
// can be logged, stored in metadata and returned in events without leaking a
// presigned signature or token.
func (l Location) Redacted() string {
	if l.Scheme == SchemeS3 {
		return l.String()
	}
	if l.URL == nil {
		return ""
	}
	u := *l.URL
	q := u.RawQuery != ""
	u.RawQuery = ""
	u.Fragment = ""
	u.User = nil
	s := u.String()
	if q {
		s += "?<redacted>"
	}
	return s
}

// Parse parses an attachment URI. It accepts:
//
//   - s3://bucket/key — the key is taken literally, NOT percent-decoded, as the
//     AWS CLI does (`aws s3 cp s3://b/a%20b .` reads the key "a%20b"): spaces,
//     '+', '%', '#', '?' and unicode are part of the key, and so is a trailing
//     slash;
//   - the https forms of S3 URLs, path-style (s3.amazonaws.com,
//     s3-REGION.amazonaws.com, s3.REGION.amazonaws.com,
//     s3.dualstack.REGION.amazonaws.com) and virtual-hosted (the same hosts
//     prefixed by "bucket."): the path IS percent-decoded as S3 does, '+' in a
//     path stays a literal plus, and the host's region becomes Location.Region.
//     A presigned S3 URL (X-Amz-Signature in the query) is a plain https
//     download instead: the signature is the customer's grant;
//   - other https:// and http:// URLs (http is refused later by the Copier
//     unless allowed).
//
// Anything else (other schemes, empty or invalid bucket names, empty keys,
// userinfo, fragments, invalid UTF-8) is an *Error naming the problem: such
// a URI can never be fetched, whatever is retried.
func Parse(s string) (Location, error) {
	if s == "" {
		return Location{}, invalidURI(s, "empty URI")
	}
	if !utf8.ValidString(s) {
		return Location{}, invalidURI("", "URI is not valid UTF-8")
	}
	if len(s) >= 5 && strings.EqualFold(s[:5], "s3://") {
		return parseS3(s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, invalidURI(RedactURLs(s), "malformed URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		if scheme == "" {
			return Location{}, invalidURI(RedactURLs(s), "no scheme: use s3://bucket/key or an https URL")
		}
		return Location{}, invalidURI(RedactURLs(s), fmt.Sprintf("unsupported scheme %q: use s3://bucket/key or an https URL", scheme))
	}
	red := (&Location{Scheme: Scheme(scheme), URL: u}).Redacted()
	if u.Opaque != "" {
		return Location{}, invalidURI(red, "URL has no host")
	}
	if u.User != nil {
		return Location{}, invalidURI(red, "URL carries a user name or password; ferry does not send credentials in URLs")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return Location{}, invalidURI(red, "URL has a fragment; percent-encode '#' as %23 if it is part of the path")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return Location{}, invalidURI(red, "URL has no host")
	}
	if loc, ok, err := parseS3Host(u, host); ok || err != nil {
		return loc, err
	}
	return Location{Scheme: Scheme(scheme), URL: u}, nil
}

func parseS3(s string) (Location, error) {
	rest := s[5:]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return Location{}, invalidURI(s, "no key: use s3://bucket/key")
	}
	bucket, key := rest[:slash], rest[slash+1:]
	if err := CheckBucket(bucket); err != nil {
		return Location{}, invalidURI(s, err.Error())
	}
	if err := validKey(key); err != nil {
		return Location{}, invalidURI(s, err.Error())
	}
	return Location{Scheme: SchemeS3, Bucket: bucket, Key: key, Style: "s3"}, nil
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// s3HostRegion reports whether h (a host without ".amazonaws.com") is an S3
// endpoint and which region it names.
func s3HostRegion(h string) (string, bool) {
	switch {
	case h == "s3":
		return "", true
	case h == "s3-external-1":
		return "us-east-1", true
	case strings.HasPrefix(h, "s3.dualstack."):
		r := strings.TrimPrefix(h, "s3.dualstack.")
		return r, regionRE.MatchString(r)
	case strings.HasPrefix(h, "s3."):
		r := strings.TrimPrefix(h, "s3.")
		return r, regionRE.MatchString(r)
	case strings.HasPrefix(h, "s3-"):
		r := strings.TrimPrefix(h, "s3-")
		return r, regionRE.MatchString(r)
	}
	return "", false
}

// parseS3Host recognises the https forms of S3 URLs. ok is false for hosts
// that are not S3 endpoints.
func parseS3Host(u *url.URL, host string) (Location, bool, error) {
	base, found := strings.CutSuffix(host, ".amazonaws.com")
	if !found {
		return Location{}, false, nil
	}
	q := u.Query()
	if q.Get("X-Amz-Signature") != "" || q.Get("Signature") != "" {
		// Presigned: the query is the grant, fetch it as a plain download.
		return Location{}, false, nil
	}
	red := (&Location{Scheme: SchemeHTTPS, URL: u}).Redacted()
	path := u.Path // percent-decoded; '+' stays '+'
	if region, ok := s3HostRegion(base); ok {
		p := strings.TrimPrefix(path, "/")
		bucket, key, _ := strings.Cut(p, "/")
		if bucket == "" {
			return Location{}, true, invalidURI(red, "no bucket in the path of a path-style S3 URL")
		}
		if err := CheckBucket(bucket); err != nil {
			return Location{}, true, invalidURI(red, err.Error())
		}
		if err := validKey(key); err != nil {
			return Location{}, true, invalidURI(red, err.Error())
		}
		return Location{Scheme: SchemeS3, Bucket: bucket, Key: key, Region: region, Style: "path", VersionID: q.Get("versionId")}, true, nil
	}
	// Virtual-hosted: BUCKET.<s3 host>; bucket names may contain dots, so try
	// every split.
	for i := 0; i < len(base); i++ {
		if base[i] != '.' {
			continue
		}
		region, ok := s3HostRegion(base[i+1:])
		if !ok {
			continue
		}
		bucket := base[:i]
		if err := CheckBucket(bucket); err != nil {
			return Location{}, true, invalidURI(red, err.Error())
		}
		key := strings.TrimPrefix(path, "/")
		if err := validKey(key); err != nil {
			return Location{}, true, invalidURI(red, err.Error())
		}
		return Location{Scheme: SchemeS3, Bucket: bucket, Key: key, Region: region, Style: "virtual", VersionID: q.Get("versionId")}, true, nil
	}
	return Location{}, false, nil
}

func validKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("empty key")
	case len(key) > maxKeyBytes:
		return fmt.Errorf("key longer than %d bytes", maxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("key is not valid UTF-8")
	}
	return nil
}

// CheckBucket applies S3's naming rules for general purpose buckets; the
// error names the rule b breaks. A bucket that fails it cannot exist, so
// asking S3 about it would only return a confusing error.
func CheckBucket(b string) error {
	if b == "" {
		return fmt.Errorf("empty bucket name")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("invalid bucket name %q: must be 3 to 63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("invalid bucket name %q: only lowercase letters, digits, dots and hyphens", b)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("invalid bucket name %q: must start and end with a letter or digit", b)
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("invalid bucket name %q: two adjacent dots", b)
	}
	if ip := net.ParseIP(b); ip != nil && ip.To4() != nil {
		return fmt.Errorf("invalid bucket name %q: formatted as an IP address", b)
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return fmt.Errorf("invalid bucket name %q: reserved prefix %q", b, p)
		}
	}
	for _, sfx := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, sfx) {
			return fmt.Errorf("invalid bucket name %q: reserved suffix %q", b, sfx)
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Error is an attachment URI that can never be fetched: another scheme, an
// invalid bucket name, an empty key... Message is what the customer is told;
// URI is the URI as it may be logged or published (query strings redacted,
// empty when the URI is not valid UTF-8).
type Error struct {
	URI     string
	Message string
}

// Error describes the rejected URI and why.
func (e *Error) Error() string {
	if e.URI == "" {
		return "invalid URI: " + e.Message
	}
	return "invalid URI " + e.URI + ": " + e.Message
}

func invalidURI(uri, msg string) *Error { return &Error{URI: uri, Message: msg} }

// RedactURLs removes query strings from any http(s) URL inside s, so text
// quoting a request URL (an SDK or net/http error, a rejected URI) can be
// logged without leaking a presigned signature or token.
func RedactURLs(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "http")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i:]
		end := strings.IndexAny(s, " \"'\n\t")
		if end < 0 {
			end = len(s)
		}
		u := s[:end]
		if q := strings.IndexByte(u, '?'); q >= 0 {
			u = u[:q] + "?<redacted>"
		}
		b.WriteString(u)
		s = s[end:]
	}
}
