package localaws

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	miniosigner "github.com/minio/minio-go/v7/pkg/signer"
)

// bodyTamper rewrites request bodies on their way out (after the SDK
// computed checksums and signatures), as a corrupting network would.
type bodyTamper struct {
	next    aws.HTTPClient
	rewrite func(r *http.Request, body []byte) []byte
}

func (b bodyTamper) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Method == http.MethodPut {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		data = b.rewrite(r, data)
		r.Body = io.NopCloser(bytes.NewReader(data))
		r.ContentLength = int64(len(data))
	}
	return b.next.Do(r)
}

// flipAt flips one bit of a body at offset off.
func flipAt(off int) func(*http.Request, []byte) []byte {
	return func(_ *http.Request, b []byte) []byte {
		b[off] ^= 0x01
		return b
	}
}

func tamperedS3(s *Stack, acct Account, rewrite func(*http.Request, []byte) []byte) *s3.Client {
	cfg := s.Config(acct, "us-east-1")
	cfg.HTTPClient = bodyTamper{next: cfg.HTTPClient, rewrite: rewrite}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true; o.RetryMaxAttempts = 1 })
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sdkChecksums are the algorithms the Go SDK computes (S3 lists more).
var sdkChecksums = []types.ChecksumAlgorithm{
	types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme,
	types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmSha512,
}

// mustBeAbsent fails unless HeadObject answers 404: the refused body was
// not stored.
func mustBeAbsent(ctx context.Context, t *testing.T, c *s3.Client, bucket, key string) {
	t.Helper()
	_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, noRetry)
	if _, status := apiCode(err); status != http.StatusNotFound {
		t.Fatalf("HeadObject %s after the refusal: %v, want 404 (nothing stored)", key, err)
	}
}

func mustHold(ctx context.Context, t *testing.T, c *s3.Client, bucket, key string, want []byte) {
	t.Helper()
	got, err := get(ctx, c, bucket, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if got != string(want) {
		t.Fatalf("%s holds %d bytes that differ from the %d sent", key, len(got), len(want))
	}
}

// The Go SDK over https sends every upload aws-chunked with
// STREAMING-UNSIGNED-PAYLOAD-TRAILER and the checksum in a trailer; each
// algorithm S3 knows, seekable and unseekable bodies, single and
// multipart uploads, all arrive intact.
func TestAWSChunkedGoSDK(t *testing.T) {
	t.Parallel()
	w := sharedHTTPS.get(t)
	ctx := testCtx(t)
	var seen []string
	var mu = make(chan struct{}, 1)
	cfg := w.s.Config(w.customer, "us-east-1")
	cfg.HTTPClient = bodyTamper{next: cfg.HTTPClient, rewrite: func(r *http.Request, b []byte) []byte {
		mu <- struct{}{}
		seen = append(seen, r.Header.Get("X-Amz-Content-Sha256")+" "+r.Header.Get("X-Amz-Trailer"))
		<-mu
		return b
	}}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	data := randomBytes(t, 300<<10+7)
	for _, alg := range sdkChecksums {
		t.Run(string(alg), func(t *testing.T) {
			key := "sdk/" + string(alg)
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-private"), Key: aws.String(key),
				Body: bytes.NewReader(data), ChecksumAlgorithm: alg}); err != nil {
				t.Fatalf("put: %v", err)
			}
			mustHold(ctx, t, c, "acme-private", key, data)
		})
	}
	t.Run("unseekable body", func(t *testing.T) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-private"), Key: aws.String("sdk/stream"),
			Body: io.NopCloser(bytes.NewReader(data)), ContentLength: aws.Int64(int64(len(data)))}); err != nil {
			t.Fatalf("put: %v", err)
		}
		mustHold(ctx, t, c, "acme-private", "sdk/stream", data)
	})
	t.Run("multipart", func(t *testing.T) {
		big := randomBytes(t, 5<<20+1234)
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("acme-private"), Key: aws.String("sdk/mp"),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
		if err != nil {
			t.Fatal(err)
		}
		var parts []types.CompletedPart
		for i, chunk := range [][]byte{big[:5<<20], big[5<<20:]} {
			up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("acme-private"), Key: aws.String("sdk/mp"),
				UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
			if err != nil {
				t.Fatalf("part %d: %v", i+1, err)
			}
			parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("acme-private"), Key: aws.String("sdk/mp"),
			UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			t.Fatalf("complete: %v", err)
		}
		mustHold(ctx, t, c, "acme-private", "sdk/mp", big)
	})
	// The variant under test is the one the SDK really sent.
	for _, v := range seen {
		if !strings.HasPrefix(v, streamingUnsignedTrailer+" x-amz-checksum-") {
			t.Errorf("the SDK sent %q, want an unsigned payload with a trailing checksum", v)
		}
	}
	if len(seen) == 0 {
		t.Error("no upload went through the client")
	}
}

