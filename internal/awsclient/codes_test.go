package awsclient

import "testing"

func TestRetriedCode(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]bool{
		"SlowDown":                true, // S3
		"Throttling":              true, // STS
		"RequestLimitExceeded":    true,
		"RequestTimeout":          true,
		"RequestTimeoutException": true,
		"AccessDenied":            false,
		"InternalError":           false, // retried by status, not by code
		"NoSuchKey":               false,
		"":                        false,
	} {
		if got := RetriedCode(code); got != want {
			t.Errorf("RetriedCode(%q) = %v, want %v", code, got, want)
		}
	}
}
