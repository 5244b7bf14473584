package fetcher

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/ferryworks/ferry/fetcher/location"
)

// Timeouts of the https source; the whole download is bounded by the
// caller's context.
const (
	httpDialTimeout           = 10 * time.Second
	httpTLSHandshakeTimeout   = 10 * time.Second
	httpResponseHeaderTimeout = 30 * time.Second
	httpMaxRedirects          = 5
)

// hostAllowList is Options.HTTPAllowHosts: hosts ("example.test") or
// host:port pairs ("127.0.0.1:8443") that may be reached over plain http and
// on non-public addresses. It exists for tests and on-premises sources;
// production fleets leave it empty.
type hostAllowList map[string]bool

func newHostAllowList(hosts []string) hostAllowList {
	m := hostAllowList{}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h != "" {
			m[h] = true
		}
	}
	return m
}

// allows reports whether hostport ("host:port") or its host is listed.
func (a hostAllowList) allows(hostport string) bool {
	if len(a) == 0 {
		return false
	}
	hostport = strings.ToLower(hostport)
	if a[hostport] {
		return true
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return a[strings.Trim(host, "[]")]
}

// urlHostPort is u's host:port with the scheme's default port filled in.
func urlHostPort(scheme, host, port string) string {
	if port == "" {
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(host, port)
}

// newHTTPClient builds the SSRF-safe client of the https source: every
// connection's RESOLVED address is checked at connect time (so a DNS answer
// that changes between check and use cannot reach the fleet's network), for
// the first request and for every redirect; proxies from the environment are
// ignored because they would turn the check into a check of the proxy.
func newHTTPClient(allow hostAllowList) *http.Client {
	guarded := &net.Dialer{
		Timeout: httpDialTimeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &blockedError{class: "unparseable"}
			}
			if c := classifyIP(ap.Addr()); c != "" {
				return &blockedError{addr: ap.Addr(), class: c}
			}
			return nil
		},
	}
	open := &net.Dialer{Timeout: httpDialTimeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if allow.allows(addr) {
				return open.DialContext(ctx, network, addr)
			}
			return guarded.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:   httpTLSHandshakeTimeout,
		ResponseHeaderTimeout: httpResponseHeaderTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > httpMaxRedirects {
				return errTooManyRedirects
			}
			if req.URL.User != nil {
				return errInsecureRedirect
			}
			if !allow.allows(urlHostPort(req.URL.Scheme, req.URL.Hostname(), req.URL.Port())) {
				if err := checkHostSpelling(req.URL.Hostname()); err != nil {
					return err
				}
			}
			switch req.URL.Scheme {
			case "https":
				return nil
			case "http":
				if allow.allows(urlHostPort("http", req.URL.Hostname(), req.URL.Port())) {
					return nil
				}
			}
			return errInsecureRedirect
		},
	}
}

// openHTTP starts the download of loc.
func (c *Copier) openHTTP(ctx context.Context, loc location.Location) (*object, *Error) {
	red := loc.Redacted()
	if loc.Scheme == location.SchemeHTTP && !c.allow.allows(urlHostPort("http", loc.URL.Hostname(), loc.URL.Port())) {
		return nil, &Error{Kind: KindInvalid, Stage: StageParse, Mode: ModeHTTPS, Code: hInsecureURL.code(), URI: red,
			Message: "plain http is refused: customers' data must travel encrypted",
			Hint:    hInsecureURL.render(hintVars{})}
	}
	if !c.allow.allows(urlHostPort(string(loc.Scheme), loc.URL.Hostname(), loc.URL.Port())) {
		if err := checkHostSpelling(loc.URL.Hostname()); err != nil {
			return nil, classifyNet(err, red)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.URL.String(), nil)
	if err != nil {
		return nil, &Error{Kind: KindInvalid, Stage: StageParse, Mode: ModeHTTPS, Code: hInvalidURI.code(), URI: red, Message: "malformed URL",
			Hint: hInvalidURI.render(hintVars{})}
	}
	req.Header.Set("User-Agent", "ferry")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, classifyNet(err, red)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, classifyHTTPStatus(resp.StatusCode, red)
	}
	obj := &object{
		body:        resp.Body,
		size:        resp.ContentLength,
		contentType: resp.Header.Get("Content-Type"),
	}
	if et := resp.Header.Get("ETag"); !strings.HasPrefix(et, "W/") {
		// Only a strong validator identifies the bytes well enough to skip
		// a copy.
		obj.etag = et
	}
	if resp.Uncompressed {
		// Go decoded a gzip transfer: the length on the wire is not ours.
		obj.size = -1
	}
	return obj, nil
}