// A body corrupted after the SDK computed its trailing checksum is
// answered 400 BadDigest and never stored, for every algorithm.
func TestAWSChunkedBadTrailingChecksum(t *testing.T) {
	t.Parallel()
	w := sharedHTTPS.get(t)
	ctx := testCtx(t)
	clean := w.s.S3Client(w.customer, "us-east-1")
	// Offset 100 lies in the first chunk's data (its header is ~10 bytes).
	c := tamperedS3(w.s, w.customer, flipAt(100))
	data := randomBytes(t, 200<<10)
	for _, alg := range sdkChecksums {
		t.Run(string(alg), func(t *testing.T) {
			key := "corrupt/" + string(alg)
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-private"), Key: aws.String(key),
				Body: bytes.NewReader(data), ChecksumAlgorithm: alg})
			code, status := apiCode(err)
			if code != "BadDigest" || status != http.StatusBadRequest {
				t.Fatalf("corrupted put: %v, want 400 BadDigest", err)
			}
			if !strings.Contains(err.Error(), string(alg)) {
				t.Errorf("the message should name the algorithm: %v", err)
			}
			mustBeAbsent(ctx, t, clean, "acme-private", key)
		})
	}
	t.Run("multipart part", func(t *testing.T) {
		cr, err := clean.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("acme-private"), Key: aws.String("corrupt/mp")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("acme-private"), Key: aws.String("corrupt/mp"),
			UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(data)})
		if code, _ := apiCode(err); code != "BadDigest" {
			t.Fatalf("corrupted part: %v, want BadDigest", err)
		}
		parts, err := clean.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("acme-private"), Key: aws.String("corrupt/mp"), UploadId: cr.UploadId})
		if err != nil || len(parts.Parts) != 0 {
			t.Fatalf("parts after the refusal: %+v, %v; want none", parts, err)
		}
	})
}

// Over plain http the SDK sends the checksum as a header of a plain body;
// the gate verifies that too.
func TestChecksumHeaderVerified(t *testing.T) {
	t.Parallel()
	w := sharedHTTP.get(t)
	ctx := testCtx(t)
	data := randomBytes(t, 64<<10)
	c := tamperedS3(w.s, w.customer, flipAt(10))
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-private"), Key: aws.String("h"),
		Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if code, status := apiCode(err); code != "BadDigest" || status != http.StatusBadRequest {
		t.Fatalf("corrupted put over http: %v, want 400 BadDigest", err)
	}
	mustBeAbsent(ctx, t, w.s.S3Client(w.customer, "us-east-1"), "acme-private", "h")
	if _, err := w.s.S3Client(w.customer, "us-east-1").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-private"), Key: aws.String("h"),
		Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmSha256}); err != nil {
		t.Fatalf("intact put over http: %v", err)
	}
	mustHold(ctx, t, w.s.S3Client(w.customer, "us-east-1"), "acme-private", "h", data)
}

