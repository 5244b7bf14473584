package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/worker"
)

// Every demo path ends in the right event, with the right per-attachment
// statuses and stored copies whose sha256 matches the source.
func TestDemoPaths(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	acme, globex, initech, umbrella, hooli := w.Customer(t, "acme"), w.Customer(t, "globex"), w.Customer(t, "initech"), w.Customer(t, "umbrella"), w.Customer(t, "hooli")
	f.enqueue(t,
		newTask("t-acme", "acme", s3uri(acme, acme.Objects[0]), s3uri(acme, acme.Objects[2]), s3uri(acme, acme.Objects[3])),
		newTask("t-globex", "globex", s3uri(globex, globex.Objects[0])),
		newTask("t-hooli", "hooli", s3uri(hooli, hooli.Objects[1])),
		newTask("t-initech", "initech", s3uri(initech, initech.Objects[0])),
		newTask("t-umbrella", "umbrella", s3uri(umbrella, umbrella.Objects[0])),
		newTask("t-acme-missing", "acme", s3uri(acme, acme.Objects[0]), s3uri(acme, "no/such/key.bin")),
		// globex's account is registered, so cross-account reads pin the
		// bucket owner: naming acme's bucket is refused by S3 itself.
		newTask("t-deputy", "globex", s3uri(acme, acme.Objects[0])),
	)
	f.start(t, fleetOptions{})
	evs := byTask(f.collect(t, 7, 90*time.Second, 2*time.Second))

	want := map[string]struct {
		typ      string
		statuses []string
		stage    string
		mode     string
	}{
		"t-acme":         {queue.EventCompleted, []string{"copied", "copied", "copied"}, "", "delegated"},
		"t-globex":       {queue.EventCompleted, []string{"copied"}, "", "cross_account"},
		"t-hooli":        {queue.EventCompleted, []string{"copied"}, "", "cross_account"},
		"t-initech":      {queue.EventAccessDenied, []string{"access_denied"}, "assume_role", "delegated"},
		"t-umbrella":     {queue.EventAccessDenied, []string{"access_denied"}, "get_object", "cross_account"},
		"t-acme-missing": {queue.EventFailed, []string{"copied", "not_found"}, "get_object", "delegated"},
		"t-deputy":       {queue.EventAccessDenied, []string{"access_denied"}, "get_object", "cross_account"},
	}
	sums := map[string]string{}
	for _, c := range w.Manifest.Customers {
		for k, v := range c.SHA256 {
			sums["s3://"+c.Bucket+"/"+k] = v
		}
	}
	for id, wt := range want {
		got := evs[id]
		if len(got) != 1 {
			t.Errorf("%s: %d events, want 1", id, len(got))
			continue
		}
		ev := got[0]
		if ev.Type != wt.typ || ev.EventID != id+"/"+strings.TrimPrefix(wt.typ, "task.") {
			t.Errorf("%s: event %s %s, want type %s", id, ev.EventID, ev.Type, wt.typ)
		}
		if len(ev.Attachments) != len(wt.statuses) {
			t.Fatalf("%s: %d attachments, want %d", id, len(ev.Attachments), len(wt.statuses))
		}
		for i, a := range ev.Attachments {
			if a.Status != wt.statuses[i] || a.Mode != wt.mode {
				t.Errorf("%s[%d]: status %s mode %s, want %s %s (%+v)", id, i, a.Status, a.Mode, wt.statuses[i], wt.mode, a.Error)
			}
			if a.Status == "copied" {
				if want := sums[a.Source]; want == "" || a.SHA256 != want {
					t.Errorf("%s[%d]: sha256 %s, source has %s", id, i, a.SHA256, want)
				}
				if got := f.storedSHA256(t, a.Stored); got != a.SHA256 {
					t.Errorf("%s[%d]: stored copy hashes to %s, event says %s", id, i, got, a.SHA256)
				}
				if !strings.HasPrefix(a.Stored, "s3://"+w.Manifest.InternalBucket+"/"+ev.CustomerID+"/"+id+"/") {
					t.Errorf("%s[%d]: stored at %s, outside the customer's task prefix", id, i, a.Stored)
				}
				continue
			}
			if a.Error == nil || a.Error.Stage != wt.stage || a.Error.Hint == "" {
				t.Errorf("%s[%d]: error %+v, want stage %s with a hint", id, i, a.Error, wt.stage)
			}
		}
	}
	// A delegated customer whose role is broken is never read with the
	// fleet's own credentials: initech's bucket saw no request at all.
	if st := w.Stack.Stats(); st["sts:AssumeRole"]["denied"] != 1 {
		t.Errorf("AssumeRole denials = %d, want 1 (the refusal is cached)", st["sts:AssumeRole"]["denied"])
	}
}

