package fetcher

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryworks/ferry/credcache"
)

// noIntegrations is a registry in which no customer has an integration; the
// https paths never consult it.
type noIntegrations struct{}

func (noIntegrations) Get(context.Context, string) (credcache.Integration, error) {
	return credcache.Integration{}, credcache.ErrNotFound
}

// httpsCopier returns a Copier whose https source trusts srv's certificate
// and may reach allow; its S3 client is never called by these tests.
func httpsCopier(t *testing.T, srv *httptest.Server, maxBytes int64, allow ...string) *Copier {
	t.Helper()
	c, err := New(Options{
		S3:             s3.New(s3.Options{Region: "us-east-1"}),
		Integrations:   noIntegrations{},
		Bucket:         "ferry-internal",
		HTTPAllowHosts: allow,
		MaxObjectBytes: maxBytes,
		PartSize:       minPartSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	if srv != nil {
		trust(c, srv)
	}
	return c
}

// trust makes c's https source trust srv's certificate (httptest's own CA),
// and nothing else, as a fleet trusts the system roots.
func trust(c *Copier, srv *httptest.Server) {
	c.http.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

func TestHTTPSSource(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("ETag", `"v1"`)
		w.Write([]byte("hello png"))
	})
	mux.HandleFunc("/metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://169.254.169.254/latest/meta-data/iam/security-credentials/", http.StatusFound)
	})
	mux.HandleFunc("/mapped", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://[::ffff:169.254.169.254]/latest/", http.StatusFound)
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com/x", http.StatusFound)
	})
	mux.HandleFunc("/loop/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/loop/"))
		http.Redirect(w, r, "/loop/"+strconv.Itoa(n+1), http.StatusFound)
	})
	mux.HandleFunc("/hop/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
		if n >= 5 {
			http.Redirect(w, r, "/ok.png", http.StatusFound)
			return
		}
		http.Redirect(w, r, "/hop/"+strconv.Itoa(n+1), http.StatusFound)
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	allowed := httpsCopier(t, srv, 0, "127.0.0.1")

	tests := []struct {
		name   string
		c      *Copier
		uri    string
		kind   Kind // "" = OK
		code   string
		stage  Stage
		wantSz int64
	}{
		{name: "allowed server", c: allowed, uri: srv.URL + "/ok.png", wantSz: 9},
		{name: "five redirects are followed", c: allowed, uri: srv.URL + "/hop/1", wantSz: 9},
		{name: "loopback by IP not allowed", c: httpsCopier(t, srv, 0), uri: srv.URL + "/ok.png", kind: KindInvalid, code: "BlockedAddress", stage: StageHTTPGet},
		{name: "hostname resolving to loopback", c: allowed, uri: "https://localhost:" + port + "/ok.png", kind: KindInvalid, code: "BlockedAddress", stage: StageHTTPGet},
		{name: "redirect to metadata service", c: allowed, uri: srv.URL + "/metadata", kind: KindInvalid, code: "BlockedAddress", stage: StageHTTPGet},
		{name: "redirect to mapped metadata", c: allowed, uri: srv.URL + "/mapped", kind: KindInvalid, code: "BlockedAddress", stage: StageHTTPGet},
		{name: "redirect to plain http", c: allowed, uri: srv.URL + "/plain", kind: KindInvalid, code: "InsecureRedirect", stage: StageHTTPGet},
		{name: "redirect loop", c: allowed, uri: srv.URL + "/loop/0", kind: KindInvalid, code: "TooManyRedirects", stage: StageHTTPGet},
		{name: "plain http refused", c: allowed, uri: "http://example.com/a.png", kind: KindInvalid, code: "InsecureURL", stage: StageParse},
		{name: "metadata IP directly", c: allowed, uri: "https://169.254.169.254/latest/", kind: KindInvalid, code: "BlockedAddress", stage: StageHTTPGet},
		{name: "private IP directly", c: allowed, uri: "https://10.0.0.1/x", kind: KindInvalid, code: "BlockedAddress", stage: StageHTTPGet},
		{name: "404", c: allowed, uri: srv.URL + "/missing", kind: KindNotFound, code: "HTTP404", stage: StageHTTPGet},
		{name: "403", c: allowed, uri: srv.URL + "/forbidden", kind: KindAccessDenied, code: "HTTP403", stage: StageHTTPGet},
		{name: "502", c: allowed, uri: srv.URL + "/broken", kind: KindTransient, code: "HTTP502", stage: StageHTTPGet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := tt.c.Check(context.Background(), "acme", tt.uri)
			if tt.kind == "" {
				if !rep.OK || rep.Error != nil {
					t.Fatalf("Check = %+v, error %v", rep, rep.Error)
				}
				if rep.Mode != ModeHTTPS || rep.Object == nil || rep.Object.Size != tt.wantSz {
					t.Fatalf("Check = %+v", rep)
				}
				return
			}
			if rep.OK || rep.Error == nil {
				t.Fatalf("Check succeeded: %+v", rep)
			}
			e := rep.Error
			if e.Kind != tt.kind || e.Code != tt.code || e.Stage != tt.stage || e.Mode != ModeHTTPS {
				t.Fatalf("error = %s/%s/%s/%s (%s), want %s/%s/%s", e.Kind, e.Code, e.Stage, e.Mode, e.Message, tt.kind, tt.code, tt.stage)
			}
		})
	}
}

