package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// cliEnv is the environment `make run` gives ferry, for a test's world.
func cliEnv(w *testenv.World, extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	for _, v := range w.Env {
		env = append(env, v.Name+"="+v.Value)
	}
	env = append(env, "FERRY_REDIS_PREFIX="+w.Prefix, "FERRY_METRICS_ADDR=off", "FERRY_LOG_FORMAT=json")
	return append(env, extra...)
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	// Built first: on a loaded machine the build alone can outlast the
	// command's deadline.
	bin := builtFerry.Path(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run ferry %v: %v", args, err)
	}
	return cliResult{code, out.String(), errb.String()}
}

func TestIntegrationCommands(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	env := cliEnv(w)

	r := runCLI(t, env, "", "integration", "enable", "newco", "--account", "777777777777", "--bucket", "newco-data")
	if r.code != 0 {
		t.Fatalf("enable: exit %d: %s", r.code, r.stderr)
	}
	// The printout names our account (from STS, not configuration), the
	// role and the exact documents, as valid JSON.
	for _, want := range []string{w.Manifest.FleetAccountID, credcache.DefaultRoleName, "arn:aws:iam::777777777777:role/ScaleAI-Integration", `"sts:ExternalId"`, "arn:aws:s3:::newco-data/*"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("enable output lacks %q:\n%s", want, r.stdout)
		}
	}
	show := runCLI(t, env, "", "integration", "show", "newco", "-o", "json")
	var in credcache.Integration
	if err := json.Unmarshal([]byte(show.stdout), &in); err != nil || show.code != 0 {
		t.Fatalf("show -o json: exit %d, %v: %s", show.code, err, show.stdout)
	}
	if !in.Enabled || in.AccountID != "777777777777" || len(in.ExternalID) < 22 {
		t.Fatalf("shown integration %+v", in)
	}
	var canon struct {
		ID string `json:"fleet_canonical_user_id"`
	}
	if err := json.Unmarshal([]byte(show.stdout), &canon); err != nil || canon.ID != w.Manifest.FleetCanonicalUserID || canon.ID == "" {
		t.Errorf("show names the fleet's canonical user ID %q, want %q (%v)", canon.ID, w.Manifest.FleetCanonicalUserID, err)
	}
	if text := runCLI(t, env, "", "integration", "show", "newco"); !strings.Contains(text.stdout, w.Manifest.FleetCanonicalUserID) {
		t.Errorf("show (text) lacks the fleet's canonical user ID:\n%s", text.stdout)
	}
	trust := credcache.TrustPolicy(w.Manifest.FleetAccountID, in.ExternalID)
	for _, line := range strings.Split(trust, "\n") {
		if !strings.Contains(r.stdout, strings.TrimSpace(line)) {
			t.Fatalf("enable output does not carry the trust policy line %q", line)
		}
	}

	if r := runCLI(t, env, "", "integration", "register-account", "plainco", "--account", "888888888888"); r.code != 0 {
		t.Fatalf("register-account: exit %d: %s", r.code, r.stderr)
	}
	list := runCLI(t, env, "", "integration", "list", "-o", "json")
	var all []credcache.Integration
	if err := json.Unmarshal([]byte(list.stdout), &all); err != nil {
		t.Fatalf("list -o json: %v: %s", err, list.stdout)
	}
	want := 2 // newco + plainco, beside the demo world's integrations
	for _, c := range w.Manifest.Customers {
		if c.Integration != "" && c.Integration != demo.IntegrationNone {
			want++
		}
	}
	if len(all) != want {
		t.Fatalf("list has %d integrations, want %d: %+v", len(all), want, all)
	}
	if r := runCLI(t, env, "", "integration", "disable", "newco"); r.code != 0 {
		t.Fatalf("disable: exit %d: %s", r.code, r.stderr)
	}

	// Export, then import into an empty prefix: the same records.
	exp := runCLI(t, env, "", "integration", "export")
	if exp.code != 0 || !strings.Contains(exp.stdout, in.ExternalID) {
		t.Fatalf("export: exit %d: %s", exp.code, exp.stderr)
	}
	_, other := testenv.Redis(t)
	env2 := append(cliEnv(w), "FERRY_REDIS_PREFIX="+other)
	if r := runCLI(t, env2, exp.stdout, "integration", "import", "--file", "-"); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("imported %d", want)) {
		t.Fatalf("import: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	show2 := runCLI(t, env2, "", "integration", "show", "newco", "-o", "json")
	var in2 credcache.Integration
	_ = json.Unmarshal([]byte(show2.stdout), &in2)
	if in2.ExternalID != in.ExternalID || in2.Enabled {
		t.Fatalf("imported newco = %+v, want the disabled record with the same external ID", in2)
	}

	// Mistakes say what was wrong and what to do.
	bad := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"integration", "enable", "x"}, 2, "--account"},
		{[]string{"integration", "enable", "x", "--account", "123"}, 1, "12"},
		{[]string{"integration", "show", "ghost"}, 1, "ferry integration enable ghost"},
		{[]string{"integration", "import"}, 2, "--file"},
		{[]string{"no-such-command"}, 2, "unknown command"},
		{[]string{"integration", "list", "--no-such-flag"}, 2, "see `ferry integration list --help`"},
		{[]string{"integration", "show"}, 2, "accepts 1 arg"},
		{[]string{"integration", "list", "extra"}, 2, "unknown command \"extra\""},
	}
	for _, b := range bad {
		r := runCLI(t, env, "", b.args...)
		if r.code != b.code || !strings.Contains(r.stderr, b.want) {
			t.Errorf("ferry %v: exit %d, stderr %q; want exit %d mentioning %q", b.args, r.code, r.stderr, b.code, b.want)
		}
	}
	if r := runCLI(t, env2, "{not json", "integration", "import", "--file", "-"); r.code != 1 || !strings.Contains(r.stderr, "nothing was written") {
		t.Errorf("import of a malformed file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// check-access answers every demo path the way the copy would, without
// copying anything.
func TestCheckAccessDemoPaths(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	env := cliEnv(w)
	cases := []struct {
		customer, bucket, key string
		ok                    bool
		mode, stage, region   string
	}{
		{"acme", "acme-data", "reports/Q3 summary – café.pdf", true, "delegated", "", "us-east-1"},
		{"globex", "globex-data", "img/1.jpg", true, "cross_account", "", "us-east-1"},
		{"hooli", "hooli-data-eu", "img/1.jpg", true, "cross_account", "", "eu-west-1"},
		{"initech", "initech-data", "img/1.jpg", false, "delegated", "assume_role", ""},
		{"umbrella", "umbrella-data", "img/1.jpg", false, "cross_account", "head_object", ""},
		{"acme", "acme-data", "missing.bin", false, "delegated", "head_object", ""},
	}
	for _, c := range cases {
		r := runCLI(t, env, "", "check-access", "--customer", c.customer, "-o", "json", "s3://"+c.bucket+"/"+c.key)
		var reps []fetcher.CheckReport
		if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil || len(reps) != 1 {
			t.Fatalf("%s %s: %v: %s %s", c.customer, c.key, err, r.stdout, r.stderr)
		}
		rep := reps[0]
		wantCode := 0
		if !c.ok {
			wantCode = 1
		}
		if r.code != wantCode || rep.OK != c.ok || string(rep.Mode) != c.mode {
			t.Errorf("%s %s: exit %d ok %v mode %s; want exit %d ok %v mode %s (%+v)", c.customer, c.key, r.code, rep.OK, rep.Mode, wantCode, c.ok, c.mode, rep.Error)
			continue
		}
		if c.ok && (rep.Object == nil || rep.Region != c.region) {
			t.Errorf("%s %s: object %+v region %q, want the object's size in %s", c.customer, c.key, rep.Object, rep.Region, c.region)
		}
		if !c.ok && (rep.Error == nil || string(rep.Error.Stage) != c.stage || rep.Error.Hint == "") {
			t.Errorf("%s %s: error %+v, want stage %s with a hint", c.customer, c.key, rep.Error, c.stage)
		}
	}
	// Text output for people; nothing was copied.
	r := runCLI(t, env, "", "check-access", "--customer", "initech", "s3://initech-data/img/1.jpg")
	if r.code != 1 || !strings.Contains(r.stdout, "NOT READABLE") || !strings.Contains(r.stdout, "hint:") {
		t.Errorf("text output: exit %d:\n%s", r.code, r.stdout)
	}
	// The world's internal bucket is this test's own: nothing stored, no
	// upload begun.
	s3c := s3.NewFromConfig(w.FleetConfig, func(o *s3.Options) { o.UsePathStyle = true })
	objs, err := s3c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(w.Manifest.InternalBucket)})
	if err != nil {
		t.Fatal(err)
	}
	ups, err := s3c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(w.Manifest.InternalBucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Contents) != 0 || len(ups.Uploads) != 0 {
		t.Errorf("check-access wrote %d objects and began %d uploads", len(objs.Contents), len(ups.Uploads))
	}
	if r := runCLI(t, env, "", "check-access", "s3://acme-data/x"); r.code != 2 || !strings.Contains(r.stderr, "--customer") {
		t.Errorf("without --customer: exit %d %q", r.code, r.stderr)
	}
}

