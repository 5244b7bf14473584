package localaws

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestObjectChecksumKept checks that the full-object checksum a PutObject
// carried, as a trailer of a streamed body or as a header, is answered as S3
// answers it: on the PutObject, and on HeadObject and full GetObject with
// checksum mode enabled; not on a ranged GET; and replaced by the next
// write of the key.
func TestObjectChecksumKept(t *testing.T) {
	t.Parallel()
	w := sharedHTTPS.get(t)
	ctx := testCtx(t)
	c := w.s.S3Client(w.customer, "us-east-1")
	data := randomBytes(t, 2<<20+3)
	digest := sha256.Sum256(data)
	want := base64.StdEncoding.EncodeToString(digest[:])
	head := func(key string) *s3.HeadObjectOutput {
		t.Helper()
		out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("acme-private"), Key: aws.String(key),
			ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		return out
	}

	// Unseekable over https: aws-chunked with a trailing SHA-256.
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-private"), Key: aws.String("streamed"),
		Body: io.NopCloser(bytes.NewReader(data)), ContentLength: aws.Int64(int64(len(data))),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if err != nil {
		t.Fatalf("streamed put: %v", err)
	}
	if got := aws.ToString(put.ChecksumSHA256); got != want {
		t.Fatalf("PutObject answered checksum %q, want %q", got, want)
	}
	if got := aws.ToString(head("streamed").ChecksumSHA256); got != want {
		t.Fatalf("HeadObject answered checksum %q, want %q", got, want)
	}
	plain, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("acme-private"), Key: aws.String("streamed")})
	if err != nil || plain.ChecksumSHA256 != nil {
		t.Fatalf("HeadObject without checksum mode: %v, checksum %v", err, aws.ToString(plain.ChecksumSHA256))
	}
	ranged, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("acme-private"), Key: aws.String("streamed"),
		Range: aws.String("bytes=0-99"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	ranged.Body.Close()
	if ranged.ChecksumSHA256 != nil {
		t.Fatalf("ranged GetObject answered the object's checksum %q", aws.ToString(ranged.ChecksumSHA256))
	}

	// A header checksum is kept the same way.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-private"), Key: aws.String("header"),
		Body: bytes.NewReader(data), ChecksumSHA256: aws.String(want)}); err != nil {
		t.Fatalf("put with header: %v", err)
	}
	if got := aws.ToString(head("header").ChecksumSHA256); got != want {
		t.Fatalf("HeadObject answered checksum %q, want %q", got, want)
	}

	// Overwritten with another algorithm: the SHA-256 is gone.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-private"), Key: aws.String("streamed"),
		Body: bytes.NewReader(data[:100]), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}); err != nil {
		t.Fatal(err)
	}
	if h := head("streamed"); h.ChecksumSHA256 != nil || h.ChecksumCRC32 == nil {
		t.Fatalf("after an overwrite: sha256 %q crc32 %q", aws.ToString(h.ChecksumSHA256), aws.ToString(h.ChecksumCRC32))
	}
}
