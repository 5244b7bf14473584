package awsclient

import "github.com/aws/aws-sdk-go-v2/aws/retry"

// RetriedCode reports whether the SDK's standard retryer retries an AWS
// error with this code on its own: throttling (retry.DefaultThrottleErrorCodes)
// or a request timeout (retry.DefaultRetryableErrorCodes). Such an error
// says the service could not serve the call now, never that the caller is
// refused or mistaken, so callers classify it as transient. The sets are the
// SDK's, so ferry's notion of "AWS asked us to slow down" follows the SDK's
// as it grows.
func RetriedCode(code string) bool {
	if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
		return true
	}
	_, ok := retry.DefaultRetryableErrorCodes[code]
	return ok
}
