package localaws

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.d)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.d += d
	c.mu.Unlock()
}

func TestAuthenticationFailures(t *testing.T) {
	t.Parallel()
	w := sharedHTTP.get(t)
	ctx := testCtx(t)
	s := w.s
	wrongSecret := w.fleet
	wrongSecret.SecretAccessKey = "not-the-secret"
	unknown := Account{ID: fleetID, AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: "whatever"}

	type call func(Account) error
	s3Get := func(a Account) error {
		_, err := get(ctx, s.S3Client(a, "us-east-1"), "acme-shared", "img/1.jpg")
		return err
	}
	sqsList := func(a Account) error {
		_, err := s.SQSClient(a, "us-east-1").ListQueues(ctx, &sqs.ListQueuesInput{}, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
		return err
	}
	stsWho := func(a Account) error {
		_, err := s.STSClient(a, "us-east-1").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.Options) { o.RetryMaxAttempts = 1 })
		return err
	}
	tests := []struct {
		name       string
		call       call
		acct       Account
		wantCode   string
		wantStatus int
	}{
		{"s3 wrong secret", s3Get, wrongSecret, "SignatureDoesNotMatch", 403},
		{"s3 unknown key", s3Get, unknown, "InvalidAccessKeyId", 403},
		{"sqs wrong secret", sqsList, wrongSecret, "SignatureDoesNotMatch", 403},
		{"sqs unknown key", sqsList, unknown, "InvalidClientTokenId", 403},
		{"sts wrong secret", stsWho, wrongSecret, "SignatureDoesNotMatch", 403},
		{"sts unknown key", stsWho, unknown, "InvalidClientTokenId", 403},
		{"s3 right key", s3Get, w.fleet, "", 0},
		{"sqs right key", sqsList, w.fleet, "", 0},
		{"sts right key", stsWho, w.fleet, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.call(tt.acct)
			code, status := apiCode(err)
			if tt.wantCode == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if code != tt.wantCode || status != tt.wantStatus {
				t.Fatalf("error = %q/%d (%v), want %q/%d", code, status, err, tt.wantCode, tt.wantStatus)
			}
		})
	}
}

func TestTemporaryCredentials(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	// A world of its own: its clock moves.
	w := newWorld(t, Options{Now: clk.Now})
	ctx := testCtx(t)
	out, err := w.s.STSClient(w.fleet, "us-east-1").AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(w.roleARN), RoleSessionName: aws.String("sess-1"), ExternalId: aws.String(externalID),
		DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		t.Fatalf("assume: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(*c.AccessKeyId, "ASIA") || aws.ToString(c.SessionToken) == "" {
		t.Fatalf("credentials %s / token %t, want ASIA key with a token", *c.AccessKeyId, c.SessionToken != nil)
	}
	if d := time.Until(*c.Expiration); d < 14*time.Minute || d > 16*time.Minute {
		t.Fatalf("expiration in %v, want ~15m", d)
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::"+customerID+":assumed-role/ScaleAI-Integration/sess-1" {
		t.Fatalf("assumed role arn = %s", got)
	}
	client := func(key, secret, token string) *s3.Client {
		cfg := w.s.configFor(credentials.NewStaticCredentialsProvider(key, secret, token), "us-east-1")
		return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	}
	temp := client(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)

	who, err := sts.NewFromConfig(w.s.configFor(credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken), "us-east-1")).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("caller identity: %v", err)
	}
	if aws.ToString(who.Arn) != aws.ToString(out.AssumedRoleUser.Arn) || aws.ToString(who.Account) != customerID ||
		!strings.HasSuffix(aws.ToString(who.UserId), ":sess-1") {
		t.Fatalf("caller identity = %s %s %s", aws.ToString(who.Arn), aws.ToString(who.Account), aws.ToString(who.UserId))
	}

	for _, tc := range []struct {
		name     string
		c        *s3.Client
		wantCode string
	}{
		{"valid session", temp, ""},
		{"missing session token", client(*c.AccessKeyId, *c.SecretAccessKey, ""), "InvalidToken"},
		{"wrong session token", client(*c.AccessKeyId, *c.SecretAccessKey, "FwoGZXIvYXdzEforged"), "InvalidToken"},
		{"long-term key with a token", client(w.fleet.AccessKeyID, w.fleet.SecretAccessKey, *c.SessionToken), "InvalidToken"},
	} {
		_, err := get(ctx, tc.c, "acme-delegated", "img/1.jpg")
		if code, _ := apiCode(err); code != tc.wantCode {
			t.Errorf("%s: code %q (%v), want %q", tc.name, code, err, tc.wantCode)
		}
	}

	clk.Advance(16 * time.Minute)
	_, err = get(ctx, temp, "acme-delegated", "img/1.jpg")
	if code, status := apiCode(err); code != "ExpiredToken" || status != 400 {
		t.Fatalf("after expiry: %q/%d (%v), want ExpiredToken/400", code, status, err)
	}
}