// The fleet through its binaries: enqueue, work, events tail. A worker
// killed mid-copy (no ack) loses nothing: the message comes back and
// another worker completes it, once.
func TestWorkerKilledMidCopy(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t) // its own stack: it injects a fault
	env := cliEnv(w, "FERRY_VISIBILITY_TIMEOUT=3s", "FERRY_SHUTDOWN_TIMEOUT=5s")
	acme := w.Customer(t, "acme")
	// The first read of the big object stalls long enough to kill the worker in it.
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", LatencyMS: 30000, Count: 1}); err != nil {
		t.Fatal(err)
	}
	task := `{"version":1,"task_id":"t-kill","customer_id":"acme","attachments":[{"uri":"s3://` + acme.Bucket + "/" + acme.Objects[3] + `"}]}`
	if r := runCLI(t, env, task+"\n", "enqueue", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"status":"enqueued"`) {
		t.Fatalf("enqueue: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	first := startWorker(t, env)
	waitFor(t, 60*time.Second, "the first worker to start reading", func() bool {
		return len(w.Stack.Faults()) == 0 // the stalling fault was taken
	})
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()

	second := startWorker(t, env)
	r := runCLI(t, env, "", "events", "tail", "-o", "json", "--ack", "--max", "1")
	if r.code != 0 {
		t.Fatalf("events tail: exit %d: %s", r.code, r.stderr)
	}
	var ev queue.Event
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.EventID != "t-kill/completed" {
		t.Fatalf("event: %v: %s", err, r.stdout)
	}
	if ev.Attachments[0].SHA256 != acme.SHA256[acme.Objects[3]] {
		t.Errorf("stored sha256 %s, source %s", ev.Attachments[0].SHA256, acme.SHA256[acme.Objects[3]])
	}
	// Graceful stop: SIGTERM, exit 0.
	_ = second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Errorf("worker after SIGTERM: %v", err)
	}
	// Exactly one event: nothing more arrives.
	if r := runCLI(t, env, "", "events", "tail", "-o", "json", "--ack", "--idle-exit", "3s"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("more events: %s", r.stdout)
	}
}

func TestWorkRefusesIncompleteConfig(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=" + os.Getenv("PATH"), "FERRY_CACHE_KEY=short", "FERRY_CONCURRENCY=-1"}
	r := runCLI(t, env, "", "work")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	for _, want := range []string{"FERRY_QUEUE_URL", "FERRY_BUCKET", "FERRY_CACHE_KEY", "openssl rand -base64 32", "FERRY_CONCURRENCY"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error does not mention %s:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "short") {
		t.Errorf("the cache key's value is echoed:\n%s", r.stderr)
	}
}

func startWorker(t *testing.T, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(builtFerry.Path(t), "work")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// enqueue takes tasks from a file (object or array), JSON lines on stdin or
// flags; every task is validated before anything is sent, a bad one is
// reported on its own line and the rest still go out.
func TestEnqueueSources(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	env := cliEnv(w)
	dir := t.TempDir()
	file := filepath.Join(dir, "tasks.json")
	if err := os.WriteFile(file, []byte(`[
  {"task_id":"f-1","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]},
  {"version":1,"task_id":"f-2","customer_id":"acme","attachments":[]},
  {"version":1,"task_id":"f-3","customer_id":"globex","attachments":[{"uri":"s3://globex-data/img/1.jpg","name":"one.jpg"}]}
]`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, env, "", "enqueue", "--file", file, "-o", "json")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (one task was invalid): %s %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"status":"enqueued"`) || !strings.Contains(lines[1], `"status":"error"`) ||
		!strings.Contains(lines[1], "attachment") || !strings.Contains(lines[2], `"status":"enqueued"`) {
		t.Fatalf("result lines:\n%s", r.stdout)
	}
	if r := runCLI(t, env, "", "enqueue", "--customer", "acme", "--task", "f-4", "--uri", "s3://acme-data/img/1.jpg", "--uri", "s3://acme-data/docs/readme.txt"); r.code != 0 || !strings.Contains(r.stdout, "f-4") {
		t.Fatalf("flags: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	out, err := w.Stack.SQSClient(w.Fleet, "us-east-1").GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(w.Manifest.Queues.Tasks), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		t.Fatal(err)
	}
	if n := out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)]; n != "3" {
		t.Errorf("tasks queue holds %s messages, want 3", n)
	}

	// A URI no worker can fetch is refused before anything is sent, by the
	// workers' own parser; JSON lines come from --file as from stdin, and
	// --file - is stdin.
	ftp := filepath.Join(dir, "ftp.jsonl")
	if err := os.WriteFile(ftp, []byte(`{"task_id":"l-0","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}
{"task_id":"l-ftp","customer_id":"acme","attachments":[{"uri":"ftp://acme.example/1.jpg"}]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, env, "", "enqueue", "--file", ftp); r.code != 2 || !strings.Contains(r.stderr, "l-ftp") || !strings.Contains(r.stderr, "nothing was sent") {
		t.Errorf("ftp:// URI: exit %d, stderr %q; want exit 2 naming the task", r.code, r.stderr)
	}
	lines2 := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(lines2, []byte(`{"task_id":"l-1","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}

{"task_id":"l-2","customer_id":"globex","attachments":[{"uri":"s3://globex-data/img/1.jpg"}]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, env, "", "enqueue", "--file", lines2, "-o", "json"); r.code != 0 || strings.Count(r.stdout, `"status":"enqueued"`) != 2 {
		t.Errorf("JSON lines in --file: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	stdinTask := `{"task_id":"l-3","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`
	if r := runCLI(t, env, stdinTask, "enqueue", "--file", "-", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"task_id":"l-3"`) {
		t.Errorf("--file -: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, env, "{\"task_id\":\"l-4\"}\n{oops\n", "enqueue"); r.code != 2 || !strings.Contains(r.stderr, "stdin: line 2") {
		t.Errorf("malformed JSON lines: exit %d, stderr %q; want exit 2 naming line 2", r.code, r.stderr)
	}
	out, err = w.Stack.SQSClient(w.Fleet, "us-east-1").GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(w.Manifest.Queues.Tasks), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		t.Fatal(err)
	}
	if n := out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)]; n != "6" {
		t.Errorf("tasks queue holds %s messages, want 6 (nothing of the refused file)", n)
	}
	for _, bad := range [][]string{
		{"enqueue", "--file", file, "--task", "x"},
		{"enqueue", "--customer", "acme", "--task", "x"},
		{"enqueue", "--file", filepath.Join(dir, "missing.json")},
	} {
		if r := runCLI(t, env, "", bad...); r.code == 0 || r.stderr == "" {
			t.Errorf("ferry %v: exit %d with no error", bad, r.code)
		}
	}

	// A setting enqueue does not read cannot stop it; -o yaml streams one
	// "---" document per task.
	two := `{"task_id":"y-1","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}
{"task_id":"y-2","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`
	y := runCLI(t, cliEnv(w, "FERRY_CONCURRENCY=abc"), two, "enqueue", "-o", "yaml")
	if y.code != 0 || strings.Count(y.stdout, "---\n") != 2 || !strings.Contains(y.stdout, "task_id: y-2\n") || !strings.Contains(y.stdout, "status: enqueued\n") {
		t.Errorf("enqueue -o yaml with FERRY_CONCURRENCY=abc: exit %d:\n%s\n%s", y.code, y.stdout, y.stderr)
	}

	// A large file shows progress; off a terminal as lines on stderr, one
	// per FERRY_PROGRESS_INTERVAL at most, and a last one when done.
	var many strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&many, `{"task_id":"p-%d","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`+"\n", i)
	}
	big := runCLI(t, cliEnv(w, "FERRY_PROGRESS_INTERVAL=1ms"), many.String(), "enqueue", "-o", "json")
	if big.code != 0 || strings.Count(big.stdout, `"status":"enqueued"`) != 400 {
		t.Fatalf("400 tasks: exit %d: %s", big.code, big.stderr)
	}
	var progress []string
	for _, l := range strings.Split(big.stderr, "\n") {
		if strings.HasPrefix(l, "enqueue: ") {
			progress = append(progress, l)
		}
	}
	if len(progress) < 2 || !strings.HasPrefix(progress[len(progress)-1], "enqueue: 400/400 tasks (100%)") || !strings.Contains(progress[len(progress)-1], "done in") {
		t.Errorf("progress lines of 400 tasks:\n%s", big.stderr)
	}
	if small := runCLI(t, cliEnv(w, "FERRY_PROGRESS_INTERVAL=1ms"), two, "enqueue"); strings.Contains(small.stderr, "enqueue: ") {
		t.Errorf("two tasks report progress:\n%s", small.stderr)
	}
}

