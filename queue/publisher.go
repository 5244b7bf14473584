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
		QueueUrl:          aws.String(p.queueURL),
		MessageBody:       aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{},
	}
	for k, v := range eventAttributes(e) {
		in.MessageAttributes[k] = stringAttr(v)
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
		in.MessageGroupId, in.MessageDeduplicationId = fifoKeys(e)
	}
	err = publishRetrying(ctx, p.Metrics, e, "SendMessage", func() (err error) {
		out, err = p.api.SendMessage(ctx, in)
		return err
	})
	if err != nil {
		return fmt.Errorf("publish %s: %w", e.EventID, err)
	}
	return nil
}

// eventAttributes are the String message attributes of e that consumers
// and subscription filter policies select on: type, and customer_id when
// the event has a customer.
func eventAttributes(e Event) map[string]string {
	attrs := map[string]string{AttrType: e.Type}
	if e.CustomerID != "" {
		attrs[AttrCustomerID] = e.CustomerID
	}
	return attrs
}

// fifoKeys are the MessageGroupId and MessageDeduplicationId of e on a FIFO
// queue or topic: its customer's events stay in order (those without a
// customer share one group), and a republished event id is dropped.
func fifoKeys(e Event) (group, dedupe *string) {
	g := e.CustomerID
	if g == "" {
		g = "unknown-customer"
	}
	return aws.String(g), aws.String(DeduplicationID(e.EventID))
}

// publishRetrying calls send until it succeeds, fails with an error that is
// not transient, or has been tried publishAttempts times; op names the call
// in ferry_sqs_errors_total. It returns send's last error.
func publishRetrying(ctx context.Context, m *Metrics, e Event, op string, send func() error) error {
	for attempt := 1; ; attempt++ {
		err := send()
		if err == nil {
			m.publishedEvent(e.Type)
			return nil
		}
		m.sqsError(op)
		if attempt >= publishAttempts || !transient(err) || !pause(ctx, attempt) {
			return err
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
