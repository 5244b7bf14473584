package fetcher

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A worker killed mid-copy (SIGKILL, OOM, node loss) cannot abort its
// multipart upload, and an abort that fails on a reset connection is only
// logged. The chaos campaign found such uploads left open in the internal
// bucket (7 in a 10,000-task run), where they hold storage forever on any
// S3 without a lifecycle rule. The key of a copy is deterministic, so the
// retry that completes the copy knows where to look: after it, no upload
// may remain open under that key.
func TestRetryAbortsUploadOrphanedByCrashedWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	src := e.newCustomer(t, "orphan-src", "", true)
	if _, err := e.reg.RegisterAccount(ctx, "orph", src.acct.ID); err != nil {
		t.Fatal(err)
	}
	body := randBytes(int(minPartSize + 1234)) // two parts: the orphan's one, and more
	e.put(t, src.bucket, "big.bin", body, "application/octet-stream")
	key := destKey("", "orph", "t-orphan", 0, "big.bin")

	// What the killed attempt left behind: an upload with one part.
	up, err := e.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(e.bucket), Key: aws.String(key), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(body[:minPartSize]), ContentLength: aws.Int64(minPartSize)}); err != nil {
		t.Fatal(err)
	}

	// Beyond StreamPutMax, as the killed attempt was: only a multipart
	// attempt leaves an upload behind (S3 keeps nothing of a PUT cut off).
	c := e.copier(t, func(o *Options) { o.PartSize = minPartSize; o.StreamPutMax = minPartSize })
	res, err := c.Copy(ctx, Request{CustomerID: "orph", TaskID: "t-orphan", URI: "s3://orphan-src/big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sum(body) || res.Stored != "s3://"+e.bucket+"/"+key {
		t.Fatalf("copy = %+v, want %s with the source's sha256", res, key)
	}
	out, err := e.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range out.Uploads {
		t.Errorf("upload %s of %s still open after the retry completed the copy", aws.ToString(u.UploadId), aws.ToString(u.Key))
	}
}
