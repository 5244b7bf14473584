package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"

	"github.com/ferryworks/ferry/task"
)

// inFlight returns how many leases are received and not yet settled.
func (c *Consumer) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight)
}

// consumer is a Consumer on e's queues (through api when not nil), closed
// when the test ends.
func consumer(t testing.TB, e *testenv.SQS, api SQSAPI, opts ConsumerOptions) *Consumer {
	t.Helper()
	if api == nil {
		api = e.Client
	}
	c, err := NewConsumer(api, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func newTask(id, customer string) task.Task {
	return task.Task{Version: 1, TaskID: id, CustomerID: customer, Attachments: []task.Attachment{{URI: "s3://b/" + id}}}
}

func mustSend(t testing.TB, p *Producer, tasks ...task.Task) []SendResult {
	t.Helper()
	res := p.Send(context.Background(), tasks)
	if err := SendErrors(res); err != nil {
		t.Fatal(err)
	}
	return res
}

// receiveN receives until n leases arrived or ctx ends. Long polls end as
// soon as messages are there, so this does not spin.
func receiveN(ctx context.Context, t testing.TB, c *Consumer, n int) []*Lease {
	t.Helper()
	var got []*Lease
	for len(got) < n {
		ls, err := c.Receive(ctx, n-len(got))
		if err != nil {
			t.Fatalf("receive: %v (have %d of %d)", err, len(got), n)
		}
		got = append(got, ls...)
	}
	return got
}

func TestConsumerRoundTrip(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks", VisibilityTimeout: 5 * time.Second})
	sent := mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "acme"), newTask("t-2", "acme"), newTask("t-3", "globex"))
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: 2 * time.Second, VisibilityTimeout: 5 * time.Second})
	ctx := testenv.Context(t, 60*time.Second)

	leases := receiveN(ctx, t, c, 3)
	byID := map[string]*Lease{}
	for _, l := range leases {
		byID[l.MessageID] = l
	}
	for _, s := range sent {
		l := byID[s.MessageID]
		if l == nil {
			t.Fatalf("message %s of task %s not received", s.MessageID, s.TaskID)
		}
		tk, err := task.Decode(l.Body, task.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if tk.TaskID != s.TaskID || l.Attributes[AttrTaskID] != s.TaskID || l.Attributes[AttrCustomerID] != tk.CustomerID {
			t.Errorf("lease %s: task %+v, attributes %v", l.MessageID, tk, l.Attributes)
		}
		if l.ReceiveCount != 1 || l.SentAt.IsZero() || l.ReceivedAt.Before(l.SentAt.Add(-time.Second)) {
			t.Errorf("lease %s: ReceiveCount %d SentAt %v ReceivedAt %v", l.MessageID, l.ReceiveCount, l.SentAt, l.ReceivedAt)
		}
	}
	if n := c.inFlight(); n != 3 {
		t.Errorf("in flight: %d, want 3", n)
	}
	for _, l := range leases {
		if err := l.Ack(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if err := leases[0].Ack(ctx); !errors.Is(err, ErrSettled) {
		t.Errorf("second Ack = %v, want ErrSettled", err)
	}
	if err := leases[0].Release(ctx); !errors.Is(err, ErrSettled) {
		t.Errorf("Release after Ack = %v, want ErrSettled", err)
	}
	if v, f := e.Depth(t, url); v != 0 || f != 0 {
		t.Errorf("after ack: %d visible, %d in flight; want 0, 0", v, f)
	}
	if calls := e.Stack.Stats()["sqs:DeleteMessageBatch"]["ok"]; calls != 3 {
		// Sequential acks each wait for their own flush.
		t.Errorf("DeleteMessageBatch calls = %d, want 3", calls)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Receive(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close = %v, want ErrClosed", err)
	}
}

// TestHeartbeatKeepsLease holds a lease for 3.5 visibility timeouts while
// a second consumer polls the queue: the heartbeat must keep it hidden.
func TestHeartbeatKeepsLease(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks", VisibilityTimeout: 2 * time.Second})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "acme"))
	holder := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: 2 * time.Second, VisibilityTimeout: 2 * time.Second})
	other := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 2 * time.Second})
	ctx := testenv.Context(t, 60*time.Second)

	l := receiveN(ctx, t, holder, 1)[0]
	hold := time.Now().Add(7 * time.Second)
	for time.Now().Before(hold) {
		got, err := other.Receive(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			t.Fatalf("message redelivered to another consumer after %s while its lease was held",
				time.Since(l.ReceivedAt).Round(time.Millisecond))
		}
	}
	select {
	case <-l.Lost():
		t.Fatal("lease reported lost")
	default:
	}
	if err := l.Ack(ctx); err != nil {
		t.Fatalf("ack after 7s: %v", err)
	}
	if ext := e.Stack.Stats()["sqs:ChangeMessageVisibilityBatch"]["ok"]; ext < 5 {
		t.Errorf("only %d heartbeat extensions in 7s with a 2s lease", ext)
	}
}

