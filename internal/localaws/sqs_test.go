package localaws

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestSQSSendReceiveAndRedrive(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	ctx := testCtx(t)
	fleet := mustAccount(t, s, fleetID)
	if _, err := s.CreateQueue(ctx, Queue{Name: "tasks-dlq"}); err != nil {
		t.Fatal(err)
	}
	qURL, err := s.CreateQueue(ctx, Queue{Name: "tasks", DeadLetter: "tasks-dlq", MaxReceiveCount: 2, VisibilityTimeout: 30e9})
	if err != nil {
		t.Fatal(err)
	}
	c := s.SQSClient(fleet, "us-east-1")
	dlq, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("tasks-dlq")})
	if err != nil {
		t.Fatalf("dlq url: %v", err)
	}
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(qURL), MessageBody: aws.String(`{"task_id":"t-1"}`)}); err != nil {
		t.Fatalf("send: %v", err)
	}
	// Each receive that is not followed by a delete counts towards
	// maxReceiveCount; visibility 0 makes the message receivable again now.
	for i := 1; i <= 2; i++ {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qURL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != `{"task_id":"t-1"}` {
			t.Fatalf("receive %d: %d messages", i, len(out.Messages))
		}
		if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(qURL),
			ReceiptHandle: out.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qURL), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatalf("receive 3: %v", err)
	}
	if len(out.Messages) != 0 {
		t.Fatalf("receive 3 got %d messages; the message should have moved to the DLQ", len(out.Messages))
	}
	dout, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatalf("receive dlq: %v", err)
	}
	if len(dout.Messages) != 1 || aws.ToString(dout.Messages[0].Body) != `{"task_id":"t-1"}` {
		t.Fatalf("dlq holds %d messages, want the task", len(dout.Messages))
	}
	_, err = c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	if code, _ := apiCode(err); code != "AWS.SimpleQueueService.NonExistentQueue" && code != "QueueDoesNotExist" {
		t.Fatalf("missing queue: code %q (%v)", code, err)
	}
}

func TestQueuesAreIsolatedPerStack(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	var urls []string
	var stacks []*Stack
	for range 2 {
		s := startStack(t, Options{})
		u, err := s.CreateQueue(ctx, Queue{Name: "tasks"})
		if err != nil {
			t.Fatal(err)
		}
		stacks, urls = append(stacks, s), append(urls, u)
	}
	a := mustAccount(t, stacks[0], "")
	if _, err := stacks[0].SQSClient(a, "").SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(urls[0]), MessageBody: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	b := mustAccount(t, stacks[1], "")
	out, err := stacks[1].SQSClient(b, "").ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(urls[1])})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 0 {
		t.Fatalf("second stack saw the first stack's message")
	}
}