func TestHTTPSTooLargeWhileStreaming(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Flushing first forces chunked encoding: no Content-Length to trust.
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		chunk := make([]byte, 16<<10)
		for i := 0; i < 1024; i++ { // 16 MiB unless the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := httpsCopier(t, srv, limit, "127.0.0.1")
	_, err := c.Copy(context.Background(), Request{CustomerID: "acme", TaskID: "t1", URI: srv.URL + "/big?sig=secret"})
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindTooLarge || fe.Stage != StageHTTPGet {
		t.Fatalf("Copy error = %v, want too_large at http_get", err)
	}
	if strings.Contains(fe.Error(), "secret") || strings.Contains(fe.URI, "secret") {
		t.Fatalf("error leaks the query string: %v", fe)
	}
}

// A plain https attachment whose server fails TLS is invalid, not
// transient: retrying cannot change a certificate. Each failure says what
// the customer must change.
func TestHTTPSTLSFailures(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("bytes")) })
	// A server with a CA of its own, which the copier does not trust
	// (httptest's servers all share one certificate).
	untrusted := ownCAServer(t, ok)
	// A server that speaks plain http on the URL's https port.
	plain := httptest.NewServer(ok)
	t.Cleanup(plain.Close)
	// A server that breaks the handshake off: it demands a client
	// certificate ferry does not have.
	mtls := httptest.NewUnstartedServer(ok)
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	mtls.StartTLS()
	t.Cleanup(mtls.Close)
	// A trusted server that redirects to the untrusted one.
	trusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, untrusted.URL+"/x", http.StatusFound)
	}))
	t.Cleanup(trusted.Close)

	tests := []struct {
		name string
		c    *Copier
		uri  string
		code string
	}{
		{"certificate from an unknown authority", httpsCopier(t, nil, 0, "127.0.0.1"), untrusted.URL + "/x", "TLSCertificateInvalid"},
		{"redirect to a server with an unknown authority", httpsCopier(t, trusted, 0, "127.0.0.1"), trusted.URL + "/r", "TLSCertificateInvalid"},
		{"certificate for another name", httpsCopier(t, trusted, 0, "localhost"), strings.Replace(trusted.URL, "127.0.0.1", "localhost", 1) + "/x", "TLSCertificateInvalid"},
		{"server does not speak TLS", httpsCopier(t, nil, 0, "127.0.0.1"), strings.Replace(plain.URL, "http://", "https://", 1) + "/x", "TLSHandshakeFailed"},
		{"server breaks the handshake off", httpsCopier(t, mtls, 0, "127.0.0.1"), mtls.URL + "/x", "TLSHandshakeFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.c.Copy(context.Background(), Request{CustomerID: "acme", TaskID: "t", URI: tt.uri})
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Copy error %v is not a *fetcher.Error", err)
			}
			if fe.Kind != KindInvalid || fe.Code != tt.code || fe.Stage != StageHTTPGet || fe.Mode != ModeHTTPS {
				t.Fatalf("error = %s/%s/%s/%s (%s), want invalid/%s/http_get/https", fe.Kind, fe.Code, fe.Stage, fe.Mode, fe.Message, tt.code)
			}
			if fe.Hint == "" || !strings.Contains(fe.Hint, "TLS") {
				t.Errorf("hint %q should say what to change", fe.Hint)
			}
		})
	}
}

// ownCAServer serves h over TLS with a certificate for 127.0.0.1 from a CA
// generated here, which nothing trusts.
func ownCAServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "own CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}