// The same task delivered twice (two messages) is copied once and announced
// once; a resubmission with a submission id is a new task.
func TestDuplicateDeliveryOneEvent(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	acme := w.Customer(t, "acme")
	tk := newTask("t-dup", "acme", s3uri(acme, acme.Objects[3]))
	f.enqueue(t, tk, tk, tk)
	f.start(t, fleetOptions{slots: 4})
	evs := f.collect(t, 1, 60*time.Second, 5*time.Second)
	if len(evs) != 1 || evs[0].EventID != "t-dup/completed" {
		t.Fatalf("events = %+v, want exactly t-dup/completed", evs)
	}
	if n := w.Stack.Stats()["s3:GetObject"]["ok"]; n != 1 {
		t.Errorf("source read %d times, want 1", n)
	}
	if v, inflight := f.queueDepth(t, f.queueURL); v+inflight != 0 {
		t.Errorf("tasks queue still holds %d+%d messages", v, inflight)
	}

	tk.SubmissionID = "retry-1"
	f.enqueue(t, tk)
	evs = f.collect(t, 1, 60*time.Second, time.Second)
	if evs[0].EventID != "t-dup/retry-1/completed" || evs[0].SubmissionID != "retry-1" {
		t.Fatalf("resubmission event = %+v", evs[0])
	}
}

// Each kind of invalid message goes to the DLQ with its reason, task.failed
// is announced when a task id can be read, and the original is deleted.
func TestInvalidMessagesDeadLettered(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	bodies := map[string]string{
		"not_json":        `this is not json`,
		"unknown_version": `{"version":9,"task_id":"t-v9","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`,
		"missing_task":    `{"version":1,"customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`,
		"missing_cust":    `{"version":1,"task_id":"t-nocust","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`,
		"no_attachments":  `{"version":1,"task_id":"t-empty","customer_id":"acme","attachments":[]}`,
		"bad_uri":         `{"version":1,"task_id":"t-ftp","customer_id":"acme","attachments":[{"uri":"ftp://acme-data/x"}]}`,
	}
	for _, b := range bodies {
		f.sendRaw(t, f.queueURL, b)
	}
	f.start(t, fleetOptions{})
	evs := byTask(f.collect(t, 4, 60*time.Second, 3*time.Second))
	for _, id := range []string{"t-v9", "t-nocust", "t-empty", "t-ftp"} {
		if len(evs[id]) != 1 || evs[id][0].Type != queue.EventFailed || evs[id][0].Reason != queue.FailedReasonInvalidMessage {
			t.Errorf("%s: events %+v, want one task.failed invalid_message", id, evs[id])
		}
	}
	if len(evs) != 4 {
		t.Errorf("events for %d tasks, want 4: %v", len(evs), evs)
	}
	dl := queue.NewDeadLetter(f.sqs)
	var msgs []queue.DLQMessage
	for deadline := time.Now().Add(30 * time.Second); len(msgs) < len(bodies) && time.Now().Before(deadline); {
		got, err := dl.Peek(context.Background(), f.dlqURL, 10)
		if err != nil {
			t.Fatal(err)
		}
		msgs = got
	}
	if len(msgs) != len(bodies) {
		t.Fatalf("DLQ holds %d messages, want %d", len(msgs), len(bodies))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.Body] = true
		if m.Attributes[queue.AttrRejectReason] == "" {
			t.Errorf("dead letter %q has no reason attribute", m.Body)
		}
	}
	for name, b := range bodies {
		if !seen[b] {
			t.Errorf("%s: body not in the DLQ unchanged", name)
		}
	}
	if v, inflight := f.queueDepth(t, f.queueURL); v+inflight != 0 {
		t.Errorf("tasks queue still holds %d+%d messages", v, inflight)
	}
}

