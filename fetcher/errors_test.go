package fetcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferryworks/ferry/credcache"
)

// apiErr builds the error shape the SDK returns for an S3 error answer.
func apiErr(status int, code, msg string) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}},
			Err:      &smithy.GenericAPIError{Code: code, Message: msg},
		},
	}}
}

func TestClassifyS3(t *testing.T) {
	t.Parallel()
	h := hintInput{bucket: "acme-data", role: "ScaleAI-Integration", account: "111122223333"}
	tests := []struct {
		name     string
		err      error
		mode     Mode
		owner    string
		kind     Kind
		hintHas  string
		wantCode string
	}{
		{"denied delegated", apiErr(403, "AccessDenied", "Access Denied"), ModeDelegated, "", KindAccessDenied, "grant s3:GetObject on arn:aws:s3:::acme-data/* to the role ScaleAI-Integration", "AccessDenied"},
		{"denied cross", apiErr(403, "AccessDenied", "Access Denied"), ModeCrossAccount, "", KindAccessDenied, "add the fleet account to the bucket policy", "AccessDenied"},
		{"denied owner", apiErr(403, "AccessDenied", "Access Denied"), ModeCrossAccount, "111122223333", KindAccessDenied, "does not belong to the AWS account registered", "AccessDenied"},
		{"all access disabled", apiErr(403, "AllAccessDisabled", "x"), ModeCrossAccount, "", KindAccessDenied, "disabled", "AllAccessDisabled"},
		{"bad key id", apiErr(403, "InvalidAccessKeyId", "x"), ModeDelegated, "", KindAccessDenied, "", "InvalidAccessKeyId"},
		{"head 403 no body", apiErr(403, "", ""), ModeCrossAccount, "", KindAccessDenied, "", "Forbidden"},
		{"no such key", apiErr(404, "NoSuchKey", "x"), ModeDelegated, "", KindNotFound, "check the key", "NoSuchKey"},
		{"no such bucket", apiErr(404, "NoSuchBucket", "x"), ModeDelegated, "", KindNotFound, "bucket acme-data does not exist", "NoSuchBucket"},
		{"head 404", apiErr(404, "", ""), ModeDelegated, "", KindNotFound, "", "Not Found"},
		{"slow down", apiErr(503, "SlowDown", "x"), ModeDelegated, "", KindTransient, "", "SlowDown"},
		{"internal", apiErr(500, "InternalError", "x"), ModeDelegated, "", KindTransient, "", "InternalError"},
		{"throttle 400", apiErr(400, "Throttling", "x"), ModeDelegated, "", KindTransient, "", "Throttling"},
		{"request timeout 400", apiErr(400, "RequestTimeout", "x"), ModeDelegated, "", KindTransient, "", "RequestTimeout"},
		{"clock skew 403", apiErr(403, "RequestTimeTooSkewed", "x"), ModeDelegated, "", KindTransient, "", "RequestTimeTooSkewed"},
		{"internal error in a 200", apiErr(200, "InternalError", "x"), ModeDelegated, "", KindTransient, "", "InternalError"},
		{"expired after retry", apiErr(400, "ExpiredToken", "x"), ModeDelegated, "", KindTransient, "", "ExpiredToken"},
		{"bad request", apiErr(400, "InvalidArgument", "x"), ModeDelegated, "", KindInvalid, "", "InvalidArgument"},
		{"canceled", fmt.Errorf("op: %w", context.Canceled), ModeDelegated, "", KindTransient, "", ""},
		{"conn reset", errors.New("read tcp: connection reset by peer"), ModeDelegated, "", KindTransient, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := classifyS3(tt.err, StageGetObject, tt.mode, "s3://acme-data/k", h, tt.owner)
			if e.Kind != tt.kind {
				t.Fatalf("kind = %s, want %s", e.Kind, tt.kind)
			}
			if e.Code != tt.wantCode {
				t.Fatalf("code = %q, want %q", e.Code, tt.wantCode)
			}
			if !strings.Contains(e.Hint, tt.hintHas) {
				t.Fatalf("hint = %q, want it to contain %q", e.Hint, tt.hintHas)
			}
			if e.Retryable() != (tt.kind == KindTransient) {
				t.Fatalf("Retryable = %v", e.Retryable())
			}
			if !errors.Is(e, &Error{Kind: tt.kind}) || errors.Is(e, &Error{Kind: "other"}) {
				t.Fatal("errors.Is by kind does not work")
			}
			if !errors.Is(e, tt.err) {
				t.Fatal("does not unwrap to the SDK error")
			}
		})
	}
}

func TestClassifyAssume(t *testing.T) {
	t.Parallel()
	h := hintInput{bucket: "b-b", role: "ScaleAI-Integration", account: "111122223333"}
	tests := []struct {
		name    string
		err     error
		kind    Kind
		hintHas string
	}{
		{"external id", &credcache.AssumeRoleError{Code: "AccessDenied", Message: "trust policy does not allow this external ID", Denied: true}, KindAccessDenied, "sts:ExternalId condition to the external ID ferry gave you"},
		{"missing role", &credcache.AssumeRoleError{Code: "AccessDenied", Message: "role arn:aws:iam::111122223333:role/ScaleAI-Integration does not exist", Denied: true}, KindAccessDenied, "create the role ScaleAI-Integration in account 111122223333"},
		{"generic denial", &credcache.AssumeRoleError{Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole", Denied: true}, KindAccessDenied, "set the sts:ExternalId condition"},
		{"sts down", &credcache.AssumeRoleError{Code: "InternalFailure", Denied: false}, KindTransient, ""},
		{"wrapped", fmt.Errorf("retrieve: %w", &credcache.AssumeRoleError{Code: "AccessDenied", Denied: true, Cached: true}), KindAccessDenied, "ScaleAI-Integration"},
		{"other", errors.New("dial tcp: refused"), KindTransient, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := classifyAssume(tt.err, ModeDelegated, "s3://b-b/k", h)
			if e.Kind != tt.kind || e.Stage != StageAssumeRole || e.Mode != ModeDelegated {
				t.Fatalf("got %s/%s/%s", e.Kind, e.Stage, e.Mode)
			}
			if !strings.Contains(e.Hint, tt.hintHas) {
				t.Fatalf("hint %q lacks %q", e.Hint, tt.hintHas)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Policy{"": PolicyAllow, "allow": PolicyAllow, "require-owner": PolicyRequireOwner, "require-verified": PolicyRequireVerified, "deny": PolicyDeny} {
		got, err := ParsePolicy(in)
		if err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParsePolicy("Allow"); err == nil {
		t.Error("ParsePolicy accepted a typo")
	}
}

func TestMetaEncode(t *testing.T) {
	t.Parallel()
	got := metaEncode("s3://b/ファ 100%\n")
	for _, r := range got {
		if r < 0x20 || r > 0x7e {
			t.Fatalf("metaEncode left %q in %q", r, got)
		}
	}
	if got != "s3://b/%E3%83%95%E3%82%A1 100%25%0A" {
		t.Fatalf("metaEncode = %q", got)
	}
}
