package testenv

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ferryworks/ferry/internal/localaws"
)

// Context is a context that ends after d or when the test ends, whichever
// comes first: the bound of a test that waits on queues or Redis.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// SQS is a local AWS with an SQS client signing as a fresh account: what a
// test that only needs queues starts with.
type SQS struct {
	Stack *localaws.Stack
	// Account is the account Client signs as.
	Account localaws.Account
	Client  *sqs.Client
	// prefix goes before the name of every queue Queue creates (and of its
	// dead-letter queue) on a shared stack, where queue names are global.
	prefix string
}

// NewSQS starts a stack of the test's own and makes the account. A test
// that reads the stack's call counts or injects faults needs this one.
func NewSQS(t testing.TB) *SQS {
	t.Helper()
	return newSQS(t, LocalAWS(t), "")
}

// NewSharedSQS is NewSQS on the test binary's shared stack (SharedLocalAWS):
// Queue names the test's queues apart from every other test's, so the test
// may use plain names such as "tasks".
func NewSharedSQS(t testing.TB) *SQS {
	t.Helper()
	return newSQS(t, SharedLocalAWS(t), "t"+randHex(4)+"-")
}

func newSQS(t testing.TB, s *localaws.Stack, prefix string) *SQS {
	t.Helper()
	acct, err := s.NewAccount("")
	if err != nil {
		t.Fatal(err)
	}
	return &SQS{Stack: s, Account: acct, Client: sqs.NewFromConfig(s.Config(acct, "")), prefix: prefix}
}

// Queue creates q and returns its URL.
func (e *SQS) Queue(t testing.TB, q localaws.Queue) string {
	t.Helper()
	q.Name = e.prefix + q.Name
	if q.DeadLetter != "" {
		q.DeadLetter = e.prefix + q.DeadLetter
	}
	u, err := e.Stack.CreateQueue(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Depth returns the visible and in-flight message counts of a queue.
func (e *SQS) Depth(t testing.TB, url string) (visible, inflight int) {
	t.Helper()
	out, err := e.Client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inflight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inflight
}

// CollectEvents consumes terminal events from the events queue url until n
// have arrived (failing the test after timeout), then keeps listening for
// quiet so that an extra event is caught too; it decodes each into E (the
// caller's event type: testenv cannot import queue, whose tests use it).
//
// A send whose reply was lost is sent again by the SDK, so the same body
// twice is one publish (at-least-once transport) and is counted once; a
// task handled twice publishes a new body (a new occurred_at) and is
// counted twice. Every event's "type" message attribute must match the
// "type" in its body.
func CollectEvents[E any](t testing.TB, api *sqs.Client, url string, n int, timeout, quiet time.Duration) []E {
	t.Helper()
	var out []E
	seen := map[string]bool{}
	deadline := time.Now().Add(timeout)
	var quietUntil time.Time
	for {
		now := time.Now()
		if len(out) >= n {
			if quietUntil.IsZero() {
				quietUntil = now.Add(quiet)
			}
			if now.After(quietUntil) {
				return out
			}
		} else if now.After(deadline) {
			t.Fatalf("got %d events, want %d: %+v", len(out), n, out)
		}
		res, err := api.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatalf("receive events: %v", err)
		}
		for _, m := range res.Messages {
			body := aws.ToString(m.Body)
			del := func() error {
				_, err := api.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
				return err
			}
			if seen[body] {
				_ = del()
				continue
			}
			seen[body] = true
			var ev E
			var typed struct {
				Type    string `json:"type"`
				EventID string `json:"event_id"`
			}
			if err := json.Unmarshal([]byte(body), &ev); err != nil {
				t.Fatalf("event is not JSON: %v: %s", err, body)
			}
			_ = json.Unmarshal([]byte(body), &typed)
			if got := aws.ToString(m.MessageAttributes["type"].StringValue); got != typed.Type {
				t.Errorf("event %s: type attribute %q, body type %q", typed.EventID, got, typed.Type)
			}
			out = append(out, ev)
			if err := del(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
