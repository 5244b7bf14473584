package credcache

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestValidators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fn    func(string) error
		value string
		ok    bool
	}{
		{"customer simple", ValidCustomerID, "acme", true},
		{"customer dots dashes underscores", ValidCustomerID, "Acme_Corp-2.eu", true},
		{"customer 128", ValidCustomerID, strings.Repeat("a", 128), true},
		{"customer empty", ValidCustomerID, "", false},
		{"customer 129", ValidCustomerID, strings.Repeat("a", 129), false},
		{"customer brace (hash tag)", ValidCustomerID, "a}b", false},
		{"customer glob", ValidCustomerID, "a*", false},
		{"customer colon", ValidCustomerID, "a:b", false},
		{"customer space", ValidCustomerID, "a b", false},
		{"customer unicode", ValidCustomerID, "acmé", false},
		{"account 12 digits", ValidAccountID, "123456789012", true},
		{"account 11 digits", ValidAccountID, "12345678901", false},
		{"account 13 digits", ValidAccountID, "1234567890123", false},
		{"account letters", ValidAccountID, "12345678901a", false},
		{"account empty", ValidAccountID, "", false},
		{"external id base64url", ValidExternalID, "Zm9vYmFyYmF6cXV4LV9h", true},
		{"external id sts charset", ValidExternalID, "a+b=c,d.e@f:g/h-i_j", true},
		{"external id 2 chars", ValidExternalID, "ab", true},
		{"external id 1224 chars", ValidExternalID, strings.Repeat("x", 1224), true},
		{"external id 1 char", ValidExternalID, "a", false},
		{"external id 1225 chars", ValidExternalID, strings.Repeat("x", 1225), false},
		{"external id space", ValidExternalID, "ab cd", false},
		{"external id quote", ValidExternalID, `ab"cd`, false},
		{"role default", ValidRoleName, DefaultRoleName, true},
		{"role 65 chars", ValidRoleName, strings.Repeat("r", 65), false},
		{"role slash", ValidRoleName, "a/b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.fn(tt.value)
			if tt.ok != (err == nil) {
				t.Fatalf("validate(%q) = %v, want ok=%v", tt.value, err, tt.ok)
			}
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %T %v, want *ValidationError matching ErrInvalid", err, err)
				}
			}
		})
	}
}

func TestValidExternalIDNeverEchoed(t *testing.T) {
	t.Parallel()
	secret := "secret value with spaces"
	if err := ValidExternalID(secret); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v: must fail without echoing the value", err)
	}
}

func TestSessionName(t *testing.T) {
	t.Parallel()
	tests := []struct{ customer, want string }{
		{"acme", "ferry-acme"},
		{"a.b_c-d", "ferry-a.b_c-d"},
		{"a/b c", "ferry-a-b-c"},
		{strings.Repeat("x", 100), "ferry-" + strings.Repeat("x", 58)},
	}
	for _, tt := range tests {
		got := SessionName(tt.customer)
		if got != tt.want {
			t.Errorf("SessionName(%q) = %q, want %q", tt.customer, got, tt.want)
		}
		if len(got) > 64 {
			t.Errorf("SessionName(%q) is %d chars", tt.customer, len(got))
		}
	}
}

func TestRoleARN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Integration
		want string
	}{
		{Integration{AccountID: "123456789012"}, "arn:aws:iam::123456789012:role/ScaleAI-Integration"},
		{Integration{AccountID: "123456789012", RoleName: "Custom"}, "arn:aws:iam::123456789012:role/Custom"},
		{Integration{RoleName: "Custom"}, ""},
	}
	for _, tt := range tests {
		if got := tt.in.RoleARN(); got != tt.want {
			t.Errorf("RoleARN(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// classify decides which STS errors become cached denials: a wrong call here
// either lets a broken customer hammer STS or turns a throttle into an
// access_denied event.
func TestClassify(t *testing.T) {
	t.Parallel()
	apiErr := func(status int, code string) error {
		return &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: "m"},
		}
	}
	tests := []struct {
		name   string
		err    error
		denied bool
		code   string
	}{
		{"access denied", apiErr(403, "AccessDenied"), true, "AccessDenied"},
		{"role missing / duration too long", apiErr(400, "ValidationError"), true, "ValidationError"},
		{"region disabled", apiErr(403, "RegionDisabledException"), true, "RegionDisabledException"},
		{"throttling 400", apiErr(400, "Throttling"), false, "Throttling"},
		{"throttling exception", apiErr(400, "ThrottlingException"), false, "ThrottlingException"},
		{"sdk throttle code", apiErr(400, "RequestThrottledException"), false, "RequestThrottledException"},
		{"request timeout", apiErr(400, "RequestTimeout"), false, "RequestTimeout"},
		{"idp unreachable", apiErr(400, "IDPCommunicationError"), false, "IDPCommunicationError"},
		{"fleet key invalid", apiErr(403, "InvalidClientTokenId"), false, "InvalidClientTokenId"},
		{"fleet signature", apiErr(403, "SignatureDoesNotMatch"), false, "SignatureDoesNotMatch"},
		{"fleet token expired", apiErr(403, "ExpiredToken"), false, "ExpiredToken"},
		{"5xx", apiErr(500, "InternalFailure"), false, "InternalFailure"},
		{"503", apiErr(503, "ServiceUnavailable"), false, "ServiceUnavailable"},
		{"network", errors.New("dial tcp: connection refused"), false, ""},
	}
	tg := &target{customerID: "acme", roleARN: "arn:aws:iam::123456789012:role/R"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ae := classify(tt.err, tg)
			if ae.Denied != tt.denied || ae.Code != tt.code {
				t.Fatalf("classify = Denied %v Code %q, want %v %q", ae.Denied, ae.Code, tt.denied, tt.code)
			}
			if !errors.Is(ae, tt.err) {
				t.Fatal("AssumeRoleError does not unwrap to the SDK error")
			}
			if !strings.Contains(ae.Error(), "acme") || !strings.Contains(ae.Error(), tg.roleARN) {
				t.Fatalf("Error() = %q lacks customer or role", ae.Error())
			}
		})
	}
}

func TestAssumeRoleErrorMessage(t *testing.T) {
	t.Parallel()
	e := &AssumeRoleError{CustomerID: "acme", RoleARN: "arn:aws:iam::1:role/R", Code: "AccessDenied", Message: "no", Denied: true, Cached: true}
	want := "credcache: assume role arn:aws:iam::1:role/R for customer acme: AccessDenied: no (cached refusal)"
	if e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
}
