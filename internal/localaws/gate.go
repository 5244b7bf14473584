package localaws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferryworks/ferry/internal/localaws/sigv4"
)

// maxSmallBody bounds the SQS/STS bodies the gate reads to hash: SQS caps a
// batch at 256 KiB of payload, which JSON escaping can at most sextuple.
const maxSmallBody = 2 << 20

// proxyBufferPool recycles the ReverseProxy's copy buffers, so streaming a
// GiB object allocates nothing per request beyond one pooled buffer.
type proxyBufferPool struct{}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (proxyBufferPool) Get() []byte  { return *copyBufPool.Get().(*[]byte) }
func (proxyBufferPool) Put(b []byte) { copyBufPool.Put(&b) }

// gateState travels with a proxied request to ModifyResponse.
type gateState struct {
	op string
	// hideMissing turns kumo's 404 for a missing key into 403 AccessDenied:
	// the caller may not s3:ListBucket, so S3 would not reveal absence.
	hideMissing bool
	// bucketRegion is added as x-amz-bucket-region (HeadBucket answers).
	bucketRegion string
	// onStatus sees kumo's status before the client does (bucket
	// bookkeeping that must follow kumo's outcome).
	onStatus func(status int)
	// onResponse may rewrite kumo's answer before the client sees it.
	onResponse func(resp *http.Response)
	// longPoll is a ReceiveMessage that waits, run as short polls.
	longPoll *longPoll
}

type gateStateKey struct{}

// bodyCheckKey holds the request's *bodyCheck, if any.
type bodyCheckKey struct{}