// A transient fault is retried with backoff and the task completes.
// A finished task's slot takes the next delivery while its ack waits for a
// batch call: with one slot and acks held back for an hour, both tasks
// still complete, and stopping the worker sends the held acks.
func TestSlotFreeWhileAckPending(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	globex := w.Customer(t, "globex")
	f.enqueue(t, newTask("t-first", "globex", s3uri(globex, globex.Objects[0])), newTask("t-second", "globex", s3uri(globex, globex.Objects[0])))
	stop, _ := f.start(t, fleetOptions{slots: 1, ackWindow: time.Hour})
	evs := byTask(f.collect(t, 2, 60*time.Second, 0))
	if len(evs["t-first"]) != 1 || len(evs["t-second"]) != 1 {
		t.Fatalf("events %v, want one for each task", evs)
	}
	stop() // flushes the held acks
	if v, inflight := f.queueDepth(t, f.queueURL); v+inflight != 0 {
		t.Fatalf("tasks queue holds %d visible and %d in flight after shutdown, want both acked", v, inflight)
	}
}

func TestTransientFaultRetried(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	globex := w.Customer(t, "globex")
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", Status: 503, Code: "SlowDown", Count: 8}); err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, newTask("t-slow", "globex", s3uri(globex, globex.Objects[0])))
	f.start(t, fleetOptions{retryBase: 500 * time.Millisecond})
	evs := f.collect(t, 1, 90*time.Second, time.Second)
	if evs[0].Type != queue.EventCompleted {
		t.Fatalf("event %+v, want completed", evs[0])
	}
	if n := w.Stack.Stats()["s3:GetObject"]["fault"]; n != 8 {
		t.Errorf("faults served = %d, want all 8 (the SDK retries, then the queue does)", n)
	}
}

// A fault that never clears sends the message to the DLQ after the queue's
// maxReceiveCount, with its last error recorded for the DLQ tooling.
func TestPersistentFaultReachesDLQ(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	globex := w.Customer(t, "globex")
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", Status: 500, Code: "InternalError"}); err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, newTask("t-doomed", "globex", s3uri(globex, globex.Objects[0])))
	f.start(t, fleetOptions{retryBase: 200 * time.Millisecond})
	dl := queue.NewDeadLetter(f.sqs)
	var msgs []queue.DLQMessage
	deadline := time.Now().Add(2 * time.Minute)
	for len(msgs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("message did not reach the DLQ")
		}
		var err error
		if msgs, err = dl.Peek(context.Background(), f.dlqURL, 10); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	le, ok, err := f.state.LastError(context.Background(), "t-doomed")
	if err != nil || !ok {
		t.Fatalf("last error: ok=%v err=%v", ok, err)
	}
	if le.ReceiveCount < 5 || len(le.Attachments) != 1 || le.Attachments[0].Code != "InternalError" || le.Attachments[0].Kind != "transient" {
		t.Errorf("last error = %+v, want receive count ≥ 5 and the InternalError of the attachment", le)
	}
	// No terminal event: the task is in the DLQ, not announced.
	if evs := f.collect(t, 0, time.Second, 2*time.Second); len(evs) != 0 {
		t.Errorf("events %+v, want none", evs)
	}
}

// A copy that outlives the visibility timeout completes without the message
// being delivered twice: the lease is extended in the background.
func TestLeaseOutlivesVisibility(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	globex := w.Customer(t, "globex")
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", LatencyMS: 6000, Count: 1}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	deliveries := 0
	f.enqueue(t, newTask("t-long", "globex", s3uri(globex, globex.Objects[1])))
	f.start(t, fleetOptions{visibility: 2 * time.Second, slots: 2, wrap: func(h worker.TaskHandler) worker.TaskHandler {
		return handlerFunc(func(ctx context.Context, l *queue.Lease) worker.Report {
			mu.Lock()
			deliveries++
			mu.Unlock()
			return h.Handle(ctx, l)
		})
	}})
	evs := f.collect(t, 1, 60*time.Second, 4*time.Second)
	if evs[0].Type != queue.EventCompleted {
		t.Fatalf("event %+v", evs[0])
	}
	mu.Lock()
	defer mu.Unlock()
	if deliveries != 1 {
		t.Errorf("delivered %d times, want 1", deliveries)
	}
}

