package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/tracing"
)

// Message attribute names ferry sets on task and event messages.
const (
	AttrCustomerID = "customer_id"
	AttrTaskID     = "task_id"
	AttrType       = "type"
)

// Producer submits tasks to the tasks queue.
type Producer struct {
	api      SQSAPI
	queueURL string
	limits   task.Limits
	fifo     bool
	// GroupID chooses a task's MessageGroupId on a FIFO queue; nil means
	// the customer id, so one customer's tasks are processed in order and
	// different customers in parallel. Ignored on standard queues.
	GroupID func(task.Task) string
	// Progress, when set, is called after each batch with the number of
	// tasks Send has dealt with so far (sent, refused or invalid), for a
	// progress report on a long send.
	Progress func(done int)
}

// NewProducer returns a Producer for queueURL; a URL ending in ".fifo"
// makes it set MessageGroupId and MessageDeduplicationId.
func NewProducer(api SQSAPI, queueURL string, limits task.Limits) *Producer {
	return &Producer{api: api, queueURL: queueURL, limits: limits, fifo: isFIFO(queueURL)}
}

// SendResult is the outcome for one task of Producer.Send: MessageID on
// success, else Err (a *task.InvalidError for a task that was never sent,
// a *BatchEntryError or an API error for one SQS did not take).
type SendResult struct {
	TaskID    string
	MessageID string
	Err       error
}

// Send validates every task, then sends the valid ones with SendMessageBatch
// in batches of at most 10 messages and 256 KiB, retrying transient entry
// failures a few times. It returns one result per task, in order; an
// invalid task fails alone and does not stop the others.
func (p *Producer) Send(ctx context.Context, tasks []task.Task) []SendResult {
	res := make([]SendResult, len(tasks))
	var entries []types.SendMessageBatchRequestEntry
	var owner []int // entries[k] carries tasks[owner[k]]
	var sizes []int
	// One producer span per task: each message starts (or continues) its
	// own trace, which the worker and the task's event carry on.
	var spans []trace.Span
	if tracing.On() {
		spans = make([]trace.Span, len(tasks))
	}
	defer func() {
		for i, sp := range spans {
			if sp != nil {
				endSpan(sp, aws.String(res[i].MessageID), res[i].Err)
			}
		}
	}()
	for i, t := range tasks {
		res[i].TaskID = t.TaskID
		body, err := task.Encode(t, p.limits)
		if err != nil {
			res[i].Err = err
			continue
		}
		e := types.SendMessageBatchRequestEntry{
			MessageBody: aws.String(string(body)),
			MessageAttributes: map[string]types.MessageAttributeValue{
				AttrCustomerID: stringAttr(t.CustomerID),
				AttrTaskID:     stringAttr(t.TaskID),
			},
		}
		if spans != nil {
			_, spans[i] = startSendSpan(ctx, p.queueURL, e.MessageAttributes, func() []attribute.KeyValue {
				return []attribute.KeyValue{attribute.String("ferry.task_id", t.TaskID), attribute.String("ferry.customer_id", t.CustomerID)}
			})
		}
		if p.fifo {
			g := t.CustomerID
			if p.GroupID != nil {
				g = p.GroupID(t)
			}
			e.MessageGroupId = aws.String(g)
			e.MessageDeduplicationId = aws.String(DeduplicationID(t.DedupeKey()))
		}
		size := messageSize(string(body), e.MessageAttributes)
		if size > maxBatchBytes {
			res[i].Err = &task.InvalidError{Reason: task.ReasonTooLarge, TaskID: t.TaskID,
				Detail: fmt.Sprintf("message with attributes is %d bytes, limit %d", size, maxBatchBytes)}
			continue
		}
		entries = append(entries, e)
		owner = append(owner, i)
		sizes = append(sizes, size)
	}
	done := len(tasks) - len(entries) // the invalid ones
	for _, chunk := range chunkBySize(sizes, maxBatchEntries, maxBatchBytes) {
		errs := runBatch(ctx, "SendMessageBatch", len(chunk), nil, func(ctx context.Context, idx []int) (batchOutcome, error) {
			in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.queueURL)}
			for _, j := range idx {
				e := entries[chunk[j]]
				e.Id = aws.String(strconv.Itoa(j))
				in.Entries = append(in.Entries, e)
			}
			out, err := p.api.SendMessageBatch(ctx, in)
			if err != nil {
				return batchOutcome{}, err
			}
			var ids []string
			for _, s := range out.Successful {
				id := aws.ToString(s.Id)
				ids = append(ids, id)
				if j, err := strconv.Atoi(id); err == nil && j < len(chunk) {
					res[owner[chunk[j]]].MessageID = aws.ToString(s.MessageId)
				}
			}
			return outcomeOf(ids, out.Failed), nil
		})
		for j, err := range errs {
			if err != nil {
				res[owner[chunk[j]]].Err = fmt.Errorf("send task %s: %w", tasks[owner[chunk[j]]].TaskID, err)
				res[owner[chunk[j]]].MessageID = ""
			}
		}
		done += len(chunk)
		if p.Progress != nil {
			p.Progress(done)
		}
	}
	return res
}

// SendErrors joins the errors of results, nil when every task was sent.
func SendErrors(results []SendResult) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// DeduplicationID turns a key into a valid FIFO MessageDeduplicationId: the
// key itself when it fits SQS's 128 characters, else its SHA-256 in hex.
func DeduplicationID(key string) string {
	if len(key) <= 128 {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func isFIFO(queueURL string) bool { return strings.HasSuffix(queueURL, ".fifo") }

func stringAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

// messageSize is what SQS counts against its size limit: the body plus each
// attribute's name, type and value.
func messageSize(body string, attrs map[string]types.MessageAttributeValue) int {
	n := len(body)
	for k, v := range attrs {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}
