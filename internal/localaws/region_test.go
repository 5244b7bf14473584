package localaws

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// rawS3 sends a signed S3 request to the stack with the given Host header
// (the stack's own address when ""), so answers can be read whole.
func rawS3(ctx context.Context, t *testing.T, s *Stack, acct Account, method, host, path, region string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	creds := aws.Credentials{AccessKeyID: acct.AccessKeyID, SecretAccessKey: acct.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, unsignedPayload, "s3", region, time.Now(), func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }); err != nil {
		t.Fatal(err)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// What S3 answers for a bucket in eu-west-1 asked for with a us-east-1
// signature, at the endpoint of every region (the stack's address) and at
// regional endpoints.
func TestWrongRegionAnswers(t *testing.T) {
	t.Parallel()
	w := sharedHTTPS.get(t)
	ctx := testCtx(t)
	port := w.s.URL[strings.LastIndex(w.s.URL, ":")+1:]
	eu := "s3-eu-west-1.localhost:" + port
	tests := []struct {
		name         string
		method, host string
		region       string
		status       int
		bucketRegion string   // x-amz-bucket-region; "" = absent
		body         []string // substrings of the body; nil = empty body
	}{
		{"GET at the stack: 301 with the endpoint", http.MethodGet, "", "us-east-1", http.StatusMovedPermanently, "eu-west-1",
			[]string{"<Code>PermanentRedirect</Code>", "<Endpoint>" + eu + "</Endpoint>", "<Bucket>acme-eu</Bucket>"}},
		{"HEAD at the stack: 301, no body", http.MethodHead, "", "us-east-1", http.StatusMovedPermanently, "eu-west-1", nil},
		{"GET at the bucket's regional endpoint signed for us-east-1: 400 naming the region", http.MethodGet, eu, "us-east-1",
			http.StatusBadRequest, "", []string{"<Code>AuthorizationHeaderMalformed</Code>", "the region &#39;us-east-1&#39; is wrong; expecting &#39;eu-west-1&#39;", "<Region>eu-west-1</Region>"}},
		{"HEAD at the bucket's regional endpoint signed for us-east-1: 400 with the header", http.MethodHead, eu, "us-east-1", http.StatusBadRequest, "eu-west-1", nil},
		{"GET at another regional endpoint: 301", http.MethodGet, "s3.us-west-2.localhost:" + port, "us-west-2", http.StatusMovedPermanently, "eu-west-1",
			[]string{"<Code>PermanentRedirect</Code>"}},
		{"GET at the bucket's regional endpoint signed for its region", http.MethodGet, "s3.eu-west-1.localhost:" + port, "eu-west-1", http.StatusOK, "", []string{"jpeg-bytes"}},
		{"GET at the stack signed for the bucket's region", http.MethodGet, "", "eu-west-1", http.StatusOK, "", []string{"jpeg-bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := rawS3(ctx, t, w.s, w.fleet, tt.method, tt.host, "/acme-eu/img/1.jpg", tt.region)
			if status != tt.status {
				t.Fatalf("status %d, want %d; body %s", status, tt.status, body)
			}
			if got := h.Get("x-amz-bucket-region"); got != tt.bucketRegion {
				t.Errorf("x-amz-bucket-region %q, want %q", got, tt.bucketRegion)
			}
			if tt.body == nil && body != "" {
				t.Errorf("body %q, want none", body)
			}
			for _, want := range tt.body {
				if !strings.Contains(body, want) {
					t.Errorf("body %q lacks %q", body, want)
				}
			}
		})
	}
}