// TestMaxProcessingTimeStopsExtending checks the extension cap: past it the
// message is given up and another consumer receives it.
func TestMaxProcessingTimeStopsExtending(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "acme"))
	holder := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: time.Second,
		HeartbeatInterval: 300 * time.Millisecond, MaxProcessingTime: 4 * time.Second})
	other := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 10 * time.Second})
	ctx := testenv.Context(t, 60*time.Second)

	first := receiveN(ctx, t, holder, 1)[0]
	second := receiveN(ctx, t, other, 1)[0]
	if second.MessageID != first.MessageID || second.ReceiveCount != 2 {
		t.Fatalf("second receive: %s count %d", second.MessageID, second.ReceiveCount)
	}
	// Extensions are whole seconds, so the last one may end up to half a
	// second before the cap; without the heartbeat it would come back
	// after about 1 s.
	if waited := second.ReceivedAt.Sub(first.ReceivedAt); waited < 3*time.Second {
		t.Errorf("redelivered after %s, well before MaxProcessingTime (4s)", waited)
	}
	if err := second.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRetryLater(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "acme"))
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: 5 * time.Second, VisibilityTimeout: 30 * time.Second,
		RetryBase: 2 * time.Second, RetryMax: 3 * time.Second})
	ctx := testenv.Context(t, 90*time.Second)

	var prev *Lease
	for n := 1; n <= 3; n++ {
		l := receiveN(ctx, t, c, 1)[0]
		if l.ReceiveCount != n {
			t.Fatalf("receive %d: ReceiveCount = %d", n, l.ReceiveCount)
		}
		if prev != nil {
			// Without RetryLater the 30s lease would hide it far longer.
			if gap := l.ReceivedAt.Sub(prev.ReceivedAt); gap > 20*time.Second {
				t.Errorf("receive %d came %s after the previous one", n, gap)
			}
		}
		d, err := l.RetryLater(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ceil := backoffCeiling(2*time.Second, 3*time.Second, n); d < 0 || d > ceil {
			t.Errorf("RetryLater delay %s outside [0, %s]", d, ceil)
		}
		if _, err := l.RetryLater(ctx); !errors.Is(err, ErrSettled) {
			t.Errorf("second RetryLater = %v, want ErrSettled", err)
		}
		prev = l
	}
}

// TestRedriveToDLQ releases a message until SQS's maxReceiveCount moves it
// to the dead-letter queue.
func TestRedriveToDLQ(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	dlq := e.Queue(t, localaws.Queue{Name: "tasks-dlq"})
	url := e.Queue(t, localaws.Queue{Name: "tasks", DeadLetter: "tasks-dlq", MaxReceiveCount: 2})
	sent := mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "acme"))
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 10 * time.Second})
	ctx := testenv.Context(t, 60*time.Second)

	for n := 1; n <= 2; n++ {
		l := receiveN(ctx, t, c, 1)[0]
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.Receive(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("third receive: %d leases, err %v; want the message gone to the DLQ", len(got), err)
	}
	msgs, err := NewDeadLetter(e.Client).Peek(ctx, dlq, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].MessageID != sent[0].MessageID || msgs[0].Attributes[AttrTaskID] != "t-1" {
		t.Fatalf("DLQ holds %+v", msgs)
	}
}

func TestReleaseIsImmediate(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "acme"))
	a := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 60 * time.Second})
	b := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 60 * time.Second})
	ctx := testenv.Context(t, 60*time.Second)

	la := receiveN(ctx, t, a, 1)[0]
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := b.Receive(ctx, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("receive after release: %d leases, err %v", len(got), err)
	}
	if got[0].MessageID != la.MessageID || got[0].ReceiveCount != 2 {
		t.Errorf("got %s count %d", got[0].MessageID, got[0].ReceiveCount)
	}
	if err := la.Ack(ctx); !errors.Is(err, ErrSettled) {
		t.Errorf("Ack after Release = %v, want ErrSettled", err)
	}
	if err := got[0].ReleaseAfter(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if again, err := a.Receive(ctx, 1); err != nil || len(again) != 0 {
		t.Errorf("message visible despite ReleaseAfter(30s): %d leases, err %v", len(again), err)
	}
}

