package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ferryworks/ferry/deadletter"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
)

// builtFerry is this package's binary, built once per test run with the
// Makefile's stamp: the tests run the real binary as on-call would, flags,
// exit codes and all.
var builtFerry = testenv.Binary{Pkg: "./cmd/ferry", LDFlags: stampedLDFlags}

func TestMain(m *testing.M) {
	code := testenv.Run(m)
	builtFerry.Remove()
	os.Exit(code)
}

// worldEnv is the environment `make run` would export for w, and nothing
// from the caller's shell but PATH and HOME.
func worldEnv(w *testenv.World, extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, v := range w.Env {
		env = append(env, v.Name+"="+v.Value)
	}
	env = append(env, "FERRY_REDIS_PREFIX="+w.Prefix, "FERRY_METRICS_ADDR=off", "FERRY_LOG_LEVEL=warn")
	return append(env, extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

func ferry(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, builtFerry.Path(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ferry %v: %v", args, err)
	}
	return r
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

func jsonLines[T any](t *testing.T, s string) []T {
	t.Helper()
	var out []T
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not JSON: %v: %s", err, line)
		}
		out = append(out, v)
	}
	return out
}

// jsonDocument decodes a command's single answer: one JSON document, and
// nothing after it.
func jsonDocument[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not a JSON document: %v: %s", err, s)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document: %s", s)
	}
	return v
}

type depth struct{ visible, inflight, delayed int }

// total is every message the queue holds. DLQ checks use it rather than
// visible: kumo counts a message made visible again with
// ChangeMessageVisibility(0) as not visible until the next receive, where
// SQS counts it visible at once; that reading returns messages at once is
// checked by reading them again.
func (d depth) total() int { return d.visible + d.inflight + d.delayed }

func queueDepth(t *testing.T, api *sqs.Client, url string) depth {
	t.Helper()
	out, err := api.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		t.Fatal(err)
	}
	n := func(k sqstypes.QueueAttributeName) int { v, _ := strconv.Atoi(out.Attributes[string(k)]); return v }
	return depth{n(sqstypes.QueueAttributeNameApproximateNumberOfMessages), n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)}
}

// dlqFixture is a DLQ holding six dead letters of every kind ls must
// explain, with the last errors ferry would have recorded.
type dlqFixture struct {
	w             *testenv.World
	api           *sqs.Client
	dlq, tasks    string
	ids           map[string]string // task id (or "bad") → DLQ message id
	rejectMessage string
}