// ServeHTTP is the gate: admin endpoints, then authentication, faults and
// per-service authorisation before the request reaches kumo.
func (s *Stack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_localaws/") && r.Header.Get("Authorization") == "" {
		s.serveAdmin(w, r)
		return
	}
	si, signed, err := sigv4.Parse(r)
	svc := si.Service
	if svc == "" {
		svc = guessService(r)
	}
	switch svc {
	case svcS3, svcSQS, svcSTS, svcIAM, svcKMS, svcSNS:
	default:
		writeError(w, r, svcS3, apiError{Status: http.StatusBadRequest, Code: "InvalidRequest",
			Message: "localaws serves s3, sqs, sns, sts, iam and kms; the request is signed for " + svc})
		return
	}
	if !signed {
		s.stats.add(svc+":Unsigned", outcomeDenied)
		writeError(w, r, svc, errUnsigned(svc))
		return
	}
	if err != nil {
		s.stats.add(svc+":Malformed", outcomeDenied)
		writeError(w, r, svc, errMalformedAuth(svc, "The authorization header or query is malformed."))
		return
	}

	var payloadHash string
	var body *bytes.Buffer
	if svc == svcS3 {
		payloadHash = r.Header.Get("X-Amz-Content-Sha256")
		if si.Presigned {
			if payloadHash = r.URL.Query().Get("X-Amz-Content-Sha256"); payloadHash == "" {
				payloadHash = unsignedPayload
			}
		} else if payloadHash == "" {
			writeError(w, r, svc, apiError{Status: http.StatusBadRequest, Code: "InvalidRequest",
				Message: "Missing required header for this request: x-amz-content-sha256"})
			return
		}
	} else {
		// Not pooled: the transport may still hold the reader when the
		// answer is back, and these bodies are small.
		body = new(bytes.Buffer)
		if r.ContentLength > 0 && r.ContentLength <= maxSmallBody {
			body.Grow(int(r.ContentLength))
		}
		if _, err := body.ReadFrom(io.LimitReader(r.Body, maxSmallBody+1)); err != nil {
			writeError(w, r, svc, apiError{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "could not read the request body"})
			return
		}
		if body.Len() > maxSmallBody {
			writeError(w, r, svc, apiError{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLarge", Message: "request body too large"})
			return
		}
		sum := sha256.Sum256(body.Bytes())
		payloadHash = hex.EncodeToString(sum[:])
		r.Body = io.NopCloser(bytes.NewReader(body.Bytes()))
		r.ContentLength = int64(body.Len())
	}

	var op string
	var call s3Call
	var form url.Values
	switch svc {
	case svcS3:
		call = classifyS3(r)
		op = call.Op
	case svcSQS:
		op = "sqs:" + sqsAction(r, body.Bytes())
	case svcSTS:
		form = stsForm(r, body.Bytes())
		op = "sts:" + form.Get("Action")
	case svcIAM:
		form = stsForm(r, body.Bytes())
		op = "iam:" + form.Get("Action")
	case svcKMS:
		op = "kms:" + kmsAction(r)
	case svcSNS:
		form = stsForm(r, body.Bytes()) // the same query protocol
		op = "sns:" + form.Get("Action")
	}

	key, aerr := s.authenticate(r.Context(), r, si, payloadHash)
	if aerr != nil {
		s.stats.add(op, outcomeDenied)
		s.log.Debug().Str("op", op).Str("code", aerr.Code).Msg("authentication refused")
		writeError(w, r, svc, *aerr)
		return
	}
	defer s.inflight.enter(op)()
	answered, fault := s.applyFault(w, r, svc, op)
	if answered {
		return
	}
	if svc == svcS3 {
		bc, berr := prepareBody(r, si, key, payloadHash)
		if berr == nil && bc != nil && bc.want == 0 {
			berr = bc.verifyEmpty() // nothing reads an empty body on its way to kumo
		}
		if berr != nil {
			s.stats.add(op, outcomeError)
			s.log.Debug().Str("op", op).Str("code", berr.Code).Msg("request body refused")
			writeError(w, r, svc, *berr)
			return
		}
		if bc != nil {
			r = r.WithContext(context.WithValue(r.Context(), bodyCheckKey{}, bc))
		}
		if op == "s3:PutObject" {
			if berr := spoolBody(r); berr != nil {
				s.stats.add(op, outcomeError)
				s.log.Debug().Str("op", op).Str("code", berr.Code).Msg("request body refused")
				writeError(w, r, svc, *berr)
				return
			}
		}
	}
	switch svc {
	case svcSTS:
		s.serveSTS(w, r, op, key, form, fault)
	case svcIAM:
		s.serveIAM(w, r, op, key, form)
	case svcKMS:
		s.serveKMS(w, r, op, key, si, body.Bytes())
	case svcSNS:
		s.serveSNS(w, r, op, key, form)
	case svcSQS:
		st := &gateState{op: op, onResponse: s.fifoHook(op, body.Bytes())}
		if op == "sqs:ReceiveMessage" {
			st.longPoll = parseLongPoll(body.Bytes())
		}
		s.forward(w, r, st)
	default:
		s.serveS3(w, r, key, si, call)
	}
}

// guessService names the service of a request without a credential scope,
// so that even a refusal speaks the right wire format.
func guessService(r *http.Request) string {
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.") {
		return svcSQS
	}
	if r.Method == http.MethodPost && r.URL.Path == "/" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return svcSTS
	}
	return svcS3
}

func sqsAction(r *http.Request, body []byte) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		if _, a, ok := strings.Cut(t, "."); ok {
			return a
		}
	}
	// The query protocol of older SDKs.
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
		return v.Get("Action")
	}
	return "Unknown"
}

func stsForm(r *http.Request, body []byte) url.Values {
	if r.Method == http.MethodGet {
		return r.URL.Query()
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return url.Values{}
	}
	return v
}

// maxPresignExpiry is the longest X-Amz-Expires S3 accepts on a presigned
// request.
const maxPresignExpiry = 7 * 24 * time.Hour