// On shutdown in-flight tasks finish; tasks interrupted by the shutdown
// timeout are released and another worker completes them, each exactly once.
func TestShutdownDrainsAndReleases(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	globex := w.Customer(t, "globex")
	// Every read takes 3 s; the first worker may wait 1 s on shutdown, so
	// what it has in flight is interrupted and released.
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", LatencyMS: 3000, Count: 2}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 8)
	var tasks []task.Task
	for i := range 4 {
		tasks = append(tasks, newTask(fmt.Sprintf("t-sd-%d", i), "globex", s3uri(globex, globex.Objects[0])))
	}
	f.enqueue(t, tasks...)
	stop, _ := f.start(t, fleetOptions{slots: 2, shutdown: time.Second, wrap: func(h worker.TaskHandler) worker.TaskHandler {
		return handlerFunc(func(ctx context.Context, l *queue.Lease) worker.Report {
			started <- struct{}{}
			return h.Handle(ctx, l)
		})
	}})
	<-started
	<-started
	stop() // returns once drained: interrupted leases were released
	f.start(t, fleetOptions{slots: 2})
	evs := byTask(f.collect(t, 4, 90*time.Second, 3*time.Second))
	for _, tk := range tasks {
		if len(evs[tk.TaskID]) != 1 || evs[tk.TaskID][0].Type != queue.EventCompleted {
			t.Errorf("%s: events %+v, want one completed", tk.TaskID, evs[tk.TaskID])
		}
	}
}

// Deploys and scale-ins never push a task toward the DLQ: a task whose
// worker shuts down mid-copy more times than the queue's maxReceiveCount is
// handed back each time without spending a receive, and completes once a
// worker lets it finish.
func TestShutdownMidCopyNeverDeadLetters(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	globex := w.Customer(t, "globex")
	shutdowns := demo.MaxReceiveCount + 1
	// Each interrupted worker's read hangs far past its shutdown timeout.
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", LatencyMS: 30000, Count: shutdowns}); err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, newTask("t-deploys", "globex", s3uri(globex, globex.Objects[1])))
	copying := make(chan struct{}, 1)
	var mu sync.Mutex
	var counts []int
	for range shutdowns {
		stop, _ := f.start(t, fleetOptions{slots: 1, shutdown: 100 * time.Millisecond,
			wrap: func(h worker.TaskHandler) worker.TaskHandler {
				return handlerFunc(func(ctx context.Context, l *queue.Lease) worker.Report {
					mu.Lock()
					counts = append(counts, l.ReceiveCount)
					mu.Unlock()
					rep := h.Handle(ctx, l)
					if rep.Outcome != worker.OutcomeReleased || rep.Err != nil {
						t.Errorf("interrupted delivery: outcome %s, err %v; want released without error", rep.Outcome, rep.Err)
					}
					return rep
				})
			},
			copier: func(c worker.Copier) worker.Copier {
				return copierFunc(func(ctx context.Context, r fetcher.Request) (fetcher.Result, error) {
					select {
					case copying <- struct{}{}:
					default:
					}
					return c.Copy(ctx, r)
				})
			}})
		select {
		case <-copying:
		case <-time.After(30 * time.Second):
			t.Fatal("the task was not delivered")
		}
		stop() // shutdown: the copy is interrupted and the task handed back
	}
	f.start(t, fleetOptions{slots: 1})
	evs := f.collect(t, 1, 60*time.Second, time.Second)
	if evs[0].TaskID != "t-deploys" || evs[0].Type != queue.EventCompleted {
		t.Fatalf("event %+v, want t-deploys completed", evs[0])
	}
	mu.Lock()
	for i, n := range counts {
		if n != 1 {
			t.Errorf("delivery %d had receive count %d, want 1 (a hand-back must not spend a receive)", i, n)
		}
	}
	mu.Unlock()
	if msgs, err := queue.NewDeadLetter(f.sqs).Peek(context.Background(), f.dlqURL, 10); err != nil || len(msgs) != 0 {
		t.Errorf("DLQ holds %d messages (err %v), want none", len(msgs), err)
	}
	if v, inflight := f.queueDepth(t, f.queueURL); v+inflight != 0 {
		t.Errorf("tasks queue still holds %d+%d messages", v, inflight)
	}
}

