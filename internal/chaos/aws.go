package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	smithytime "github.com/aws/smithy-go/time"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/queue"
)

// awsSide is the campaign's own view of the fleet's AWS: it talks to the
// gate directly (not through toxiproxy), as the fleet's account.
type awsSide struct {
	s3  *s3.Client
	sqs *sqs.Client
	m   demo.Manifest
}

func newAWS(stack *localaws.Stack, fleet localaws.Account, m demo.Manifest) *awsSide {
	return &awsSide{s3: stack.S3Client(fleet, demo.DefaultRegion), sqs: stack.SQSClient(fleet, demo.DefaultRegion), m: m}
}

// submit sends every planned body, ten per batch, spread evenly over
// `over`, retrying failed entries, and records in led when each was sent.
func (a *awsSide) submit(ctx context.Context, tasks []planned, over time.Duration, led *ledger) error {
	var bodies, ids []string
	for _, t := range tasks {
		for _, b := range t.Bodies {
			bodies, ids = append(bodies, b), append(ids, t.ID)
		}
	}
	start := time.Now()
	batches := (len(bodies) + 9) / 10
	for i := 0; i < len(bodies); i += 10 {
		if !sleepUntil(ctx, start.Add(over*time.Duration(i/10)/time.Duration(batches))) {
			return ctx.Err()
		}
		batch, batchIDs := bodies[i:min(i+10, len(bodies))], ids[i:min(i+10, len(bodies))]
		entries := make([]sqstypes.SendMessageBatchRequestEntry, len(batch))
		for j, b := range batch {
			entries[j] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(b)}
		}
		for attempt := 0; len(entries) > 0; attempt++ {
			if attempt > 20 {
				return fmt.Errorf("enqueue: gave up after %d attempts", attempt)
			}
			out, err := a.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(a.m.Queues.Tasks), Entries: entries})
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			failed := map[string]bool{}
			for _, f := range out.Failed {
				failed[aws.ToString(f.Id)] = true
			}
			var again []sqstypes.SendMessageBatchRequestEntry
			var sent []string
			for _, e := range entries {
				if failed[aws.ToString(e.Id)] {
					again = append(again, e)
				} else {
					j, _ := strconv.Atoi(aws.ToString(e.Id))
					sent = append(sent, batchIDs[j])
				}
			}
			led.markSent(sent, time.Now())
			entries = again
		}
	}
	return nil
}

// collectEvents consumes the events queue into the ledger until ctx ends.
func (a *awsSide) collectEvents(ctx context.Context, led *ledger) {
	a.drain(ctx, a.m.Queues.Events, func(body string) {
		var ev queue.Event
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			led.mu.Lock()
			led.unexpected = append(led.unexpected, "event that is not JSON")
			led.mu.Unlock()
			return
		}
		led.addEvent(ev, time.Now())
	})
}

// collectDLQ consumes the dead-letter queue into the ledger until ctx ends.
func (a *awsSide) collectDLQ(ctx context.Context, led *ledger) {
	a.drain(ctx, a.m.Queues.DLQ, led.addDLQ)
}

func (a *awsSide) drain(ctx context.Context, url string, f func(body string)) {
	for ctx.Err() == nil {
		out, err := a.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30,
		})
		if err != nil {
			_ = smithytime.SleepWithContext(ctx, 200*time.Millisecond)
			continue
		}
		if len(out.Messages) == 0 {
			continue
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			f(aws.ToString(m.Body))
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		// A failed delete redelivers the message after 30 s, which the
		// ledger would count twice; retry until it goes through.
		for attempt := 0; attempt < 50; attempt++ {
			res, err := a.sqs.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del})
			if err == nil && len(res.Failed) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// queueDepth is the tasks queue's visible and in-flight message counts;
// -1, -1 when SQS did not answer (the caller polls again).
func (a *awsSide) queueDepth(ctx context.Context, url string) (visible, inflight int) {
	out, err := a.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}})
	if err != nil {
		return -1, -1
	}
	v, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	d, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)])
	n, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return v + d, n
}