// TestAckBatchPartialFailure acks good leases and one with a bogus receipt
// handle in the same batch: the good ones are deleted, the bad one reports
// ErrLeaseLost.
func TestAckBatchPartialFailure(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "a"), newTask("t-2", "a"), newTask("t-3", "a"))
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second,
		AckBatchWindow: time.Second})
	ctx := testenv.Context(t, 60*time.Second)

	leases := receiveN(ctx, t, c, 3)
	bogus := c.newLease(types.Message{MessageId: aws.String("bogus"), ReceiptHandle: aws.String("not-a-receipt-handle"),
		Body: aws.String("{}")}, time.Now())
	leases = append(leases, bogus)
	errs := make([]error, len(leases))
	var wg sync.WaitGroup
	for i, l := range leases {
		wg.Go(func() { errs[i] = l.Ack(ctx) })
	}
	wg.Wait()
	for i := range 3 {
		if errs[i] != nil {
			t.Errorf("good ack %d: %v", i, errs[i])
		}
	}
	var be *BatchEntryError
	if !errors.Is(errs[3], ErrLeaseLost) || !errors.As(errs[3], &be) || !be.SenderFault {
		t.Errorf("bogus ack: %v, want ErrLeaseLost from a sender-fault entry", errs[3])
	}
	select {
	case <-bogus.Lost():
	default:
		t.Error("bogus lease not marked lost")
	}
	if calls := e.Stack.Stats()["sqs:DeleteMessageBatch"]["ok"]; calls != 1 {
		t.Errorf("DeleteMessageBatch calls = %d, want 1 batch for 4 concurrent acks", calls)
	}
	if v, f := e.Depth(t, url); v != 0 || f != 0 {
		t.Errorf("queue holds %d visible, %d in flight; want empty", v, f)
	}
}

// TestAckSurvivesServerErrors injects more DeleteMessageBatch failures than
// the SDK's own retries absorb: the consumer's retry must still delete.
func TestAckSurvivesServerErrors(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "a"))
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
	ctx := testenv.Context(t, 90*time.Second)

	l := receiveN(ctx, t, c, 1)[0]
	if err := e.Stack.InjectFault(localaws.Fault{Operation: "sqs:DeleteMessageBatch", Status: 500, Code: "InternalError", Count: 4}); err != nil {
		t.Fatal(err)
	}
	if err := l.Ack(ctx); err != nil {
		t.Fatalf("ack: %v", err)
	}
	st := e.Stack.Stats()["sqs:DeleteMessageBatch"]
	if st["fault"] != 4 || st["ok"] != 1 {
		t.Errorf("DeleteMessageBatch stats %v, want 4 faults then 1 ok", st)
	}
	if v, f := e.Depth(t, url); v != 0 || f != 0 {
		t.Errorf("queue holds %d visible, %d in flight; want empty", v, f)
	}
}

// groupFromCustomer fills in the MessageGroupId system attribute from the
// customer_id message attribute when the endpoint leaves it out. kumo
// v0.33.1 never returns MessageGroupId; real SQS does, and the Producer
// groups by customer id, so this restores what SQS would say.
type groupFromCustomer struct{ SQSAPI }

func (g groupFromCustomer) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := g.SQSAPI.ReceiveMessage(ctx, in, optFns...)
	if err != nil {
		return out, err
	}
	for i, m := range out.Messages {
		if m.Attributes == nil {
			m.Attributes = map[string]string{}
		}
		if m.Attributes["MessageGroupId"] == "" {
			if v, ok := m.MessageAttributes[AttrCustomerID]; ok {
				m.Attributes["MessageGroupId"] = aws.ToString(v.StringValue)
			}
		}
		out.Messages[i] = m
	}
	return out, nil
}

