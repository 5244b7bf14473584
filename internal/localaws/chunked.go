package localaws

import (
	"net/http"
	"strings"
)

// isAWSChunked reports whether an S3 request's body is aws-chunked: its
// payload hash names a streaming variant or its Content-Encoding says so.
// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
func isAWSChunked(r *http.Request, payloadHash string) bool {
	if strings.HasPrefix(payloadHash, "STREAMING-") {
		return true
	}
	for _, v := range r.Header.Values("Content-Encoding") {
		for enc := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(enc), "aws-chunked") {
				return true
			}
		}
	}
	return false
}
