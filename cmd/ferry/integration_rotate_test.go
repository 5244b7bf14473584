package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/render"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// taskFlow sends one task every interval to the tasks queue and collects
// the terminal events, so a test can change things while tasks run.
type taskFlow struct {
	t        *testing.T
	api      *sqs.Client
	customer string
	uri      string

	mu     sync.Mutex
	sent   int
	events map[int]queue.Event // by task number
}

func taskID(customer string, n int) string { return fmt.Sprintf("%s-%04d", customer, n) }

// run sends tasks until ctx ends and collects their events until done ends.
func (f *taskFlow) run(ctx, done context.Context, w *testenv.World, interval time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for n := 0; ctx.Err() == nil; n++ {
			body := `{"version":1,"task_id":"` + taskID(f.customer, n) + `","customer_id":"` + f.customer + `","attachments":[{"uri":"` + f.uri + `"}]}`
			if _, err := f.api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(w.Manifest.Queues.Tasks), MessageBody: aws.String(body)}); err != nil {
				if ctx.Err() == nil {
					f.t.Errorf("send task %d: %v", n, err)
				}
				return
			}
			f.mu.Lock()
			f.sent = n + 1
			f.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}()
	go func() {
		defer wg.Done()
		for done.Err() == nil {
			res, err := f.api.ReceiveMessage(done, &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.Manifest.Queues.Events), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				continue // done ended, or a transient failure: the next receive tells
			}
			for _, m := range res.Messages {
				var ev queue.Event
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
					f.t.Errorf("event is not JSON: %v", err)
					continue
				}
				var n int
				if _, err := fmt.Sscanf(strings.TrimPrefix(ev.TaskID, f.customer+"-"), "%d", &n); err != nil {
					f.t.Errorf("event for an unknown task %q", ev.TaskID)
				}
				f.mu.Lock()
				if prev, dup := f.events[n]; dup && prev.Type != ev.Type {
					f.t.Errorf("task %s: events %s and %s", ev.TaskID, prev.Type, ev.Type)
				}
				f.events[n] = ev
				f.mu.Unlock()
				_, _ = f.api.DeleteMessage(done, &sqs.DeleteMessageInput{QueueUrl: aws.String(w.Manifest.Queues.Events), ReceiptHandle: m.ReceiptHandle})
			}
		}
	}()
	return &wg
}

// state is how many tasks were sent, and how many from task from on have
// completed; it fails the test at the first event that is not a completion.
func (f *taskFlow) state(from int) (sent, completed int) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, ev := range f.events {
		if ev.Type != queue.EventCompleted {
			var why any
			if len(ev.Attachments) > 0 {
				why = ev.Attachments[0].Error
			}
			f.t.Fatalf("task %s: %s (%+v)", ev.TaskID, ev.Type, why)
		}
		if n >= from {
			completed++
		}
	}
	return f.sent, completed
}