// TestSequencerFIFO processes two FIFO groups: each group strictly in send
// order and one message at a time, the two groups at the same time.
func TestSequencerFIFO(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks", FIFO: true})
	const perGroup = 6
	var tasks []task.Task
	for i := range perGroup {
		tasks = append(tasks, newTask(fmt.Sprintf("a-%d", i), "ga"), newTask(fmt.Sprintf("b-%d", i), "gb"))
	}
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), tasks...)
	c := consumer(t, e, groupFromCustomer{e.Client}, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
	seq := NewSequencer()
	ctx := testenv.Context(t, 90*time.Second)

	var mu sync.Mutex
	order := map[string][]string{}
	running := map[string]int{}
	bStarted := make(chan struct{})
	var bOnce sync.Once
	var wg sync.WaitGroup
	var failures []string
	fail := func(f string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(f, args...))
		mu.Unlock()
	}
	received := 0
	for received < 2*perGroup {
		leases, err := c.Receive(ctx, 4) // several receives, each mixing groups
		if err != nil {
			t.Fatal(err)
		}
		received += len(leases)
		// Start in reverse so a sequencer that ran leases in call order
		// would visibly break the group order.
		for i := len(leases) - 1; i >= 0; i-- {
			l := leases[i]
			if l.GroupID == "" {
				t.Fatal("lease without a group id on a FIFO queue")
			}
			wg.Go(func() {
				err := seq.Run(ctx, l, func(ctx context.Context) error {
					tk, err := task.Decode(l.Body, task.Limits{})
					if err != nil {
						return err
					}
					mu.Lock()
					running[l.GroupID]++
					if running[l.GroupID] > 1 {
						failures = append(failures, "two messages of group "+l.GroupID+" at once")
					}
					order[l.GroupID] = append(order[l.GroupID], tk.TaskID)
					mu.Unlock()
					if l.GroupID == "gb" {
						bOnce.Do(func() { close(bStarted) })
					}
					if tk.TaskID == "a-0" {
						// Group b must make progress while group a is busy.
						select {
						case <-bStarted:
						case <-ctx.Done():
							return errors.New("group b never ran while group a was busy")
						}
					}
					mu.Lock()
					running[l.GroupID]--
					mu.Unlock()
					return l.Ack(ctx)
				})
				if err != nil {
					fail("%s: %v", l.MessageID, err)
				}
			})
		}
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	for g, prefix := range map[string]string{"ga": "a", "gb": "b"} {
		var want []string
		for i := range perGroup {
			want = append(want, fmt.Sprintf("%s-%d", prefix, i))
		}
		if fmt.Sprint(order[g]) != fmt.Sprint(want) {
			t.Errorf("group %s ran %v, want %v", g, order[g], want)
		}
	}
}

