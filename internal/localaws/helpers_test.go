package localaws

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// startStack starts a stack for one test and stops it at cleanup.
func startStack(t testing.TB, opts Options) *Stack {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func mustAccount(t testing.TB, s *Stack, id string) Account {
	t.Helper()
	a, err := s.NewAccount(id)
	if err != nil {
		t.Fatalf("new account: %v", err)
	}
	return a
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiCode returns the AWS error code of err ("" when err is nil or not an
// API error) and the HTTP status of the response, 0 when there was none.
func apiCode(err error) (string, int) {
	if err == nil {
		return "", 0
	}
	status := 0
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), status
	}
	return "", status
}

func responseHeader(err error) http.Header {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header
	}
	return nil
}

// noRetry keeps error tests to one attempt each.
func noRetry(o *s3.Options) { o.RetryMaxAttempts = 1 }

// assumedS3 assumes roleARN as caller and returns a path-style S3 client
// using the temporary credentials.
func assumedS3(t testing.TB, s *Stack, caller Account, roleARN, externalID, region string) (*s3.Client, error) {
	t.Helper()
	out, err := s.STSClient(caller, region).AssumeRole(testCtx(t), &sts.AssumeRoleInput{
		RoleArn:         aws.String(roleARN),
		RoleSessionName: aws.String("ferry-test"),
		ExternalId:      aws.String(externalID),
	})
	if err != nil {
		return nil, err
	}
	c := out.Credentials
	cfg := s.configFor(credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken), region)
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true; o.RetryMaxAttempts = 1 }), nil
}