// A host that sets AWS_CA_BUNDLE (common in corporate images and CI) must
// still get a working ferry: the SDK applies the bundle to its own HTTP
// client type, so ferry wraps the client only after loading. The world
// serves https, so the bundle is what makes the endpoint trusted: a bundle
// holding another CA as well works, one without the stack's CA fails.
func TestCustomCABundle(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	other := selfSignedCAPEM(t)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, append(append([]byte(nil), other...), w.Stack.CAPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, cliEnv(w, "AWS_CA_BUNDLE="+bundle), "", "check-access", "--customer", "acme", "-o", "json", "s3://acme-data/img/1.jpg")
	var reps []fetcher.CheckReport
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil || r.code != 0 || len(reps) != 1 || !reps[0].OK {
		t.Fatalf("with AWS_CA_BUNDLE: exit %d (%v)\nstdout %s\nstderr %s", r.code, err, r.stdout, r.stderr)
	}
	otherOnly := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(otherOnly, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, cliEnv(w, "AWS_CA_BUNDLE="+otherOnly), "", "check-access", "--customer", "acme", "s3://acme-data/img/1.jpg"); r.code == 0 {
		t.Errorf("a bundle without the endpoint's CA: exit 0, want a failure\nstdout %s", r.stdout)
	}
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{bundle + ".missing", notPEM} {
		r = runCLI(t, cliEnv(w, "AWS_CA_BUNDLE="+b), "", "check-access", "--customer", "acme", "s3://acme-data/img/1.jpg")
		if r.code == 0 || !strings.Contains(r.stderr, "AWS_CA_BUNDLE="+b) || !strings.Contains(r.stderr, "PEM") {
			t.Errorf("AWS_CA_BUNDLE=%s: exit %d, stderr %q; want an error naming the variable and what it must hold", b, r.code, r.stderr)
		}
	}
}

func selfSignedCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
