package localaws

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

// service names as they appear in the SigV4 credential scope.
const (
	svcS3  = "s3"
	svcSQS = "sqs"
	svcSTS = "sts"
	svcIAM = "iam"
	svcKMS = "kms"
	svcSNS = "sns"
)

// apiError is an answer the gate gives itself, written in the wire format of
// the service the request was for.
type apiError struct {
	Status  int
	Code    string
	Message string
	Header  map[string]string
	// XML holds extra elements of an S3 error body (escaped already),
	// e.g. <Region> or <Endpoint>.
	XML string
}

func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeError answers e in the format of service svc: S3 REST XML, STS query
// XML, SQS JSON 1.0 with the query-compatible error header (the Go SDK takes
// the code from x-amzn-query-error).
func writeError(w http.ResponseWriter, r *http.Request, svc string, e apiError) {
	id := requestID()
	h := w.Header()
	for k, v := range e.Header {
		h.Set(k, v)
	}
	switch svc {
	case svcSQS:
		h.Set("x-amzn-RequestId", id)
		h.Set("Content-Type", "application/x-amz-json-1.0")
		fault := "Sender"
		if e.Status >= 500 {
			fault = "Receiver"
		}
		h.Set("x-amzn-query-error", e.Code+";"+fault)
		body, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(e.Status)
		_, _ = w.Write(body)
	case svcKMS:
		// KMS speaks JSON 1.1; its errors carry the code in __type.
		h.Set("x-amzn-RequestId", id)
		h.Set("Content-Type", "application/x-amz-json-1.1")
		body, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(e.Status)
		_, _ = w.Write(body)
	case svcSTS, svcIAM, svcSNS: // the query protocol's XML errors
		typ := "Sender"
		if e.Status >= 500 {
			typ = "Receiver"
		}
		ns := stsNS
		if svc == svcIAM {
			ns = iamNS
		}
		body := `<ErrorResponse xmlns="` + ns + `"><Error><Type>` + typ +
			`</Type><Code>` + xmlEscape(e.Code) + `</Code><Message>` + xmlEscape(e.Message) +
			`</Message></Error><RequestId>` + id + `</RequestId></ErrorResponse>`
		h.Set("x-amzn-RequestId", id)
		h.Set("Content-Type", "text/xml")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(e.Status)
		_, _ = w.Write([]byte(body))
	default:
		h.Set("x-amz-request-id", id)
		h.Set("x-amz-id-2", id)
		if r.Method == http.MethodHead {
			// S3 answers HEAD errors with the status only.
			w.WriteHeader(e.Status)
			return
		}
		body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>" + xmlEscape(e.Code) +
			`</Code><Message>` + xmlEscape(e.Message) + `</Message>` + e.XML + `<RequestId>` + id +
			`</RequestId><HostId>` + id + `</HostId></Error>`
		h.Set("Content-Type", "application/xml")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(e.Status)
		_, _ = w.Write([]byte(body))
	}
}

// errUnknownKey is the service's answer to an access key it never issued.
func errUnknownKey(svc string) apiError {
	switch svc {
	case svcS3:
		return apiError{http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", nil, ""}
	case svcKMS:
		return apiError{http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.", nil, ""}
	}
	return apiError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.", nil, ""}
}

func errBadSignature() apiError {
	return apiError{http.StatusForbidden, "SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided. Check your key and signing method.", nil, ""}
}

func errExpired(svc string) apiError {
	st := http.StatusForbidden
	if svc == svcS3 {
		st = http.StatusBadRequest
	}
	return apiError{st, "ExpiredToken", "The provided token has expired.", nil, ""}
}

func errBadToken(svc string) apiError {
	if svc == svcS3 {
		return apiError{http.StatusForbidden, "InvalidToken", "The provided token is malformed or otherwise invalid.", nil, ""}
	}
	return apiError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.", nil, ""}
}

func errUnsigned(svc string) apiError {
	if svc == svcS3 {
		return apiError{http.StatusForbidden, "AccessDenied", "Access Denied", nil, ""}
	}
	return apiError{http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token", nil, ""}
}

func errMalformedAuth(svc, msg string) apiError {
	if svc == svcS3 {
		return apiError{http.StatusBadRequest, "AuthorizationHeaderMalformed", msg, nil, ""}
	}
	return apiError{http.StatusBadRequest, "IncompleteSignature", msg, nil, ""}
}
