package demo_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryworks/ferry/internal/testenv"
)

// The seeded internal bucket carries the lifecycle rule docs/architecture.md
// asks of a production one, so the devstack is set up as documented.
func TestInternalBucketAbortsIncompleteUploads(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	out, err := w.Stack.S3Client(w.Fleet, "us-east-1").GetBucketLifecycleConfiguration(context.Background(),
		&s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(w.Manifest.InternalBucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Rules {
		if r.AbortIncompleteMultipartUpload != nil && aws.ToInt32(r.AbortIncompleteMultipartUpload.DaysAfterInitiation) > 0 {
			return
		}
	}
	t.Errorf("lifecycle rules of %s = %+v, want one aborting incomplete multipart uploads", w.Manifest.InternalBucket, out.Rules)
}
