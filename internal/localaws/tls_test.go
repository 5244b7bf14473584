package localaws

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestTLSStack(t *testing.T) {
	t.Parallel()
	// A world of its own: it changes a bucket policy.
	w := newWorld(t, Options{TLS: true})
	s := w.s
	ctx := testCtx(t)
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") || !s.TLS() {
		t.Fatalf("URL %q, want https on loopback", s.URL)
	}

	t.Run("CA PEM verifies the served certificate for every loopback name", func(t *testing.T) {
		t.Parallel()
		block, _ := pem.Decode(s.CAPEM())
		if block == nil || block.Type != "CERTIFICATE" {
			t.Fatalf("CAPEM is not a PEM certificate: %q", s.CAPEM())
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !ca.IsCA {
			t.Fatalf("CA certificate: %v (IsCA %v)", err, ca != nil && ca.IsCA)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.CAPEM())
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "https://"))
		for _, name := range []string{"127.0.0.1", "localhost"} {
			conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: pool, ServerName: name, NextProtos: []string{"h2", "http/1.1"}})
			if err != nil {
				t.Fatalf("handshake as %s: %v", name, err)
			}
			// S3 speaks HTTP/1.1 only; a client offering h2 gets HTTP/1.1.
			if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
				t.Errorf("negotiated %q, want http/1.1", p)
			}
			_ = conn.Close()
		}
	})

	t.Run("SDK clients from Config trust the stack", func(t *testing.T) {
		t.Parallel()
		if body, err := get(ctx, s.S3Client(w.fleet, "us-east-1"), "acme-shared", "img/1.jpg"); err != nil || body != "jpeg-bytes" {
			t.Fatalf("cross-account get over https: %q, %v", body, err)
		}
		// The gate still refuses what it refused over http.
		if _, err := get(ctx, s.S3Client(w.fleet, "us-east-1"), "acme-private", "img/1.jpg"); !isCode(err, "AccessDenied") {
			t.Fatalf("private get over https: %v, want AccessDenied", err)
		}
		id, err := s.STSClient(w.fleet, "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(id.Account) != fleetID {
			t.Fatalf("GetCallerIdentity over https: %v", err)
		}
		url, err := s.CreateQueue(ctx, Queue{Name: "tls-q"})
		if err != nil {
			t.Fatal(err)
		}
		q := s.SQSClient(w.fleet, "")
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("over tls")}); err != nil {
			t.Fatalf("send over https: %v", err)
		}
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "over tls" {
			t.Fatalf("receive over https: %+v, %v", out, err)
		}
	})

	t.Run("a client without the CA is refused in the handshake", func(t *testing.T) {
		t.Parallel()
		cfg := s.Config(w.fleet, "us-east-1")
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
		_, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true; o.RetryMaxAttempts = 1 }).
			ListBuckets(ctx, &s3.ListBucketsInput{})
		var uae x509.UnknownAuthorityError
		if !errors.As(err, &uae) {
			t.Fatalf("untrusted client: %v, want an unknown-authority error", err)
		}
	})

	t.Run("admin endpoints through HTTPClient", func(t *testing.T) {
		t.Parallel()
		resp, err := s.HTTPClient().Get(s.URL + "/_localaws/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("health: %s", resp.Status)
		}
	})

	t.Run("policies see aws:SecureTransport true", func(t *testing.T) {
		t.Parallel()
		deny := `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::acme-eu","arn:aws:s3:::acme-eu/*"],` +
			`"Condition":{"Bool":{"aws:SecureTransport":"false"}}},` +
			`{"Effect":"Allow","Principal":{"AWS":"` + fleetID + `"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-eu/*"}]}`
		if err := s.SetBucketPolicy("acme-eu", deny); err != nil {
			t.Fatal(err)
		}
		if body, err := get(ctx, s.S3Client(w.fleet, "eu-west-1"), "acme-eu", "img/1.jpg"); err != nil || body != "jpeg-bytes" {
			t.Fatalf("get under a deny-insecure-transport policy over https: %q, %v", body, err)
		}
	})
}

// Over plain http the same deny-insecure-transport policy refuses.
func TestPlainHTTPIsNotSecureTransport(t *testing.T) {
	t.Parallel()
	// A world of its own: it changes a bucket policy.
	w := newWorld(t, Options{})
	deny := `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::acme-shared/*",` +
		`"Condition":{"Bool":{"aws:SecureTransport":"false"}}},` +
		`{"Effect":"Allow","Principal":{"AWS":"` + fleetID + `"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-shared/*"}]}`
	if err := w.s.SetBucketPolicy("acme-shared", deny); err != nil {
		t.Fatal(err)
	}
	if _, err := get(testCtx(t), w.s.S3Client(w.fleet, "us-east-1"), "acme-shared", "img/1.jpg"); !isCode(err, "AccessDenied") {
		t.Fatalf("get over http under a deny-insecure-transport policy: %v, want AccessDenied", err)
	}
}

func isCode(err error, code string) bool {
	c, _ := apiCode(err)
	return c == code
}
