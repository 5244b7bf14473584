package fetcher

import (
	"errors"
	"testing"

	"github.com/ferryworks/ferry/fetcher/location"
)

// TestParseURIInvalid checks the one place a rejected URI becomes a copy
// failure: whatever location refuses is an *Error of KindInvalid at
// StageParse with code InvalidURI, location's message and URI and a hint, and
// is never retried.
func TestParseURIInvalid(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "ftp://example.com/x", "s3://acme-data", "s3://Acme-Data/k", "s3://acme/\xff",
		"https://user:pw@example.com/x?X-Amz-Signature=s", "https://s3.amazonaws.com/"} {
		_, lerr := location.Parse(in)
		var le *location.Error
		if !errors.As(lerr, &le) {
			t.Fatalf("location.Parse(%q) err = %v, want *location.Error", in, lerr)
		}
		_, err := ParseURI(in)
		var fe *Error
		if !errors.As(err, &fe) || fe.Kind != KindInvalid || fe.Stage != StageParse || !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseURI(%q) err = %v, want *Error invalid/parse", in, err)
		}
		if fe.Code != "InvalidURI" || fe.Message != le.Message || fe.URI != le.URI || fe.Hint == "" {
			t.Errorf("ParseURI(%q) = %+v, want code InvalidURI, message %q, URI %q and a hint", in, fe, le.Message, le.URI)
		}
		if fe.Retryable() {
			t.Errorf("ParseURI(%q): an invalid URI must not be retryable", in)
		}
	}
	loc, err := ParseURI("https://acme-data.s3.us-west-2.amazonaws.com/k")
	if err != nil || loc.Scheme != location.SchemeS3 || loc.Bucket != "acme-data" || loc.Key != "k" || loc.Region != "us-west-2" {
		t.Errorf("ParseURI of a valid URI = %+v, %v", loc, err)
	}
}
