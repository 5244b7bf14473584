package sigv4

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Verify accepts what the SDK signed with the secret it signed with, and
// nothing else: another secret, a path or a signed header changed in flight.
func TestVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const payload = "UNSIGNED-PAYLOAD"
	// A key ID per request, as the gate issues them: the signer caches
	// derived keys by key ID, not by secret (see signer).
	keys := 0
	creds := func() aws.Credentials {
		keys++
		return aws.Credentials{AccessKeyID: "AKID" + strconv.Itoa(keys), SecretAccessKey: "secret"}
	}
	signOpts := func(service string) func(*v4.SignerOptions) {
		return func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" }
	}
	sign := func(service, target string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:4566"+target, nil)
		r.Header.Set("X-Amz-Content-Sha256", payload)
		r.Header.Set("X-Amz-Meta-Color", "blue")
		if err := v4.NewSigner().SignHTTP(ctx, creds(), r, payload, service, "us-east-1", time.Now(), signOpts(service)); err != nil {
			t.Fatal(err)
		}
		return r
	}
	presign := func(target string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:4566"+target+"?X-Amz-Expires=900", nil)
		signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds(), r, payload, "s3", "us-east-1", time.Now(), signOpts("s3"))
		if err != nil {
			t.Fatal(err)
		}
		return httptest.NewRequest(http.MethodGet, signed, nil)
	}
	tests := []struct {
		name   string
		r      *http.Request
		change func(*http.Request)
		secret string
		want   bool
	}{
		{"s3 header", sign("s3", "/b/a%20b"), nil, "secret", true},
		{"sqs header", sign("sqs", "/"), nil, "secret", true},
		{"s3 presigned", presign("/b/k"), nil, "secret", true},
		{"other secret", sign("s3", "/b/k"), nil, "other", false},
		{"presigned, other secret", presign("/b/k"), nil, "other", false},
		{"path changed", sign("s3", "/b/k"), func(r *http.Request) { r.URL.Path = "/b/k2" }, "secret", false},
		{"presigned path changed", presign("/b/k"), func(r *http.Request) { r.URL.Path = "/b/k2" }, "secret", false},
		{"signed header changed", sign("s3", "/b/k"), func(r *http.Request) { r.Header.Set("X-Amz-Meta-Color", "red") }, "secret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.change != nil {
				tt.change(tt.r)
			}
			si, ok, err := Parse(tt.r)
			if !ok || err != nil {
				t.Fatalf("Parse = %v, %v", ok, err)
			}
			if got := Verify(ctx, tt.r, si, tt.secret, payload); got != tt.want {
				t.Fatalf("Verify = %t, want %t", got, tt.want)
			}
		})
	}
}

// FuzzVerifySigV4 feeds arbitrary Authorization headers, dates, paths,
// queries and payload hashes through Parse and Verify, as any client can
// send them to the gate before it is authenticated: neither may panic.
func FuzzVerifySigV4(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd", "20240101T000000Z", "/b/k", "a=1", "UNSIGNED-PAYLOAD")
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;;content-length;x-amz-security-token, Signature=", "x", "/", "X-Amz-Credential=a/b/c/d/aws4_request&X-Amz-Expires=-1", "")
	f.Add("", "", "/b", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=K/20240101/eu-west-1/s3/aws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00", "")
	f.Fuzz(func(t *testing.T, auth, amzDate, path, query, payload string) {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
		r.URL.Path, r.URL.RawQuery = path, query
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", amzDate)
		r.Header.Set("X-Amz-Content-Sha256", payload)
		r.Header.Set("Content-Length", payload)
		si, ok, err := Parse(r)
		if !ok || err != nil {
			return
		}
		_ = Verify(r.Context(), r, si, "secret", payload)
	})
}