// TestSequencerHaltsGroup: when a message of a group is released instead of
// acked, the later messages of the group are released too (ErrGroupHalted)
// and come back in order.
func TestSequencerHaltsGroup(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks", FIFO: true})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("a-0", "ga"), newTask("a-1", "ga"), newTask("a-2", "ga"))
	c := consumer(t, e, groupFromCustomer{e.Client}, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
	seq := NewSequencer()
	ctx := testenv.Context(t, 60*time.Second)

	leases := receiveN(ctx, t, c, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, l := range leases {
		wg.Go(func() {
			errs[i] = seq.Run(ctx, l, func(ctx context.Context) error {
				if i == 0 {
					return l.Release(ctx)
				}
				return l.Ack(ctx)
			})
		})
	}
	wg.Wait()
	if errs[0] != nil || !errors.Is(errs[1], ErrGroupHalted) || !errors.Is(errs[2], ErrGroupHalted) {
		t.Fatalf("Run errors = %v, want [nil halted halted]", errs)
	}
	// All three come back. (Their order is not checked: kumo requeues
	// released FIFO messages in map order, unlike SQS, which keeps the
	// group's order.)
	again := receiveN(ctx, t, c, 3)
	seen := map[string]bool{}
	for _, l := range again {
		tk, _ := task.Decode(l.Body, task.Limits{})
		seen[tk.TaskID] = true
		if l.ReceiveCount != 2 {
			t.Errorf("redelivered %s with count %d, want 2", tk.TaskID, l.ReceiveCount)
		}
		if err := l.Ack(ctx); err != nil {
			t.Error(err)
		}
	}
	if len(seen) != 3 {
		t.Errorf("redelivered %v, want a-0, a-1, a-2", seen)
	}
}

func TestProducerPartialFailure(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	fifo := e.Queue(t, localaws.Queue{Name: "tasks", FIFO: true})
	ctx := testenv.Context(t, 60*time.Second)

	t.Run("invalid task among valid ones", func(t *testing.T) {
		var tasks []task.Task
		for i := range 12 {
			tasks = append(tasks, newTask(fmt.Sprintf("t-%d", i), "acme"))
		}
		tasks[5].TaskID = "bad/id"
		res := NewProducer(e.Client, url, task.Limits{}).Send(ctx, tasks)
		for i, r := range res {
			if i == 5 {
				var ite *task.InvalidError
				if !errors.As(r.Err, &ite) || ite.Reason != task.ReasonInvalidTaskID || r.MessageID != "" {
					t.Errorf("invalid task result %+v", r)
				}
				continue
			}
			if r.Err != nil || r.MessageID == "" || r.TaskID != tasks[i].TaskID {
				t.Errorf("result %d = %+v", i, r)
			}
		}
		if v, _ := e.Depth(t, url); v != 11 {
			t.Errorf("queue holds %d messages, want 11", v)
		}
	})
	t.Run("entry refused by SQS", func(t *testing.T) {
		p := NewProducer(e.Client, fifo, task.Limits{})
		// An empty group id is refused by SQS per entry, with sender fault.
		p.GroupID = func(t task.Task) string {
			if t.TaskID == "f-1" {
				return ""
			}
			return t.CustomerID
		}
		res := p.Send(ctx, []task.Task{newTask("f-0", "acme"), newTask("f-1", "acme"), newTask("f-2", "acme")})
		var be *BatchEntryError
		if res[0].Err != nil || res[2].Err != nil || !errors.As(res[1].Err, &be) || !be.SenderFault {
			t.Errorf("results %+v", res)
		}
		if v, _ := e.Depth(t, fifo); v != 2 {
			t.Errorf("FIFO queue holds %d messages, want 2", v)
		}
		// Same task again: the deduplication id (task id) drops it.
		again := p.Send(ctx, []task.Task{newTask("f-0", "acme")})
		if again[0].Err != nil || again[0].MessageID != res[0].MessageID {
			t.Errorf("resend: %+v, want the original message id %s", again[0], res[0].MessageID)
		}
	})
	t.Run("batches by payload size", func(t *testing.T) {
		big := func(id string) task.Task {
			tk := newTask(id, "acme")
			tk.Attachments[0].URI = "s3://b/" + id + "/" + fmt.Sprintf("%0100000d", 0)
			return tk
		}
		e.Stack.ResetStats()
		res := NewProducer(e.Client, url, task.Limits{}).Send(ctx, []task.Task{big("l-0"), big("l-1"), big("l-2")})
		if err := SendErrors(res); err != nil {
			t.Fatal(err)
		}
		// Three ~100 KB messages cannot share one 256 KiB batch.
		if calls := e.Stack.Stats()["sqs:SendMessageBatch"]["ok"]; calls != 2 {
			t.Errorf("SendMessageBatch calls = %d, want 2", calls)
		}
	})
}

func TestPublisher(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	std := e.Queue(t, localaws.Queue{Name: "events"})
	fifo := e.Queue(t, localaws.Queue{Name: "events", FIFO: true})
	ctx := testenv.Context(t, 60*time.Second)
	for _, url := range []string{std, fifo} {
		p := NewPublisher(e.Client, url)
		// A fixed OccurredAt: kumo answers a deduplicated FIFO send with the
		// first message's MD5, which fails the SDK's checksum check when
		// the bodies differ (SQS does not).
		ev := Event{Type: EventAccessDenied, TaskID: "t-1", CustomerID: "acme", SubmissionID: "s-1",
			OccurredAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
			Attachments: []AttachmentResult{{Source: "s3://x/y", Status: "access_denied", Mode: "delegated",
				Error: &AttachmentError{Stage: "assume_role", Code: "AccessDenied", Message: "m", Hint: "h"}}}}
		if err := p.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, ev); err != nil { // a redelivered task publishes again
			t.Fatal(err)
		}
		out, err := e.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Standard queues deliver both publishes (more if a send's reply was
		// lost and the SDK sent again: at-least-once); FIFO deduplicates by
		// event id. Every copy is the same event.
		if url == fifo && len(out.Messages) != 1 || url == std && len(out.Messages) < 2 {
			t.Fatalf("%s: %d events, want %s", queueName(url), len(out.Messages), map[bool]string{true: "1", false: "2 or more"}[url == fifo])
		}
		for _, m := range out.Messages {
			var e Event
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil || e.EventID != "t-1/s-1/access_denied" {
				t.Fatalf("%s: event %v: %s", queueName(url), err, aws.ToString(m.Body))
			}
		}
		m := out.Messages[0]
		if aws.ToString(m.MessageAttributes[AttrType].StringValue) != EventAccessDenied ||
			aws.ToString(m.MessageAttributes[AttrCustomerID].StringValue) != "acme" ||
			aws.ToString(m.MessageAttributes[AttrType].DataType) != "String" {
			t.Errorf("%s: attributes %v", queueName(url), m.MessageAttributes)
		}
		var got Event
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &got); err != nil {
			t.Fatal(err)
		}
		if got.EventID != "t-1/s-1/access_denied" || got.Version != 1 || !got.OccurredAt.Equal(ev.OccurredAt) ||
			got.Attachments[0].Error.Stage != "assume_role" {
			t.Errorf("event %+v", got)
		}
	}
}

func TestPublisherRetriesServerErrors(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "events"})
	ctx := testenv.Context(t, 60*time.Second)
	// 4 faults outlast the SDK's 3 attempts; the publisher's retry wins.
	if err := e.Stack.InjectFault(localaws.Fault{Operation: "sqs:SendMessage", Status: 503, Code: "ServiceUnavailable", Count: 4}); err != nil {
		t.Fatal(err)
	}
	if err := NewPublisher(e.Client, url).Publish(ctx, Event{Type: EventCompleted, TaskID: "t-1", CustomerID: "c"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.Depth(t, url); v != 1 {
		t.Errorf("events queue holds %d, want 1", v)
	}
	if err := e.Stack.InjectFault(localaws.Fault{Operation: "sqs:SendMessage", Status: 400, Code: "InvalidParameterValue"}); err != nil {
		t.Fatal(err)
	}
	err := NewPublisher(e.Client, url).Publish(ctx, Event{Type: EventCompleted, TaskID: "t-2", CustomerID: "c"})
	if err == nil {
		t.Fatal("publish succeeded through a client error")
	}
	if st := e.Stack.Stats()["sqs:SendMessage"]; st["fault"] != 4+1 {
		t.Errorf("SendMessage stats %v: a client error must not be retried", st)
	}
}

func TestSendToDLQ(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	dlq := e.Queue(t, localaws.Queue{Name: "tasks-dlq"})
	fifo := e.Queue(t, localaws.Queue{Name: "tasks", FIFO: true})
	fifoDLQ := e.Queue(t, localaws.Queue{Name: "tasks-dlq", FIFO: true})
	ctx := testenv.Context(t, 60*time.Second)
	for _, q := range []struct{ src, dlq string }{{url, dlq}, {fifo, fifoDLQ}} {
		in := &sqs.SendMessageInput{QueueUrl: aws.String(q.src), MessageBody: aws.String("not json {"),
			MessageAttributes: map[string]types.MessageAttributeValue{"origin": stringAttr("legacy"), AttrCustomerID: stringAttr("acme")}}
		if q.src == fifo {
			in.MessageGroupId, in.MessageDeduplicationId = aws.String("acme"), aws.String("d-1")
		}
		if _, err := e.Client.SendMessage(ctx, in); err != nil {
			t.Fatal(err)
		}
		c := consumer(t, e, groupFromCustomer{e.Client}, ConsumerOptions{QueueURL: q.src, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
		l := receiveN(ctx, t, c, 1)[0]
		_, derr := task.Decode(l.Body, task.Limits{})
		var ite *task.InvalidError
		if !errors.As(derr, &ite) {
			t.Fatalf("decode: %v", derr)
		}
		dl := NewDeadLetter(e.Client)
		if err := dl.SendToDLQ(ctx, q.dlq, l, ite.Reason, ite.Detail); err != nil {
			t.Fatal(err)
		}
		if err := l.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		msgs, err := dl.Peek(ctx, q.dlq, 10)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: peek %d messages, err %v", queueName(q.dlq), len(msgs), err)
		}
		m := msgs[0]
		if m.Body != "not json {" || m.Attributes["origin"] != "legacy" || m.Attributes[AttrRejectReason] != task.ReasonNotJSON ||
			m.Attributes[AttrRejectDetail] == "" || m.Attributes[AttrOriginalMessageID] != l.MessageID || m.OriginalMessageID != l.MessageID {
			t.Errorf("%s: dead letter %+v", queueName(q.dlq), m)
		}
		if v, f := e.Depth(t, q.src); v != 0 || f != 0 {
			t.Errorf("%s still holds %d/%d", queueName(q.src), v, f)
		}
	}
}

func TestPeekDoesNotConsume(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	dlq := e.Queue(t, localaws.Queue{Name: "tasks-dlq"})
	ctx := testenv.Context(t, 60*time.Second)
	for i := range 13 {
		if _, err := e.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	dl := NewDeadLetter(e.Client)
	before, _ := e.Depth(t, dlq)
	msgs, err := dl.Peek(ctx, dlq, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 13 {
		t.Errorf("peeked %d messages, want 13", len(msgs))
	}
	// kumo keeps a message made visible with ChangeMessageVisibility(0)
	// counted as NotVisible until the next receive sweeps it (SQS counts it
	// visible at once), so compare totals here; the receive below is the
	// real check that nothing was consumed.
	after, inflight := e.Depth(t, dlq)
	if before != 13 || after+inflight != before {
		t.Errorf("depth before %d, after %d (+%d in flight)", before, after, inflight)
	}
	held, err := dl.Hold(ctx, dlq, 20, 30*time.Second)
	if err != nil || len(held) != 13 {
		t.Fatalf("messages not receivable right after peek: %d, %v", len(held), err)
	}
	if err := dl.Return(ctx, dlq, held); err != nil {
		t.Fatal(err)
	}
}

// TestMoveSendsFirst: a failed send leaves the original in the DLQ; a
// successful move lands the copy with ferry-replayed and empties the DLQ.
func TestMoveSendsFirst(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	dlq := e.Queue(t, localaws.Queue{Name: "tasks-dlq"})
	ctx := testenv.Context(t, 60*time.Second)
	body, _ := task.Encode(newTask("t-1", "acme"), task.Limits{})
	if _, err := e.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{AttrTaskID: stringAttr("t-1"), AttrRejectReason: stringAttr("x")}}); err != nil {
		t.Fatal(err)
	}
	dl := NewDeadLetter(e.Client)
	held, err := dl.Hold(ctx, dlq, 1, 30*time.Second)
	if err != nil || len(held) != 1 {
		t.Fatalf("hold: %d, %v", len(held), err)
	}
	if err := e.Stack.InjectFault(localaws.Fault{Operation: "sqs:SendMessage", Status: 400, Code: "InvalidParameterValue"}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Move(ctx, dlq, url, held[0]); err == nil {
		t.Fatal("move succeeded while sends fail")
	}
	e.Stack.ClearFaults()
	if v, f := e.Depth(t, dlq); v+f != 1 {
		t.Fatalf("DLQ holds %d+%d after a failed move, want the original", v, f)
	}
	// A delete that fails after the send: the message is in both queues,
	// and the error says so.
	if err := e.Stack.InjectFault(localaws.Fault{Operation: "sqs:DeleteMessage", Status: 400, Code: "InvalidParameterValue", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Move(ctx, dlq, url, held[0]); !errors.Is(err, ErrNotDeleted) {
		t.Fatalf("Move with a failing delete = %v, want ErrNotDeleted", err)
	}
	if v, f := e.Depth(t, url); v+f != 1 {
		t.Fatalf("tasks queue holds %d+%d after a sent-not-deleted move, want the copy", v, f)
	}
	if _, err := e.Client.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Move(ctx, dlq, url, held[0]); err != nil {
		t.Fatal(err)
	}
	if v, f := e.Depth(t, dlq); v+f != 0 {
		t.Errorf("DLQ holds %d+%d after move", v, f)
	}
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
	l := receiveN(ctx, t, c, 1)[0]
	if string(l.Body) != string(body) || l.Attributes[AttrReplayed] != "1" || l.Attributes[AttrTaskID] != "t-1" ||
		l.Attributes[AttrOriginalMessageID] != held[0].MessageID {
		t.Errorf("replayed message: body %q attributes %v", l.Body, l.Attributes)
	}
	if err := dl.Move(ctx, dlq, url, DLQMessage{MessageID: "peeked"}); err == nil {
		t.Error("Move of a message that is not held succeeded")
	}
}

// TestLeaseLost deletes a leased message behind the consumer's back: the
// heartbeat finds out, Lost() closes, and Ack reports ErrLeaseLost without
// calling SQS.
func TestLeaseLost(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "a"))
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 2 * time.Second})
	ctx := testenv.Context(t, 60*time.Second)

	l := receiveN(ctx, t, c, 1)[0]
	if _, err := e.Client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(l.handle)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-ctx.Done():
		t.Fatal("heartbeat never noticed the lost lease")
	}
	if err := l.Ack(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Ack of a lost lease = %v, want ErrLeaseLost", err)
	}
	if calls := e.Stack.Stats()["sqs:DeleteMessageBatch"]; len(calls) != 0 {
		t.Errorf("Ack of a lost lease called SQS: %v", calls)
	}
	if n := c.inFlight(); n != 0 {
		t.Errorf("in flight: %d after the lease was lost", n)
	}
}