func postJSON(t *testing.T, method, u, body string) (int, string) {
	t.Helper()
	r, err := http.NewRequestWithContext(testCtx(t), method, u, strings.NewReader(body))
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

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	// A world of its own: faults are stack-wide.
	w := newWorld(t, Options{})
	ctx := testCtx(t)
	q, err := w.s.CreateQueue(ctx, Queue{Name: "events"})
	if err != nil {
		t.Fatal(err)
	}
	fleetS3 := w.s.S3Client(w.fleet, "us-east-1")
	sqsc := w.s.SQSClient(w.fleet, "us-east-1")
	stsc := w.s.STSClient(w.fleet, "us-east-1")
	s3Get := func() error { _, err := get(ctx, fleetS3, "acme-shared", "img/1.jpg"); return err }
	sqsSend := func() error {
		_, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("e")},
			func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
		return err
	}
	stsAssume := func() error {
		_, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(w.roleARN), RoleSessionName: aws.String("fault"),
			ExternalId: aws.String(externalID)}, func(o *sts.Options) { o.RetryMaxAttempts = 1 })
		return err
	}
	tests := []struct {
		name       string
		fault      string
		call       func() error
		op         string
		wantCode   string
		wantStatus int
	}{
		{"s3 slowdown", `{"operation":"s3:GetObject","status":503,"code":"SlowDown","count":1}`, s3Get, "s3:GetObject", "SlowDown", 503},
		{"sqs throttling", `{"operation":"sqs:SendMessage","status":400,"code":"RequestThrottled","count":1}`, sqsSend, "sqs:SendMessage", "RequestThrottled", 400},
		{"sts throttling", `{"operation":"sts:AssumeRole","code":"Throttling","count":1}`, stsAssume, "sts:AssumeRole", "Throttling", 503},
		{"wildcard", `{"operation":"*","status":500,"code":"InternalError","count":1}`, s3Get, "s3:GetObject", "InternalError", 500},
	}
	for _, tt := range tests {
		// Sequential: faults are stack-wide.
		if st, body := postJSON(t, http.MethodPost, w.s.URL+"/_localaws/faults", tt.fault); st != http.StatusCreated {
			t.Fatalf("%s: inject: %d %s", tt.name, st, body)
		}
		before := w.s.Stats()[tt.op]["fault"]
		err := tt.call()
		if code, status := apiCode(err); code != tt.wantCode || status != tt.wantStatus {
			t.Errorf("%s: faulted call = %q/%d (%v), want %q/%d", tt.name, code, status, err, tt.wantCode, tt.wantStatus)
		}
		if got := w.s.Stats()[tt.op]["fault"]; got != before+1 {
			t.Errorf("%s: fault count %d, want %d", tt.name, got, before+1)
		}
		if err := tt.call(); err != nil {
			t.Errorf("%s: count 1 should be used up, next call: %v", tt.name, err)
		}
	}

	// Drop closes the connection; the SDK sees a transport error. Not
	// counted: net/http silently replays an idempotent GET once when a
	// reused connection closes, as it would against AWS.
	if err := w.s.InjectFault(Fault{Operation: "s3:GetObject", Drop: true}); err != nil {
		t.Fatal(err)
	}
	if err := s3Get(); err == nil {
		t.Errorf("dropped call succeeded")
	} else if code, status := apiCode(err); code != "" || status != 0 {
		t.Errorf("dropped call got an answer %q/%d", code, status)
	}
	w.s.ClearFaults()
	// Latency alone lets the call through.
	if err := w.s.InjectFault(Fault{Operation: "s3:GetObject", LatencyMS: 1, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s3Get(); err != nil {
		t.Errorf("latency-only fault failed the call: %v", err)
	}
	// Until cleared.
	if st, _ := postJSON(t, http.MethodPost, w.s.URL+"/_localaws/faults", `{"operation":"s3:GetObject","status":503}`); st != http.StatusCreated {
		t.Fatal("inject")
	}
	for i := range 3 {
		if code, _ := apiCode(s3Get()); code != "ServiceUnavailable" {
			t.Errorf("call %d under a permanent fault: %q", i, code)
		}
	}
	if st, _ := postJSON(t, http.MethodDelete, w.s.URL+"/_localaws/faults", ""); st != http.StatusNoContent {
		t.Fatalf("clear: %d", st)
	}
	if err := s3Get(); err != nil {
		t.Errorf("after clear: %v", err)
	}
	for _, bad := range []string{`{"operation":"s3:GetObject"}`, `{"status":503}`, `{"operation":"x","status":200}`, `{"operation":"x","status":503,"bogus":1}`, `not json`} {
		if st, _ := postJSON(t, http.MethodPost, w.s.URL+"/_localaws/faults", bad); st != http.StatusBadRequest {
			t.Errorf("fault %s accepted with %d", bad, st)
		}
	}
	// Faults apply only after authentication: a bad key still gets its own answer.
	if err := w.s.InjectFault(Fault{Operation: "*", Status: 503, Code: "SlowDown"}); err != nil {
		t.Fatal(err)
	}
	bad := w.fleet
	bad.SecretAccessKey = "x"
	_, err = get(ctx, w.s.S3Client(bad, "us-east-1"), "acme-shared", "img/1.jpg")
	if code, _ := apiCode(err); code != "SignatureDoesNotMatch" {
		t.Errorf("unauthenticated call under fault: %q", code)
	}
	w.s.ClearFaults()
}

func TestStatsEndpoint(t *testing.T) {
	t.Parallel()
	// A world of its own: it counts and resets the stats.
	w := newWorld(t, Options{})
	ctx := testCtx(t)
	c := w.s.S3Client(w.fleet, "us-east-1")
	_, _ = get(ctx, c, "acme-shared", "img/1.jpg")
	_, _ = get(ctx, c, "acme-shared", "img/1.jpg")
	_, _ = get(ctx, c, "acme-private", "img/1.jpg")
	_, _ = get(ctx, c, "acme-eu", "img/1.jpg")
	_, _ = get(ctx, w.s.S3Client(w.customer, "us-east-1"), "acme-shared", "none")
	_, _ = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nonexistent-bucket")}, noRetry)
	st, body := postJSON(t, http.MethodGet, w.s.URL+"/_localaws/stats", "")
	if st != 200 {
		t.Fatalf("stats: %d", st)
	}
	var got map[string]map[string]int64
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("stats body %q: %v", body, err)
	}
	want := map[string]map[string]int64{
		"s3:GetObject":  {"ok": 2, "denied": 1, "redirect": 1, "not_found": 1},
		"s3:HeadBucket": {"not_found": 1},
	}
	for op, outcomes := range want {
		for o, n := range outcomes {
			if got[op][o] != n {
				t.Errorf("stats[%s][%s] = %d, want %d (all: %v)", op, o, got[op][o], n, got)
			}
		}
	}
	if st, _ := postJSON(t, http.MethodPost, w.s.URL+"/_localaws/stats/reset", ""); st != http.StatusNoContent {
		t.Fatalf("reset: %d", st)
	}
	if s := w.s.Stats(); len(s) != 0 {
		t.Fatalf("after reset: %v", s)
	}
}