type copierFunc func(ctx context.Context, r fetcher.Request) (fetcher.Result, error)

func (f copierFunc) Copy(ctx context.Context, r fetcher.Request) (fetcher.Result, error) {
	return f(ctx, r)
}

// Messages of one FIFO group are handled in order, one at a time.
func TestFIFOGroupOrder(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	fifo, err := w.Stack.CreateQueue(context.Background(), localaws.Queue{Name: "tasks.fifo", FIFO: true})
	if err != nil {
		t.Fatal(err)
	}
	f.queueURL = fifo
	globex, hooli := w.Customer(t, "globex"), w.Customer(t, "hooli")
	var tasks []task.Task
	for i := range 6 {
		tasks = append(tasks, newTask(fmt.Sprintf("g-%d", i), "globex", s3uri(globex, globex.Objects[i%2])))
		tasks = append(tasks, newTask(fmt.Sprintf("h-%d", i), "hooli", s3uri(hooli, hooli.Objects[i%2])))
	}
	f.enqueue(t, tasks...) // the producer groups by customer
	// A message's turn ends when its event is published, which precedes
	// its ack; SQS hands out the group's next message only after the ack.
	var mu sync.Mutex
	running := map[string]int{}
	var order []string
	f.start(t, fleetOptions{slots: 8,
		wrap: func(h worker.TaskHandler) worker.TaskHandler {
			return handlerFunc(func(ctx context.Context, l *queue.Lease) worker.Report {
				mu.Lock()
				running[l.GroupID]++
				if running[l.GroupID] > 1 {
					t.Errorf("group %s: two messages handled at once", l.GroupID)
				}
				mu.Unlock()
				return h.Handle(ctx, l)
			})
		},
		publish: func(e queue.Event) {
			mu.Lock()
			running[e.CustomerID]--
			order = append(order, e.TaskID)
			mu.Unlock()
		},
	})
	f.collect(t, len(tasks), 90*time.Second, time.Second)
	mu.Lock()
	defer mu.Unlock()
	next := map[byte]int{}
	for _, id := range order {
		var n int
		fmt.Sscanf(id[2:], "%d", &n)
		if n != next[id[0]] {
			t.Fatalf("completion order %v: %s out of order within its group", order, id)
		}
		next[id[0]]++
	}
}

type handlerFunc func(ctx context.Context, l *queue.Lease) worker.Report

func (f handlerFunc) Handle(ctx context.Context, l *queue.Lease) worker.Report { return f(ctx, l) }