// authenticate finds the key, checks its session token and expiry, and
// verifies the signature; a non-nil apiError is the refusal to send.
func (s *Stack) authenticate(ctx context.Context, r *http.Request, si sigv4.Info, payloadHash string) (*accessKey, *apiError) {
	svc := si.Service
	s.mu.RLock()
	k := s.keys[si.AccessKey]
	s.mu.RUnlock()
	if k == nil {
		e := errUnknownKey(svc)
		return nil, &e
	}
	now := s.opts.Now()
	if k.sessionToken != "" {
		if si.SecurityToken != k.sessionToken {
			e := errBadToken(svc)
			return nil, &e
		}
		if !now.Before(k.expires) {
			e := errExpired(svc)
			return nil, &e
		}
	} else if si.SecurityToken != "" {
		e := errBadToken(svc)
		return nil, &e
	}
	if !sigv4.Verify(ctx, r, si, k.secret, payloadHash) {
		e := errBadSignature()
		return nil, &e
	}
	if si.Presigned {
		if si.Expires > maxPresignExpiry {
			e := apiError{Status: http.StatusBadRequest, Code: "AuthorizationQueryParametersError",
				Message: "X-Amz-Expires must be less than a week (in seconds) that is 604800"}
			return nil, &e
		}
		if now.After(si.AmzDate.Add(si.Expires)) {
			e := apiError{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Request has expired"}
			return nil, &e
		}
	}
	return k, nil
}

// forward streams the request to kumo and the answer back.
func (s *Stack) forward(w http.ResponseWriter, r *http.Request, st *gateState) {
	r = r.WithContext(context.WithValue(r.Context(), gateStateKey{}, st))
	s.proxy.ServeHTTP(w, r)
}

func (s *Stack) modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(gateStateKey{}).(*gateState)
	if st == nil {
		return nil
	}
	if st.hideMissing && resp.StatusCode == http.StatusNotFound {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		replaceWithError(resp, apiError{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Access Denied"})
	}
	if st.bucketRegion != "" {
		resp.Header.Set("x-amz-bucket-region", st.bucketRegion)
	}
	if st.onStatus != nil {
		st.onStatus(resp.StatusCode)
	}
	if st.onResponse != nil {
		st.onResponse(resp)
	}
	s.stats.add(st.op, outcomeForStatus(resp.StatusCode))
	return nil
}

func (s *Stack) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st, _ := r.Context().Value(gateStateKey{}).(*gateState)
	op := "unknown"
	if st != nil {
		op = st.op
	}
	s.stats.add(op, outcomeError)
	if bc, _ := r.Context().Value(bodyCheckKey{}).(*bodyCheck); bc != nil {
		if e := bc.Failure(); e != nil {
			// The body failed a check before kumo received it whole.
			s.log.Debug().Str("op", op).Str("code", e.Code).Msg("request body refused")
			writeError(w, r, svcS3, *e)
			return
		}
	}
	if errors.Is(err, context.Canceled) {
		return // the client went away; nobody reads an answer
	}
	s.log.Warn().Err(err).Str("op", op).Msg("kumo request failed")
	svc := strings.SplitN(op, ":", 2)[0]
	writeError(w, r, svc, apiError{Status: http.StatusBadGateway, Code: "InternalError", Message: "localaws could not reach kumo"})
}

// serveAdmin answers /_localaws/ endpoints, to loopback clients only.
func (s *Stack) serveAdmin(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		http.Error(w, "admin endpoints answer loopback clients only", http.StatusForbidden)
		return
	}
	writeJSON := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/_localaws/faults":
		switch r.Method {
		case http.MethodPost:
			var f Fault
			dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
				return
			}
			if err := s.InjectFault(f); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
			writeJSON(f)
		case http.MethodDelete:
			s.ClearFaults()
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			writeJSON(s.Faults())
		default:
			http.Error(w, "use GET, POST or DELETE", http.StatusMethodNotAllowed)
		}
	case "/_localaws/stats":
		if r.Method != http.MethodGet {
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		writeJSON(s.Stats())
	case "/_localaws/stats/reset":
		if r.Method != http.MethodPost {
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	case "/_localaws/health":
		writeJSON(map[string]string{"status": "ok"})
	default:
		http.NotFound(w, r)
	}
}