func TestAssumeRoleRules(t *testing.T) {
	t.Parallel()
	// A world of its own: it adds roles and counts the stats.
	w := newWorld(t, Options{})
	ctx := testCtx(t)
	long, err := w.s.PutRole(Role{AccountID: customerID, Name: "long", MaxSessionDuration: 4 * time.Hour,
		TrustPolicy: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::` + fleetID + `:root"]},"Action":"sts:AssumeRole"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	anyone, err := w.s.PutRole(Role{AccountID: customerID, Name: "open",
		TrustPolicy: `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringLike":{"sts:ExternalId":"open-*"}}}}`})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		caller     Account
		role       string
		extID      *string
		session    string
		duration   *int32
		wantCode   string
		wantStatus int
	}{
		{"right external id", w.fleet, w.roleARN, aws.String(externalID), "s1", nil, "", 0},
		{"wrong external id", w.fleet, w.roleARN, aws.String("ext-guess"), "s1", nil, "AccessDenied", 403},
		{"missing external id", w.fleet, w.roleARN, nil, "s1", nil, "AccessDenied", 403},
		{"untrusted account", w.strange, w.roleARN, aws.String(externalID), "s1", nil, "AccessDenied", 403},
		{"no such role", w.fleet, "arn:aws:iam::" + customerID + ":role/Missing", aws.String(externalID), "s1", nil, "AccessDenied", 403},
		{"session name too short", w.fleet, w.roleARN, aws.String(externalID), "s", nil, "ValidationError", 400},
		{"session name bad chars", w.fleet, w.roleARN, aws.String(externalID), "a b", nil, "ValidationError", 400},
		{"duration below 900", w.fleet, w.roleARN, aws.String(externalID), "s1", aws.Int32(899), "ValidationError", 400},
		{"duration above role max", w.fleet, w.roleARN, aws.String(externalID), "s1", aws.Int32(3601), "ValidationError", 400},
		{"duration within raised max", w.fleet, long, nil, "s1", aws.Int32(4 * 3600), "", 0},
		{"wildcard principal with StringLike", w.strange, anyone, aws.String("open-sesame"), "s1", nil, "", 0},
		{"wildcard principal, condition fails", w.strange, anyone, aws.String("closed"), "s1", nil, "AccessDenied", 403},
	}
	// The group returns once its parallel cases are done, so the stats
	// below see all of them.
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				_, err := w.s.STSClient(tt.caller, "us-east-1").AssumeRole(ctx, &sts.AssumeRoleInput{
					RoleArn: aws.String(tt.role), RoleSessionName: aws.String(tt.session), ExternalId: tt.extID, DurationSeconds: tt.duration,
				}, func(o *sts.Options) { o.RetryMaxAttempts = 1 })
				code, status := apiCode(err)
				if code != tt.wantCode || status != tt.wantStatus {
					t.Fatalf("AssumeRole = %q/%d (%v), want %q/%d", code, status, err, tt.wantCode, tt.wantStatus)
				}
				if tt.wantCode == "AccessDenied" && !strings.Contains(err.Error(), "is not authorized to perform: sts:AssumeRole on resource: "+tt.role) {
					t.Fatalf("message %q lacks the AWS wording", err)
				}
				if err != nil && tt.extID != nil && strings.Contains(err.Error(), *tt.extID) && tt.wantCode == "ValidationError" {
					t.Fatalf("error echoes the external id: %v", err)
				}
			})
		}
	})
	st := w.s.Stats()["sts:AssumeRole"]
	if st["ok"] != 3 || st["denied"] != 5 || st["error"] != 4 {
		t.Fatalf("AssumeRole stats = %v, want ok 3, denied 5, error 4", st)
	}
}