func TestAdminEndpointsLoopbackOnly(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"10.1.2.3:5555", http.StatusForbidden},
		{"[2001:db8::1]:5555", http.StatusForbidden},
		{"127.0.0.1:5555", http.StatusOK},
		{"[::1]:5555", http.StatusOK},
	} {
		r := httptest.NewRequest(http.MethodGet, "/_localaws/stats", nil)
		r.RemoteAddr = tc.remote
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code != tc.want {
			t.Errorf("from %s: %d, want %d", tc.remote, rec.Code, tc.want)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/_localaws/faults", bytes.NewReader([]byte(`{"operation":"*","status":503}`)))
	r.RemoteAddr = "192.0.2.1:1"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden || len(s.Faults()) != 0 {
		t.Errorf("remote fault injection: %d, faults %v", rec.Code, s.Faults())
	}
}

// SQS returns a FIFO message's group and deduplication ids as system
// attributes when asked; kumo keeps them but does not return them, so the
// gate adds them.
func TestSQSFIFOReturnsGroupID(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	ctx := testCtx(t)
	fleet := mustAccount(t, s, fleetID)
	qURL, err := s.CreateQueue(ctx, Queue{Name: "ordered", FIFO: true})
	if err != nil {
		t.Fatal(err)
	}
	c := s.SQSClient(fleet, "us-east-1")
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(qURL), MessageBody: aws.String("one"),
		MessageGroupId: aws.String("g-1"), MessageDeduplicationId: aws.String("d-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(qURL), Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("two"), MessageGroupId: aws.String("g-2"), MessageDeduplicationId: aws.String("d-2")},
	}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qURL), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameMessageGroupId, sqstypes.MessageSystemAttributeNameMessageDeduplicationId}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{"one": {"g-1", "d-1"}, "two": {"g-2", "d-2"}}
	if len(out.Messages) != 2 {
		t.Fatalf("received %d messages, want 2", len(out.Messages))
	}
	for _, m := range out.Messages {
		w := want[aws.ToString(m.Body)]
		if m.Attributes["MessageGroupId"] != w[0] || m.Attributes["MessageDeduplicationId"] != w[1] {
			t.Errorf("%s: attributes %v, want group %s dedupe %s", aws.ToString(m.Body), m.Attributes, w[0], w[1])
		}
	}
	// Not asked for, not returned.
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(qURL), MessageBody: aws.String("three"),
		MessageGroupId: aws.String("g-3"), MessageDeduplicationId: aws.String("d-3")}); err != nil {
		t.Fatal(err)
	}
	out, err = c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qURL), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Messages {
		if _, ok := m.Attributes["MessageGroupId"]; ok {
			t.Errorf("MessageGroupId returned without being asked for")
		}
	}
}

// A long poll returns a message that becomes visible while it waits: one
// whose delivery delay ends, and one whose visibility timeout ends, as SQS
// does (kumo alone wakes a poll only when a call changes the queue).
func TestSQSLongPollSeesMessagesBecomingVisible(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	ctx := testCtx(t)
	fleet := mustAccount(t, s, fleetID)
	qURL, err := s.CreateQueue(ctx, Queue{Name: "waits"})
	if err != nil {
		t.Fatal(err)
	}
	c := s.SQSClient(fleet, "us-east-1")
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(qURL), MessageBody: aws.String("delayed"), DelaySeconds: 2}); err != nil {
		t.Fatal(err)
	}
	// One poll of 20 s, begun while the message is still delayed.
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qURL), WaitTimeSeconds: 20, VisibilityTimeout: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "delayed" {
		t.Fatalf("the long poll returned %d messages, want the delayed one once its delay ended", len(out.Messages))
	}
	// Not deleted: it is hidden for 2 s, then the next poll must see it.
	out, err = c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qURL), WaitTimeSeconds: 20,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || out.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("the second long poll returned %+v, want the message again with receive count 2", out.Messages)
	}
}