// Redis down slows the fleet, it does not stop it: with Redis stopped
// mid-run, tasks of customers already seen keep completing (integrations and
// credentials from the process's memory), and a restart that lost every key
// costs at most an identical event again. The fleet-wide cap shares capacity
// fairly; it guards nothing that must not happen, so with Redis unreachable
// a task runs uncapped rather than waiting: the worker here runs with a
// fleet cap of 1, and nothing is deferred while Redis is down.
func TestRedisOutageTasksComplete(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	w := testenv.NewWorldOn(t, srv.Client(), srv.URL, "ferry")
	f := newFleet(t, w)
	acme, globex := w.Customer(t, "acme"), w.Customer(t, "globex")
	var mu sync.Mutex
	outcomes := map[worker.Outcome]int{}
	f.start(t, fleetOptions{fleetCap: 1, wrap: func(h worker.TaskHandler) worker.TaskHandler {
		return handlerFunc(func(ctx context.Context, l *queue.Lease) worker.Report {
			rep := h.Handle(ctx, l)
			mu.Lock()
			outcomes[rep.Outcome]++
			mu.Unlock()
			return rep
		})
	}})
	f.enqueue(t, newTask("t-warm-acme", "acme", s3uri(acme, acme.Objects[0])), newTask("t-warm-globex", "globex", s3uri(globex, globex.Objects[0])))
	f.collect(t, 2, 60*time.Second, 0)

	srv.Stop()
	mu.Lock()
	clear(outcomes)
	mu.Unlock()
	down := []string{"t-down-acme", "t-down-globex", "t-nocap-0", "t-nocap-1"}
	f.enqueue(t, newTask(down[0], "acme", s3uri(acme, acme.Objects[1])), newTask(down[1], "globex", s3uri(globex, globex.Objects[1])),
		newTask(down[2], "globex", s3uri(globex, globex.Objects[0])), newTask(down[3], "globex", s3uri(globex, globex.Objects[1])))
	evs := byTask(f.collect(t, len(down), 60*time.Second, time.Second))
	for _, id := range down {
		if len(evs[id]) != 1 || evs[id][0].Type != queue.EventCompleted {
			t.Errorf("%s during the outage: %+v, want completed", id, evs[id])
		}
	}
	if n := w.Stack.Stats()["sts:AssumeRole"]["ok"]; n != 1 {
		t.Errorf("AssumeRole calls = %d, want 1 (acme's credentials served from memory)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if outcomes[worker.OutcomeDeferred] != 0 {
		t.Errorf("%d deliveries deferred with Redis down, want none: the cap must not stop work", outcomes[worker.OutcomeDeferred])
	}
}

// One customer flooding the queue cannot take every slot: over the cap its
// messages are handed back with a delay while other customers' tasks run.
// Every read takes 1.5 s and there are 4 slots, so without the cap the six
// flood tasks fill every slot; with a cap of 2 no more than two of them are
// ever copying at once (checked on the intervals of the deliveries that
// completed, which does not depend on how fast the machine is), and the
// small task does not wait for the flood to drain.
func TestCustomerCapDefersFlood(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	globex, hooli := w.Customer(t, "globex"), w.Customer(t, "hooli")
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", LatencyMS: 1500}); err != nil {
		t.Fatal(err)
	}
	var tasks []task.Task
	for i := range 6 {
		tasks = append(tasks, newTask(fmt.Sprintf("flood-%d", i), "globex", s3uri(globex, globex.Objects[0])))
	}
	tasks = append(tasks, newTask("small", "hooli", s3uri(hooli, hooli.Objects[0])))
	f.enqueue(t, tasks...)
	var mu sync.Mutex
	floodDone, floodBeforeSmall, deferred := 0, -1, 0
	type span struct{ from, to time.Time }
	var floodCopies []span // deliveries of flood tasks that were not deferred
	f.start(t, fleetOptions{slots: 4, custCap: 2,
		wrap: func(h worker.TaskHandler) worker.TaskHandler {
			return handlerFunc(func(ctx context.Context, l *queue.Lease) worker.Report {
				from := time.Now()
				rep := h.Handle(ctx, l)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case rep.Outcome == worker.OutcomeDeferred:
					deferred++
				case strings.Contains(string(l.Body), `"flood-`):
					floodCopies = append(floodCopies, span{from, time.Now()})
				}
				return rep
			})
		},
		publish: func(e queue.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.CustomerID == "globex" {
				floodDone++
			} else {
				floodBeforeSmall = floodDone
			}
		},
	})
	evs := byTask(f.collect(t, len(tasks), 90*time.Second, time.Second))
	for _, tk := range tasks {
		if len(evs[tk.TaskID]) != 1 || evs[tk.TaskID][0].Type != queue.EventCompleted {
			t.Errorf("%s: %+v, want one completed event", tk.TaskID, evs[tk.TaskID])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if deferred == 0 {
		t.Error("no delivery was deferred: the cap never applied")
	}
	most := 0
	for _, a := range floodCopies {
		at := 0 // flood deliveries running when a started
		for _, b := range floodCopies {
			if !b.from.After(a.from) && b.to.After(a.from) {
				at++
			}
		}
		most = max(most, at)
	}
	if most > 2 {
		t.Errorf("%d flood tasks were handled at once; the cap is 2", most)
	}
	if floodBeforeSmall < 0 || floodBeforeSmall >= len(tasks)-1 {
		t.Errorf("the small task finished after %d flood tasks; with the cap it must not wait for the flood", floodBeforeSmall)
	}
}