// TestAckAsyncHoldsGroup: AckAsync returns before the delete is answered,
// and the next lease of the FIFO group runs only once it was, seeing the
// message acked (not halted, as after a release).
func TestAckAsyncHoldsGroup(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks", FIFO: true})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("a-0", "ga"), newTask("a-1", "ga"))
	// An hour's batch window: the first ack is answered only by Close.
	c := consumer(t, e, groupFromCustomer{e.Client}, ConsumerOptions{QueueURL: url, WaitTime: time.Second,
		VisibilityTimeout: 30 * time.Second, AckBatchWindow: time.Hour})
	seq := NewSequencer()
	ctx := testenv.Context(t, 60*time.Second)
	leases := receiveN(ctx, t, c, 2)

	var acked <-chan error
	if err := seq.Run(ctx, leases[0], func(context.Context) error {
		acked = leases[0].AckAsync(ctx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acked:
		t.Fatalf("AckAsync answered (%v) before its batch was sent", err)
	default:
	}
	second := make(chan error, 1)
	var sawAcked bool
	go func() {
		second <- seq.Run(ctx, leases[1], func(ctx context.Context) error {
			sawAcked = leases[0].acked()
			return leases[1].Release(ctx)
		})
	}()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-acked; err != nil {
		t.Fatalf("async ack: %v", err)
	}
	if err := <-second; errors.Is(err, ErrGroupHalted) || !sawAcked {
		t.Fatalf("next lease of the group: Run = %v, ran after the ack = %v; want it run once the first was acked", err, sawAcked)
	}
}

// TestCloseFlushesAcks: an ack waiting for its batch window is sent by
// Close, and Close stops Receive and later acks.
func TestCloseFlushesAcks(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "a"), newTask("t-2", "a"))
	reg := prometheus.NewRegistry()
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second,
		AckBatchWindow: time.Hour, Metrics: NewMetrics(reg)})
	ctx := testenv.Context(t, 60*time.Second)

	leases := receiveN(ctx, t, c, 2)
	ackErr := make(chan error, 1)
	go func() { ackErr <- leases[0].Ack(ctx) }()
	for c.deletes.queued.Load() == 0 {
		runtime.Gosched()
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-ackErr; err != nil {
		t.Fatalf("ack pending at Close: %v", err)
	}
	if err := leases[1].Ack(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close = %v, want ErrClosed", err)
	}
	if _, err := c.Receive(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close = %v, want ErrClosed", err)
	}
	if v, f := e.Depth(t, url); v+f != 1 {
		t.Errorf("queue holds %d+%d, want only the unacked message", v, f)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	want := map[string]float64{"ferry_queue_messages_received_total": 2, "ferry_queue_messages_acked_total": 1}
	var sawAge bool
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ferry_queue_message_age_seconds" {
			sawAge = true
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 2 {
				t.Errorf("ferry_queue_message_age_seconds observed %d receipts, want 2", n)
			}
		}
		if w, ok := want[mf.GetName()]; ok {
			if got := mf.GetMetric()[0].GetCounter().GetValue(); got != w {
				t.Errorf("%s = %v, want %v", mf.GetName(), got, w)
			}
			delete(want, mf.GetName())
		}
	}
	if len(want) != 0 {
		t.Errorf("metrics not gathered: %v", want)
	}
	if !sawAge {
		t.Error("ferry_queue_message_age_seconds not gathered")
	}
}