func TestPresignedURL(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	// A world of its own: its clock moves.
	w := newWorld(t, Options{Now: clk.Now})
	ctx := testCtx(t)
	ps := s3.NewPresignClient(w.s.S3Client(w.fleet, "us-east-1"))
	req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("acme-shared"), Key: aws.String("img/1.jpg")},
		s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(u string) (int, string) {
		t.Helper()
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tamperedSig := strings.Replace(req.URL, "X-Amz-Signature=", "X-Amz-Signature=0", 1)
	tamperedKey := strings.Replace(req.URL, "/img/1.jpg", "/img/2.jpg", 1)
	u, _ := url.Parse(req.URL)
	q := u.Query()
	q.Set("X-Amz-Expires", "3600")
	u.RawQuery = q.Encode()
	longer := u.String()

	for _, tc := range []struct {
		name       string
		url        string
		wantStatus int
		wantBody   string
	}{
		{"as signed", req.URL, 200, "jpeg-bytes"},
		{"tampered signature", tamperedSig, 403, "SignatureDoesNotMatch"},
		{"tampered key", tamperedKey, 403, "SignatureDoesNotMatch"},
		{"extended expiry", longer, 403, "SignatureDoesNotMatch"},
	} {
		status, body := fetch(tc.url)
		if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.name, status, body, tc.wantStatus, tc.wantBody)
		}
	}
	clk.Advance(11 * time.Minute)
	if status, body := fetch(req.URL); status != 403 || !strings.Contains(body, "Request has expired") {
		t.Errorf("expired URL: %d %q, want 403 Request has expired", status, body)
	}
}