func newDLQFixture(t *testing.T, w *testenv.World) *dlqFixture {
	t.Helper()
	f := &dlqFixture{w: w, api: sqs.NewFromConfig(w.FleetConfig), dlq: w.Manifest.Queues.DLQ, tasks: w.Manifest.Queues.Tasks, ids: map[string]string{}}
	ctx := context.Background()
	acme, globex := w.Customer(t, "acme"), w.Customer(t, "globex")
	uri := func(bucket, key string) task.Attachment { return task.Attachment{URI: "s3://" + bucket + "/" + key} }
	tasks := []task.Task{
		{Version: 1, TaskID: "t-a1", CustomerID: "acme", Attachments: []task.Attachment{uri(acme.Bucket, acme.Objects[0])}},
		{Version: 1, TaskID: "t-a2", CustomerID: "acme", SubmissionID: "s2", Attachments: []task.Attachment{uri(acme.Bucket, acme.Objects[1])}},
		{Version: 1, TaskID: "t-a3", CustomerID: "acme", Attachments: []task.Attachment{uri(acme.Bucket, acme.Objects[0])}},
		{Version: 1, TaskID: "t-g1", CustomerID: "globex", Attachments: []task.Attachment{uri(globex.Bucket, globex.Objects[0])}},
		{Version: 1, TaskID: "t-g2", CustomerID: "globex", Attachments: []task.Attachment{uri(globex.Bucket, globex.Objects[1])}},
	}
	for _, r := range queue.NewProducer(f.api, f.dlq, task.Limits{}).Send(ctx, tasks) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		f.ids[r.TaskID] = r.MessageID
	}
	f.rejectMessage = "body is not valid JSON"
	out, err := f.api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(f.dlq), MessageBody: aws.String("{not json"),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			queue.AttrRejectReason: {DataType: aws.String("String"), StringValue: aws.String(task.ReasonNotJSON)},
			queue.AttrRejectDetail: {DataType: aws.String("String"), StringValue: aws.String(f.rejectMessage)},
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.ids["bad"] = *out.MessageId

	st := &taskstate.State{Redis: w.Redis, Prefix: w.Prefix}
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	if err := st.RecordError(ctx, "t-a1", taskstate.LastError{MessageID: "m-old", ReceiveCount: 5, At: at, Error: "copy: 1 attachment not copied",
		Attachments: []taskstate.AttachmentError{{Index: 0, Source: tasks[0].Attachments[0].URI, Kind: "throttled",
			AttachmentError: queue.AttachmentError{Stage: "get_object", Code: "SlowDown", Message: "Please reduce your request rate.", Hint: "S3 throttled the read; it clears by itself"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordError(ctx, "t-a2/s2", taskstate.LastError{MessageID: "m-old2", ReceiveCount: 5, At: at, Error: "publish t-a2/s2/completed: InternalError"}); err != nil {
		t.Fatal(err)
	}
	// t-a3 reached its terminal event before it was dead-lettered (its
	// last ack was lost): a replay must be acknowledged without work.
	if err := st.Finish(ctx, "t-a3", taskstate.Terminal{EventID: "t-a3/completed", Type: queue.EventCompleted, At: at}, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDLQListShowDoNotConsume(t *testing.T) {
	t.Parallel()
	f := newDLQFixture(t, testenv.SharedWorld(t))
	env := worldEnv(f.w)

	rows := jsonLines[deadletter.Row](t, ferry(t, env, "dlq", "ls", "-o", "json").want(t, 0).stdout)
	if len(rows) != 6 {
		t.Fatalf("ls: %d rows, want 6: %+v", len(rows), rows)
	}
	byMsg := map[string]deadletter.Row{}
	for _, r := range rows {
		byMsg[r.MessageID] = r
	}
	cases := []struct {
		key, task, customer, errContains string
		terminal                         bool
	}{
		{"t-a1", "t-a1", "acme", "1 attachment not copied", false},
		{"t-a2", "t-a2", "acme", "publish t-a2/s2/completed", false},
		{"t-a3", "t-a3", "acme", "already published", true},
		{"t-g1", "t-g1", "globex", "", false},
		{"bad", "", "", "rejected: not_json: " + f.rejectMessage, false},
	}
	for _, c := range cases {
		r, ok := byMsg[f.ids[c.key]]
		if !ok {
			t.Errorf("%s: message %s not listed", c.key, f.ids[c.key])
			continue
		}
		if r.TaskID != c.task || r.CustomerID != c.customer || (r.Terminal != nil) != c.terminal {
			t.Errorf("%s: task %q customer %q terminal %v", c.key, r.TaskID, r.CustomerID, r.Terminal)
		}
		if c.errContains == "" && r.Error != "" || !strings.Contains(r.Error, c.errContains) {
			t.Errorf("%s: error %q, want it to contain %q", c.key, r.Error, c.errContains)
		}
	}
	// Reading did not consume: everything is visible again at once.
	if d := queueDepth(t, f.api, f.dlq); d.total() != 6 {
		t.Errorf("DLQ after ls: %+v, want 6 messages", d)
	}

	table := []struct {
		args []string
		want []string // message ids, by task key
	}{
		{[]string{"--filter", "customer=acme"}, []string{"t-a1", "t-a2", "t-a3"}},
		{[]string{"--filter", "customer=acme,task=t-a[12]"}, []string{"t-a1", "t-a2"}},
		{[]string{"--filter", "error=slowdown"}, []string{"t-a1"}},
		{[]string{"--filter", "error=not_json"}, []string{"bad"}},
		{[]string{"--filter", "customer=glob*", "--limit", "1"}, nil}, // one of t-g1, t-g2
	}
	for _, c := range table {
		out := ferry(t, env, append([]string{"dlq", "ls"}, c.args...)...).want(t, 0).stdout
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.HasPrefix(lines[0], "MESSAGE ID") {
			t.Errorf("ls %v: no table header: %q", c.args, lines[0])
		}
		if c.want == nil {
			if len(lines) != 2 || !strings.Contains(lines[1], "globex") {
				t.Errorf("ls %v: %q, want one globex row", c.args, out)
			}
			continue
		}
		if len(lines)-1 != len(c.want) {
			t.Errorf("ls %v: %d rows, want %d:\n%s", c.args, len(lines)-1, len(c.want), out)
		}
		for _, k := range c.want {
			if !strings.Contains(out, f.ids[k]) {
				t.Errorf("ls %v: %s (%s) missing:\n%s", c.args, k, f.ids[k], out)
			}
		}
	}
	if r := ferry(t, env, "dlq", "ls", "--filter", "colour=red"); r.code != 2 {
		t.Errorf("unknown filter key: exit %d, want 2", r.code)
	}

	show := ferry(t, env, "dlq", "show", f.ids["t-a1"]).want(t, 0).stdout
	for _, want := range []string{`"task_id": "t-a1"`, "customer_id = acme", "SlowDown", "hint: S3 throttled the read", "a replay processes the task again"} {
		if !strings.Contains(show, want) {
			t.Errorf("show t-a1: missing %q:\n%s", want, show)
		}
	}
	show = ferry(t, env, "dlq", "show", f.ids["bad"]).want(t, 0).stdout
	for _, want := range []string{"{not json", "rejected: not_json", "hint: ferry rejected this message", "would be rejected again"} {
		if !strings.Contains(show, want) {
			t.Errorf("show bad: missing %q:\n%s", want, show)
		}
	}
	show = ferry(t, env, "dlq", "show", f.ids["t-a3"], "-o", "json").want(t, 0).stdout
	if r := jsonDocument[deadletter.Row](t, show); r.Terminal == nil || r.Terminal.EventID != "t-a3/completed" {
		t.Errorf("show t-a3 -o json: %s", show)
	}
	ferry(t, env, "dlq", "show", "no-such-id").want(t, 1)
	// Everything read so far is readable again at once.
	if rows := jsonLines[deadletter.Row](t, ferry(t, env, "dlq", "ls", "-o", "json").want(t, 0).stdout); len(rows) != 6 {
		t.Errorf("ls right after ls and show: %d rows, want 6", len(rows))
	}
	if d := queueDepth(t, f.api, f.dlq); d.total() != 6 {
		t.Errorf("DLQ after show: %+v, want 6 messages", d)
	}

	// Without Redis, ls still lists, without last errors.
	noRedis := worldEnv(f.w, "FERRY_REDIS_URL=")
	rows = jsonLines[deadletter.Row](t, ferry(t, noRedis, "dlq", "ls", "-o", "json").want(t, 0).stdout)
	if len(rows) != 6 {
		t.Errorf("ls without Redis: %d rows, want 6", len(rows))
	}
}

// Replay moves exactly the matching messages, sending before deleting: an
// injected send failure loses nothing and is reported, the counts add up,
// and the replayed tasks complete in a real `ferry work` (a task whose
// terminal event was already published is acknowledged without work).
// The worker's /metrics is scraped meanwhile.
func TestDLQReplay(t *testing.T) {
	t.Parallel()
	// A world of its own: it injects faults and counts open uploads.
	f := newDLQFixture(t, testenv.NewWorld(t))
	env := worldEnv(f.w)

	dry := ferry(t, env, "dlq", "replay", "--dry-run", "--filter", "customer=acme").want(t, 0).stdout
	for _, k := range []string{"t-a1", "t-a2", "t-a3"} {
		if !strings.Contains(dry, "would move  "+f.ids[k]) {
			t.Errorf("dry run does not list %s:\n%s", k, dry)
		}
	}
	if !strings.Contains(dry, "would move 3, skipped 3, failed 0") {
		t.Errorf("dry run summary:\n%s", dry)
	}
	// Progress off a terminal: lines on stderr whose total honours --limit.
	lim := ferry(t, worldEnv(f.w, "FERRY_PROGRESS_INTERVAL=1ms"), "dlq", "replay", "--dry-run", "--limit", "2").want(t, 0)
	if !strings.Contains(lim.stderr, "replay: 2/2 messages (100%), would move 2, failed 0") || !strings.Contains(lim.stderr, "done in") {
		t.Errorf("progress of a replay with --limit 2:\n%s", lim.stderr)
	}
	if d := queueDepth(t, f.api, f.dlq); d.total() != 6 {
		t.Errorf("DLQ after dry run: %+v, want 6 messages", d)
	}
	if d := queueDepth(t, f.api, f.tasks); d != (depth{}) {
		t.Errorf("tasks queue after dry run: %+v, want empty", d)
	}

	// The SDK makes three attempts: three faults fail exactly one send.
	if err := f.w.Stack.InjectFault(localaws.Fault{Operation: "sqs:SendMessage", Status: 500, Code: "InternalError", Count: 3}); err != nil {
		t.Fatal(err)
	}
	r := ferry(t, env, "dlq", "replay", "--filter", "customer=acme", "-o", "json").want(t, 1)
	s := jsonDocument[deadletter.Summary](t, r.stdout)
	if len(s.Moved) != 2 || len(s.Failed) != 1 || s.Skipped != 3 || s.Scanned != 6 {
		t.Fatalf("replay with a failing send: moved %d failed %d skipped %d scanned %d, want 2 1 3 6: %+v", len(s.Moved), len(s.Failed), s.Skipped, s.Scanned, s)
	}
	if !strings.Contains(s.Failed[0].Error, "InternalError") || s.Failed[0].CustomerID != "acme" {
		t.Errorf("failure not explained: %+v", s.Failed[0])
	}
	// Nothing lost: 6 = 4 left in the DLQ + 2 on the tasks queue.
	if d := queueDepth(t, f.api, f.dlq); d.total() != 4 {
		t.Errorf("DLQ after replay: %+v, want 4 messages", d)
	}
	if d := queueDepth(t, f.api, f.tasks); d != (depth{2, 0, 0}) {
		t.Errorf("tasks queue after replay: %+v, want 2 visible", d)
	}
	// The failed one goes on a second run, rate-limited.
	r = ferry(t, env, "dlq", "replay", "--filter", "customer=acme", "--rate", "5/s").want(t, 0)
	if !strings.Contains(r.stdout, "moved 1, skipped 3, failed 0") || !strings.Contains(r.stdout, s.Failed[0].MessageID) {
		t.Errorf("second replay:\n%s", r.stdout)
	}
	if d := queueDepth(t, f.api, f.dlq); d.total() != 3 {
		t.Errorf("DLQ after second replay: %+v, want 3 messages", d)
	}

	// Replayed copies keep body and attributes and count the replay.
	rm, err := f.api.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.tasks), MaxNumberOfMessages: 10,
		MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Messages) != 3 {
		t.Errorf("tasks queue: received %d replayed messages, want 3", len(rm.Messages))
	}
	for _, m := range rm.Messages {
		// Hand it straight back for the worker below.
		if _, err := f.api.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(f.tasks),
			ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		var task task.Task
		if err := json.Unmarshal([]byte(*m.Body), &task); err != nil || task.CustomerID != "acme" {
			t.Errorf("replayed body %q: %v", *m.Body, err)
		}
		if a := m.MessageAttributes[queue.AttrReplayed]; a.StringValue == nil || *a.StringValue != "1" {
			t.Errorf("replayed %s: ferry-replayed = %v, want 1", task.TaskID, a.StringValue)
		}
		if a := m.MessageAttributes[queue.AttrCustomerID]; a.StringValue == nil || *a.StringValue != "acme" {
			t.Errorf("replayed %s: customer_id attribute lost", task.TaskID)
		}
		if a := m.MessageAttributes[queue.AttrOriginalMessageID]; a.StringValue == nil || *a.StringValue != f.ids[task.TaskID] {
			t.Errorf("replayed %s: original message id %v, want %s", task.TaskID, a.StringValue, f.ids[task.TaskID])
		}
	}

	// A real worker completes t-a1 and t-a2 and acknowledges t-a3 without work.
	stop, metricsURL := startMetricsWorker(t, env)
	evs := testenv.CollectEvents[queue.Event](t, f.api, f.w.Manifest.Queues.Events, 2, 90*time.Second, 3*time.Second)
	got := map[string]string{}
	for _, e := range evs {
		got[e.TaskID] = e.Type
	}
	if len(evs) != 2 || got["t-a1"] != queue.EventCompleted || got["t-a2"] != queue.EventCompleted {
		t.Errorf("events after replay: %+v, want t-a1 and t-a2 completed, nothing for t-a3", evs)
	}
	var mf map[string]*dto.MetricFamily
	deadline := time.Now().Add(60 * time.Second)
	for {
		mf = scrape(t, metricsURL)
		if metric(mf, "ferry_tasks_total", "outcome", "duplicate") >= 1 && metric(mf, "ferry_tasks_total", "outcome", "completed") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks never settled: completed %v duplicate %v", metric(mf, "ferry_tasks_total", "outcome", "completed"), metric(mf, "ferry_tasks_total", "outcome", "duplicate"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	checks := []struct {
		name, label, value string
		ok                 func(float64) bool
		want               string
	}{
		{"ferry_tasks_total", "outcome", "completed", eq(2), "2"},
		{"ferry_tasks_total", "outcome", "duplicate", eq(1), "1"},
		{"ferry_tasks_total", "outcome", "failed", eq(0), "0"},
		{"ferry_attachments_total", "outcome", "copied", eq(2), "2"},
		{"ferry_copied_bytes_total", "mode", "delegated", func(v float64) bool { return v > 0 }, "> 0"},
		{"ferry_sts_assume_role_total", "result", "ok", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"ferry_worker_slots", "", "", eq(4), "4"},
		{"ferry_build_info", "revision", testRevision, eq(1), "1"},
		{"ferry_busy_ratio", "", "", func(v float64) bool { return v >= 0 && v <= 1 }, "in [0,1]"},
		{"ferry_inflight_tasks", "", "", func(v float64) bool { return v >= 0 && v <= 4 }, "in [0,4]"},
		// The first poll ran at start, when the DLQ held three.
		{"ferry_queue_messages", "queue", "dlq", eq(3), "3 (dlq, all states)"},
	}
	for _, c := range checks {
		v := metric(mf, c.name, c.label, c.value)
		if !c.ok(v) {
			t.Errorf("%s{%s=%q} = %v, want %s", c.name, c.label, c.value, v, c.want)
		}
	}
	for _, st := range []string{"visible", "in_flight", "delayed"} {
		if v := metric2(mf, "ferry_queue_messages", map[string]string{"queue": "tasks", "state": st}); v < 0 || v > 3 {
			t.Errorf("ferry_queue_messages{queue=tasks,state=%s} = %v, want 0..3", st, v)
		}
	}
	for _, h := range []string{"ferry_task_duration_seconds", "ferry_copy_duration_seconds"} {
		if fam := mf[h]; fam == nil || fam.GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("%s missing or not a histogram", h)
		}
	}
	for _, p := range []string{"/readyz", "/healthz"} {
		resp, err := http.Get(strings.TrimSuffix(metricsURL, "/metrics") + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s = %d, want 200", p, resp.StatusCode)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("ferry work exited %d after SIGTERM, want 0", code)
	}

	// purge refuses without --yes and says how many it would remove.
	r = ferry(t, env, "dlq", "purge").want(t, 2)
	if !strings.Contains(r.stderr, "about 3 messages") {
		t.Errorf("purge without --yes: %q", r.stderr)
	}
	if d := queueDepth(t, f.api, f.dlq); d.total() != 3 {
		t.Errorf("DLQ after refused purge: %+v, want 3 messages", d)
	}
	// A killed attempt of t-g1 (still dead-lettered) left its upload open;
	// t-a1 completed, and an upload under its key is not purge's business.
	s3c := s3.NewFromConfig(f.w.FleetConfig, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := f.w.Manifest.InternalBucket
	openUpload := func(customer, task, uri string) string {
		key, err := fetcher.StoredKey("", fetcher.Request{CustomerID: customer, TaskID: task, URI: uri})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s3c.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		return key
	}
	globex, acme := f.w.Customer(t, "globex"), f.w.Customer(t, "acme")
	openUpload("globex", "t-g1", "s3://"+globex.Bucket+"/"+globex.Objects[0])
	kept := openUpload("acme", "t-a1", "s3://"+acme.Bucket+"/"+acme.Objects[0])
	purged := ferry(t, env, "dlq", "purge", "--yes").want(t, 0)
	if !strings.Contains(purged.stderr, "purge: 3/3 messages (100%)") || !strings.Contains(purged.stdout, "it is empty") ||
		!strings.Contains(purged.stdout, "aborted 1 multipart uploads left open by 2 of their tasks' attachments") {
		t.Errorf("purge progress and answer:\n%s\n%s", purged.stderr, purged.stdout)
	}
	if d := queueDepth(t, f.api, f.dlq); d != (depth{}) {
		t.Errorf("DLQ after purge: %+v, want empty", d)
	}
	ups, err := s3c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].Key) != kept {
		t.Errorf("open uploads after purge: %d (first %v), want only %s", len(ups.Uploads), ups.Uploads, kept)
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// startMetricsWorker runs `ferry work` with metrics on a free port and returns a
// stop function (SIGTERM, then the exit code) and the /metrics URL.
func startMetricsWorker(t *testing.T, env []string) (stop func() int, metricsURL string) {
	t.Helper()
	cmd := exec.Command(builtFerry.Path(t), "work")
	cmd.Env = append(env, "FERRY_METRICS_ADDR=127.0.0.1:0", "FERRY_LOG_LEVEL=info", "FERRY_CONCURRENCY=4", "FERRY_VISIBILITY_TIMEOUT=10s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Message, Addr, Level string
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "metrics listening" {
				addr <- line.Addr
			}
			if strings.Contains(sc.Text(), `"level":"error"`) {
				t.Logf("ferry work: %s", sc.Text())
			}
		}
	}()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-logDone
			err := cmd.Wait()
			var ee *exec.ExitError
			switch {
			case err == nil:
				code = 0
			case errors.As(err, &ee):
				code = ee.ExitCode()
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	select {
	case a := <-addr:
		return stop, "http://" + a + "/metrics"
	case <-time.After(60 * time.Second):
		stop()
		t.Fatal("ferry work did not report its metrics address within a minute")
		return nil, ""
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return mf
}

// metric sums the family's series whose label has value (every series when
// label is ""); -1 when the family is missing.
func metric(mf map[string]*dto.MetricFamily, name, label, value string) float64 {
	if label == "" {
		return metric2(mf, name, nil)
	}
	return metric2(mf, name, map[string]string{label: value})
}

func metric2(mf map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	fam := mf[name]
	if fam == nil {
		return -1
	}
	sum := 0.0
series:
	for _, m := range fam.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}
