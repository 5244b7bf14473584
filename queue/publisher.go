package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.opentelemetry.io/otel/attribute"
)

// Publisher publishes terminal task events to the events queue.
type Publisher struct {
	api      SQSAPI
	queueURL string
	fifo     bool
	// Metrics is optional.
	Metrics *Metrics
}

// NewPublisher returns a Publisher for eventsQueueURL; a URL ending in
// ".fifo" makes it group events by customer and deduplicate by event id.
func NewPublisher(api SQSAPI, eventsQueueURL string) *Publisher {
	return &Publisher{api: api, queueURL: eventsQueueURL, fifo: isFIFO(eventsQueueURL)}
}

// publishAttempts is on top of the SDK's own retries, so only a short
// outage is ridden out here; longer ones fail the task's processing and
// the message is retried from the queue.
const publishAttempts = 3

// Publish sends e as JSON with the String message attributes type and
// customer_id (omitted when the event has no customer: a rejected message
// whose customer could not be read still announces its task). Missing Version, EventID and OccurredAt are filled in
// (EventID from EventID(TaskID, SubmissionID, Type)). Transient SQS errors
// are retried a few times; a redelivered task publishes the same event id,
// so consumers deduplicate duplicates that a retry may cause.
func (p *Publisher) Publish(ctx context.Context, e Event) (err error) {
	e, body, err := encodeEvent(e)
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{
		QueueUrl:    aws.String(p.queueURL),
		MessageBody: aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{
			AttrType: stringAttr(e.Type),
		},
	}
	if e.CustomerID != "" {
		in.MessageAttributes[AttrCustomerID] = stringAttr(e.CustomerID)
	}
	_, span := startSendSpan(ctx, p.queueURL, in.MessageAttributes, func() []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("ferry.event_id", e.EventID), attribute.String("ferry.event_type", e.Type)}
	})
	var out *sqs.SendMessageOutput
	defer func() {
		var id *string
		if out != nil {
			id = out.MessageId
		}
		endSpan(span, id, err)
	}()
	if p.fifo {
		group := e.CustomerID
		if group == "" {
			group = "unknown-customer"
		}
		in.MessageGroupId = aws.String(group)
		in.MessageDeduplicationId = aws.String(DeduplicationID(e.EventID))
	}
	for attempt := 1; ; attempt++ {
		out, err = p.api.SendMessage(ctx, in)
		if err == nil {
			p.Metrics.publishedEvent(e.Type)
			return nil
		}
		p.Metrics.sqsError("SendMessage")
		if attempt >= publishAttempts || !transient(err) || !pause(ctx, attempt) {
			return fmt.Errorf("publish %s: %w", e.EventID, err)
		}
	}
}

// encodeEvent fills in the defaults Publish documents and encodes e.
func encodeEvent(e Event) (Event, []byte, error) {
	if e.TaskID == "" || e.Type == "" {
		return e, nil, errors.New("queue: event needs task_id and type")
	}
	if e.Version == 0 {
		e.Version = EventVersion
	}
	if e.EventID == "" {
		e.EventID = EventID(e.TaskID, e.SubmissionID, e.Type)
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = time.Now().UTC()
	}
	body, err := json.Marshal(e)
	if err != nil {
		return e, nil, fmt.Errorf("publish %s: encode: %w", e.EventID, err)
	}
	return e, body, nil
}

// transient reports whether err is worth another try: throttling, server
// faults and connection failures, not client errors.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if ae.ErrorFault() == smithy.FaultServer {
			return true
		}
		return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool()
	}
	// No API error: the request never got an answer (e.g. a connection
	// reset after the SDK's own retries).
	return true
}