// An external ID rotation, driven through the real binary against a real
// worker, with tasks sent all along: ferry issues the new ID (the role still
// trusts only the old one, so the worker falls back to it), the customer
// lists both IDs, then the new one alone, and ferry finishes the rotation.
// Every task completes. Credentials are used for two seconds only (15-minute
// sessions renewed 14m58s early), so every step meets fresh AssumeRole
// calls, as a credential expiry at that moment would.
func TestRotateExternalIDWhileTasksFlow(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t) // its own stack: it counts the stack's AssumeRole calls
	env := cliEnv(w, "FERRY_SESSION_DURATION=15m", "FERRY_REFRESH_WINDOW=14m58s", "FERRY_LOG_LEVEL=warn")
	ctx := testenv.Context(t, 8*time.Minute)
	const customer, bucket = "rotco", "rotco-data"

	// The customer's side: a bucket with an object, and the role trusting
	// the external ID ferry issued.
	spare := w.Manifest.SpareAccounts[0]
	acct := localaws.Account{ID: spare.AccountID, AccessKeyID: spare.AdminAccessKeyID, SecretAccessKey: spare.AdminSecretAccessKey}
	s3c := w.Stack.S3Client(acct, demo.DefaultRegion)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc.txt"), Body: strings.NewReader("rotate me")}); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, env, "", "integration", "enable", customer, "--account", acct.ID, "--bucket", bucket); r.code != 0 {
		t.Fatalf("enable: exit %d: %s", r.code, r.stderr)
	}
	show := func() credcache.Integration {
		t.Helper()
		r := runCLI(t, env, "", "integration", "show", customer, "-o", "json")
		var in credcache.Integration
		if err := json.Unmarshal([]byte(r.stdout), &in); err != nil || r.code != 0 {
			t.Fatalf("show: exit %d, %v: %s", r.code, err, r.stderr)
		}
		return in
	}
	old := show()
	ic := iam.NewFromConfig(w.Stack.Config(acct, demo.DefaultRegion))
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(credcache.DefaultRoleName),
		AssumeRolePolicyDocument: aws.String(credcache.TrustPolicy(w.Manifest.FleetAccountID, old.ExternalID))}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(credcache.DefaultRoleName),
		PolicyName: aws.String("read"), PolicyDocument: aws.String(credcache.RolePolicy(bucket))}); err != nil {
		t.Fatal(err)
	}
	trust := func(doc string) {
		t.Helper()
		if _, err := ic.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(credcache.DefaultRoleName),
			PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}

	startWorker(t, env)
	f := &taskFlow{t: t, api: sqs.NewFromConfig(w.FleetConfig), customer: customer, uri: "s3://" + bucket + "/doc.txt", events: map[int]queue.Event{}}
	sendCtx, stopSending := context.WithCancel(ctx)
	recvCtx, stopReceiving := context.WithCancel(ctx)
	wg := f.run(sendCtx, recvCtx, w, 250*time.Millisecond)
	t.Cleanup(func() { stopSending(); stopReceiving(); wg.Wait() })

	assumed := func(outcome string) int64 { return w.Stack.Stats()["sts:AssumeRole"][outcome] }
	// step makes a change, then waits until tasks sent after it complete
	// on at least two AssumeRole calls made after it (the first may have
	// begun before the change); it returns the refusals STS counted from
	// then on, until the step's tasks completed.
	step := func(name string, change func()) (refused int64) {
		t.Helper()
		change()
		from, _ := f.state(0)
		ok0, denied0 := assumed("ok"), int64(-1)
		waitFor(t, 3*time.Minute, name, func() bool {
			_, completed := f.state(from)
			if denied0 < 0 && assumed("ok")-ok0 >= 2 {
				denied0 = assumed("denied")
			}
			return completed >= 8 && assumed("ok")-ok0 >= 4
		})
		return assumed("denied") - denied0
	}

	step("tasks before the rotation", func() {})
	var in credcache.Integration
	deniedBefore := assumed("denied")
	step("rotation started, the role trusts the old ID", func() {
		r := runCLI(t, env, "", "integration", "rotate-external-id", customer, "--ttl", "1h", "-o", "json")
		var out struct {
			credcache.Integration
			TrustPolicy json.RawMessage `json:"trust_policy"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
			t.Fatalf("rotate-external-id: exit %d, %v: %s", r.code, err, r.stderr)
		}
		in = out.Integration
		if in.ExternalID == old.ExternalID || in.PreviousExternalID != old.ExternalID {
			t.Fatalf("rotate-external-id: new ID differs %v, previous is the old %v", in.ExternalID != old.ExternalID, in.PreviousExternalID == old.ExternalID)
		}
		var doc struct {
			Statement []struct {
				Condition map[string]map[string][]string
			}
		}
		if err := json.Unmarshal(out.TrustPolicy, &doc); err != nil || len(doc.Statement) != 1 {
			t.Fatalf("rotate-external-id trust policy: %v: %s", err, out.TrustPolicy)
		}
		if ids := doc.Statement[0].Condition["StringEquals"]["sts:ExternalId"]; len(ids) != 2 || ids[0] != in.ExternalID || ids[1] != old.ExternalID {
			t.Fatalf("rotate-external-id trust policy lists %d IDs, want [new, old]", len(ids))
		}
	})
	if assumed("denied") == deniedBefore {
		t.Fatal("the role never refused the new ID: the fallback to the old one was not exercised")
	}

	// The customer pastes the trust policy `show` prints: both IDs.
	text := runCLI(t, env, "", "integration", "show", customer)
	both := credcache.TrustPolicy(w.Manifest.FleetAccountID, in.ExternalID, old.ExternalID)
	if !strings.Contains(text.stdout, render.Indent(both, "  ")) || !strings.Contains(text.stdout, "rotation in progress") {
		t.Fatalf("show does not print the trust policy with both IDs:\n%s", text.stdout)
	}
	step("the role trusts both IDs", func() { trust(both) })
	if n := step("the role trusts the new ID only", func() { trust(credcache.TrustPolicy(w.Manifest.FleetAccountID, in.ExternalID)) }); n != 0 {
		t.Errorf("%d refusals once the role trusts the new ID: the new ID is not presented first", n)
	}
	if n := step("rotation finished", func() {
		if r := runCLI(t, env, "", "integration", "rotate-external-id", customer, "--finish"); r.code != 0 || !strings.Contains(r.stdout, "finished") {
			t.Fatalf("--finish: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	}); n != 0 {
		t.Errorf("%d refusals after the rotation finished", n)
	}
	if got := show(); got.PreviousExternalID != "" || got.ExternalID != in.ExternalID {
		t.Fatalf("after --finish: previous kept %v, current changed %v", got.PreviousExternalID != "", got.ExternalID != in.ExternalID)
	}

	// Every task sent gets its one completion.
	stopSending()
	sent, _ := f.state(0)
	waitFor(t, 3*time.Minute, "the last tasks' events", func() bool { _, c := f.state(0); return c >= sent })
	t.Logf("%d tasks completed across the rotation; STS: %d ok, %d refused", sent, assumed("ok"), assumed("denied"))

	// Mistakes say what to do.
	for _, b := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"integration", "rotate-external-id", customer, "--finish"}, 1, "start one with"},
		{[]string{"integration", "rotate-external-id", customer, "--external-id", "bad id!"}, 1, "[A-Za-z0-9_+=,.@:/-]"},
		{[]string{"integration", "rotate-external-id", customer, "--ttl", "9999h"}, 1, "--ttl"},
		{[]string{"integration", "rotate-external-id", "ghost"}, 1, "ferry integration enable ghost"},
		{[]string{"integration", "rotate-external-id", customer, "--finish", "--external-id", "abc"}, 2, "--finish takes no --external-id"},
	} {
		r := runCLI(t, env, "", b.args...)
		if r.code != b.code || !strings.Contains(r.stderr, b.want) {
			t.Errorf("ferry %v: exit %d, stderr %q; want exit %d mentioning %q", b.args, r.code, r.stderr, b.code, b.want)
		}
	}
	if r := runCLI(t, env, "", "integration", "rotate-external-id", customer); r.code != 0 {
		t.Fatalf("second rotation: exit %d: %s", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "integration", "rotate-external-id", customer); r.code != 1 || !strings.Contains(r.stderr, "--finish") {
		t.Errorf("rotation during a rotation: exit %d, stderr %q; want 1 saying to finish first", r.code, r.stderr)
	}
}
