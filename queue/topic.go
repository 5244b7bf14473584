package queue

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ferryworks/ferry/tracing"
)

// SNSAPI is the subset of the SNS client TopicPublisher calls; *sns.Client
// satisfies it.
type SNSAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ SNSAPI = (*sns.Client)(nil)

// TopicPublisher publishes terminal task events to an SNS topic, with the
// message attributes Publisher sets on the events queue (type, customer_id,
// traceparent), so subscribers can filter with a filter policy, e.g.
// {"type": ["task.access_denied"]}. Subscribe queues with
// RawMessageDelivery to receive the event JSON itself.
type TopicPublisher struct {
	api      SNSAPI
	topicARN string
	fifo     bool
	// Metrics is optional.
	Metrics *Metrics
}

// NewTopicPublisher returns a TopicPublisher for topicARN; an ARN ending in
// ".fifo" makes it group events by customer and deduplicate by event id.
func NewTopicPublisher(api SNSAPI, topicARN string) *TopicPublisher {
	return &TopicPublisher{api: api, topicARN: topicARN, fifo: isFIFO(topicARN)}
}

// Publish sends e as JSON, filling in defaults as Publisher.Publish does,
// and retries transient SNS errors a few times.
func (p *TopicPublisher) Publish(ctx context.Context, e Event) (err error) {
	e, body, err := encodeEvent(e)
	if err != nil {
		return err
	}
	attrs := map[string]snstypes.MessageAttributeValue{}
	for k, v := range eventAttributes(e) {
		attrs[k] = snsString(v)
	}
	in := &sns.PublishInput{TopicArn: aws.String(p.topicARN), Message: aws.String(string(body)), MessageAttributes: attrs}
	if p.fifo {
		in.MessageGroupId, in.MessageDeduplicationId = fifoKeys(e)
	}
	span := p.startSpan(ctx, e, attrs)
	var out *sns.PublishOutput
	defer func() {
		var id *string
		if out != nil {
			id = out.MessageId
		}
		endSpan(span, id, err)
	}()
	err = publishRetrying(ctx, p.Metrics, e, "SNS.Publish", func() (err error) {
		out, err = p.api.Publish(ctx, in)
		return err
	})
	if err != nil {
		return fmt.Errorf("publish %s to %s: %w", e.EventID, p.topicARN, err)
	}
	return nil
}

// startSpan starts the producer span of the publication and writes its
// context into the message attributes, as on the events queue.
func (p *TopicPublisher) startSpan(ctx context.Context, e Event, attrs map[string]snstypes.MessageAttributeValue) trace.Span {
	if !tracing.On() {
		return noop.Span{}
	}
	name := p.topicARN[strings.LastIndex(p.topicARN, ":")+1:]
	ctx, span := tracing.Start(ctx, "send "+name, func() []trace.SpanStartOption {
		return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
			semconv.MessagingSystemAWSSNS,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(name),
			semconv.AWSSNSTopicARN(p.topicARN),
			attribute.String("ferry.event_id", e.EventID),
			attribute.String("ferry.event_type", e.Type),
		)}
	})
	if trace.SpanContextFromContext(ctx).IsValid() {
		sqsAttrs := map[string]sqsAttr{}
		w3c.Inject(ctx, attrCarrier(sqsAttrs))
		for k, v := range sqsAttrs {
			attrs[k] = snsString(aws.ToString(v.StringValue))
		}
	}
	return span
}

func snsString(v string) snstypes.MessageAttributeValue {
	return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}