// sha256Hasher gives minio-go's signer the hasher it takes.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// signedStreamingPut uploads data with minio-go's encoder of signed
// streaming bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or -TRAILER with a
// CRC32 trailer), optionally rewriting the encoded body on its way.
func signedStreamingPut(ctx context.Context, t *testing.T, s *Stack, acct Account, key string, data []byte, trailer bool,
	rewrite func([]byte) []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+"/acme-private/"+key, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if trailer {
		req.Trailer = http.Header{"x-amz-checksum-crc32": {crc32Base64(data)}}
	}
	req = miniosigner.StreamingSignV4(req, acct.AccessKeyID, acct.SecretAccessKey, "", "us-east-1", int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
	encoded, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if rewrite != nil {
		encoded = rewrite(encoded)
	}
	req.Body = io.NopCloser(bytes.NewReader(encoded))
	req.ContentLength = int64(len(encoded))
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Signed streaming bodies: every chunk signature is verified along the
// chain that starts at the request's signature, and so is the trailer's.
func TestAWSChunkedSignedStreaming(t *testing.T) {
	t.Parallel()
	w := sharedHTTPS.get(t)
	ctx := testCtx(t)
	c := w.s.S3Client(w.customer, "us-east-1")
	// minio-go signs 64 KiB chunks: three of them and a short one.
	data := randomBytes(t, 3*64<<10+999)
	replace := func(old, repl string) func([]byte) []byte {
		return func(b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("encoded body has no %q", old)
			}
			return bytes.Replace(b, []byte(old), []byte(repl), 1)
		}
	}
	tests := []struct {
		name    string
		trailer bool
		rewrite func([]byte) []byte
		status  int
		code    string
	}{
		{"signed", false, nil, http.StatusOK, ""},
		{"signed with trailer", true, nil, http.StatusOK, ""},
		// One data byte of the second chunk changed: its signature no
		// longer matches.
		{"signed, chunk data changed", false, func(b []byte) []byte { b[64<<10+200] ^= 1; return b }, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"signed, chunk signature changed", false, replace(";chunk-signature=", ";chunk-signature=0"), http.StatusForbidden, "SignatureDoesNotMatch"},
		{"signed with trailer, trailer signature changed", true, replace("x-amz-trailer-signature:", "x-amz-trailer-signature:0"), http.StatusForbidden, "SignatureDoesNotMatch"},
		{"signed with trailer, chunk data changed", true, func(b []byte) []byte { b[300] ^= 1; return b }, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"signed, final chunk dropped", false, func(b []byte) []byte { return b[:bytes.LastIndex(b, []byte("0;chunk-signature="))] }, http.StatusBadRequest, "IncompleteBody"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "signed/" + string(rune('a'+i))
			status, body := signedStreamingPut(ctx, t, w.s, w.customer, key, data, tt.trailer, tt.rewrite)
			if status != tt.status || !strings.Contains(body, tt.code) {
				t.Fatalf("answer %d %s, want %d %s", status, body, tt.status, tt.code)
			}
			if tt.status == http.StatusOK {
				mustHold(ctx, t, c, "acme-private", key, data)
			} else {
				mustBeAbsent(ctx, t, c, "acme-private", key)
			}
		})
	}
}

// unsignedTrailerPut sends data as STREAMING-UNSIGNED-PAYLOAD-TRAILER,
// encoded here in one chunk with a CRC32 trailer of value sum, and signs
// the headers (x-amz-decoded-content-length = decoded, absent when "").
func unsignedTrailerPut(ctx context.Context, t *testing.T, s *Stack, acct Account, key string, data []byte, sum, decoded string) (int, string) {
	t.Helper()
	var enc bytes.Buffer
	fmt.Fprintf(&enc, "%x\r\n", len(data))
	enc.Write(data)
	enc.WriteString("\r\n0\r\nx-amz-checksum-crc32:" + sum + "\r\n\r\n")
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+"/acme-private/"+key, bytes.NewReader(enc.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	if decoded != "" {
		req.Header.Set("X-Amz-Decoded-Content-Length", decoded)
	}
	creds := aws.Credentials{AccessKeyID: acct.AccessKeyID, SecretAccessKey: acct.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, streamingUnsignedTrailer, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func crc32Base64(b []byte) string {
	sum := crc32.ChecksumIEEE(b)
	return base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
}

// The trailing checksum and x-amz-decoded-content-length of an unsigned
// streaming body, from an encoder independent of the SDK's.
func TestAWSChunkedUnsignedTrailerChecks(t *testing.T) {
	t.Parallel()
	w := sharedHTTPS.get(t)
	ctx := testCtx(t)
	c := w.s.S3Client(w.customer, "us-east-1")
	data := randomBytes(t, 10<<10)
	n := strconv.Itoa(len(data))
	tests := []struct {
		name         string
		sum, decoded string
		status       int
		code         string
	}{
		{"intact", crc32Base64(data), n, http.StatusOK, ""},
		{"wrong checksum", crc32Base64(data[1:]), n, http.StatusBadRequest, "BadDigest"},
		{"checksum not base64", "not-base64!", n, http.StatusBadRequest, "InvalidRequest"},
		{"decoded length missing", crc32Base64(data), "", http.StatusLengthRequired, "MissingContentLength"},
		{"decoded length larger than the body", crc32Base64(data), strconv.Itoa(len(data) + 1), http.StatusBadRequest, "IncompleteBody"},
		{"decoded length smaller than the body", crc32Base64(data), strconv.Itoa(len(data) - 1), http.StatusBadRequest, "IncompleteBody"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "unsigned/" + strconv.Itoa(i)
			status, body := unsignedTrailerPut(ctx, t, w.s, w.customer, key, data, tt.sum, tt.decoded)
			if status != tt.status || !strings.Contains(body, tt.code) {
				t.Fatalf("answer %d %s, want %d %s", status, body, tt.status, tt.code)
			}
			if tt.status == http.StatusOK {
				mustHold(ctx, t, c, "acme-private", key, data)
			} else {
				mustBeAbsent(ctx, t, c, "acme-private", key)
			}
		})
	}
}