// signMinimal signs r like botocore and rclone do for S3, independently of
// the SDK signer: only host, x-amz-content-sha256 and x-amz-date.
func signMinimal(r *http.Request, key, secret, region, payloadHash string, now time.Time) {
	amzDate := now.UTC().Format("20060102T150405Z")
	day := amzDate[:8]
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var cq []string
	for _, k := range keys {
		for _, v := range q[k] {
			cq = append(cq, url.QueryEscape(k)+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	canonical := strings.Join([]string{r.Method, r.URL.EscapedPath(), strings.Join(cq, "&"),
		"host:" + r.URL.Host, "x-amz-content-sha256:" + payloadHash, "x-amz-date:" + amzDate, "",
		"host;x-amz-content-sha256;x-amz-date", payloadHash}, "\n")
	ch := sha256.Sum256([]byte(canonical))
	scope := day + "/" + region + "/s3/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(ch[:])
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	k := mac(mac(mac(mac([]byte("AWS4"+secret), day), region), "s3"), "aws4_request")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+key+"/"+scope+
		", SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="+hex.EncodeToString(mac(k, sts)))
}

func TestHandSignedRequests(t *testing.T) {
	t.Parallel()
	w := sharedHTTP.get(t)
	ctx := testCtx(t)
	body := "hand-signed body"
	sum := sha256.Sum256([]byte(body))
	do := func(method, path, payloadHash, secret string, body io.Reader, after func(*http.Request)) (int, string) {
		t.Helper()
		r, err := http.NewRequestWithContext(ctx, method, w.s.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		signMinimal(r, w.customer.AccessKeyID, secret, "us-east-1", payloadHash, time.Now())
		// Headers added after signing are not signed, as botocore's
		// User-Agent and Content-Length are not.
		r.Header.Set("User-Agent", "botocore/1.34 rclone/v1.66")
		r.Header.Set("X-Unsigned-Extra", "1")
		if after != nil {
			after(r)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	empty := sha256.Sum256(nil)
	emptyHash := hex.EncodeToString(empty[:])
	tests := []struct {
		name       string
		method     string
		path       string
		hash       string
		secret     string
		body       string
		after      func(*http.Request)
		wantStatus int
		wantBody   string
	}{
		{"put with signed payload", http.MethodPut, "/acme-private/hand/k%20with%20space", hex.EncodeToString(sum[:]), w.customer.SecretAccessKey, body, nil, 200, ""},
		{"get it back", http.MethodGet, "/acme-private/hand/k%20with%20space", emptyHash, w.customer.SecretAccessKey, "", nil, 200, body},
		{"list with query", http.MethodGet, "/acme-private?list-type=2&prefix=hand%2F", emptyHash, w.customer.SecretAccessKey, "", nil, 200, "hand/k with space"},
		{"unsigned payload", http.MethodGet, "/acme-private/img/1.jpg", "UNSIGNED-PAYLOAD", w.customer.SecretAccessKey, "", nil, 200, "jpeg-bytes"},
		{"wrong secret", http.MethodGet, "/acme-private/img/1.jpg", emptyHash, "nope", "", nil, 403, "SignatureDoesNotMatch"},
		{"signed header changed after signing", http.MethodGet, "/acme-private/img/1.jpg", emptyHash, w.customer.SecretAccessKey, "",
			func(r *http.Request) { r.Header.Set("X-Amz-Date", "20200101T000000Z") }, 403, "SignatureDoesNotMatch"},
		{"path changed after signing", http.MethodGet, "/acme-private/img/1.jpg", emptyHash, w.customer.SecretAccessKey, "",
			func(r *http.Request) { r.URL.Path = "/acme-private/img/2.jpg" }, 403, "SignatureDoesNotMatch"},
	}
	for _, tt := range tests {
		var rd io.Reader
		if tt.body != "" {
			rd = strings.NewReader(tt.body)
		}
		status, got := do(tt.method, tt.path, tt.hash, tt.secret, rd, tt.after)
		if status != tt.wantStatus || !strings.Contains(got, tt.wantBody) {
			t.Errorf("%s: %d %q, want %d containing %q", tt.name, status, got, tt.wantStatus, tt.wantBody)
		}
	}
}

func TestUnsignedRequestsRefused(t *testing.T) {
	t.Parallel()
	w := sharedHTTP.get(t)
	ctx := testCtx(t)
	tests := []struct {
		name, method, path, target, ctype, body, want string
	}{
		{"s3 object", http.MethodGet, "/acme-shared/img/1.jpg", "", "", "", "<Code>AccessDenied</Code>"},
		{"sqs", http.MethodPost, "/", "AmazonSQS.ListQueues", "application/x-amz-json-1.0", "{}", "MissingAuthenticationToken"},
		{"sts", http.MethodPost, "/", "", "application/x-www-form-urlencoded", "Action=GetCallerIdentity&Version=2011-06-15", "<Code>MissingAuthenticationToken</Code>"},
	}
	for _, tt := range tests {
		r, _ := http.NewRequestWithContext(ctx, tt.method, w.s.URL+tt.path, strings.NewReader(tt.body))
		if tt.target != "" {
			r.Header.Set("X-Amz-Target", tt.target)
		}
		if tt.ctype != "" {
			r.Header.Set("Content-Type", tt.ctype)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: %d %s, want 403 with %s", tt.name, resp.StatusCode, b, tt.want)
		}
	}
}