// TestReceiveError: a failing ReceiveMessage surfaces as a wrapped error and
// the consumer recovers when the endpoint does.
func TestReceiveError(t *testing.T) {
	t.Parallel()
	e := testenv.NewSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "a"))
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
	ctx := testenv.Context(t, 60*time.Second)
	if err := e.Stack.InjectFault(localaws.Fault{Operation: "sqs:ReceiveMessage", Status: 403, Code: "AccessDenied", Count: 2}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := c.Receive(ctx, 1)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			t.Fatalf("Receive = %v, want the AccessDenied API error", err)
		}
	}
	if l := receiveN(ctx, t, c, 1); l[0].ReceiveCount != 1 {
		t.Errorf("ReceiveCount = %d", l[0].ReceiveCount)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Receive(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive with a cancelled context = %v", err)
	}
}

// Requeue puts a message off without spending its receive count: the copy
// arrives after the delay with ReceiveCount 1 and ferry-deferred counted,
// and the original is gone.
func TestRequeueKeepsReceiveBudget(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "tasks"})
	mustSend(t, NewProducer(e.Client, url, task.Limits{}), newTask("t-1", "a"))
	c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
	ctx := testenv.Context(t, 60*time.Second)
	for round := 1; round <= 3; round++ {
		l := receiveN(ctx, t, c, 1)[0]
		if l.ReceiveCount != 1 {
			t.Fatalf("round %d: receive count %d, want 1 (requeues must not count)", round, l.ReceiveCount)
		}
		if got := l.Attributes[AttrDeferred]; round > 1 && got != strconv.Itoa(round-1) {
			t.Fatalf("round %d: %s = %q", round, AttrDeferred, got)
		}
		if l.Attributes[AttrTaskID] != "t-1" {
			t.Fatalf("round %d: attributes lost: %v", round, l.Attributes)
		}
		if err := l.Requeue(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
		if v, f := e.Depth(t, url); v+f > 1 {
			t.Fatalf("round %d: queue holds %d+%d: the original was not deleted", round, v, f)
		}
	}
}
