package queue

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ferryworks/ferry/tracing"
)

// Trace context on messages. Task and event messages carry the W3C Trace
// Context as String message attributes (traceparent, and tracestate when
// there is one); a message sent by an X-Ray-instrumented producer carries
// the AWSTraceHeader system attribute instead, which is read too.
//
// https://www.w3.org/TR/trace-context/
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-message-system-attributes
const (
	AttrTraceParent = "traceparent"
	AttrTraceState  = "tracestate"
)

// w3c is the wire format of the attributes, whatever OTEL_PROPAGATORS says:
// it is a contract between ferry's producers and consumers.
var w3c = propagation.TraceContext{}

type sqsAttr = types.MessageAttributeValue

// attrCarrier reads and writes W3C trace context in SQS message attributes.
type attrCarrier map[string]types.MessageAttributeValue

func (c attrCarrier) Get(key string) string {
	if v, ok := c[key]; ok && v.StringValue != nil {
		return *v.StringValue
	}
	return ""
}

func (c attrCarrier) Set(key, value string) { c[key] = stringAttr(value) }

func (c attrCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// injectTrace writes the trace context of ctx's span into attrs; nothing
// when ctx has none (tracing off and no incoming context).
func injectTrace(ctx context.Context, attrs map[string]types.MessageAttributeValue) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	w3c.Inject(ctx, attrCarrier(attrs))
}

// TraceContext returns ctx with the trace context the message was sent
// with, as a remote parent: the traceparent attribute, else the
// AWSTraceHeader system attribute; ctx unchanged when there is neither.
func (l *Lease) TraceContext(ctx context.Context) context.Context {
	if _, ok := l.msgAttrs[AttrTraceParent]; ok {
		return w3c.Extract(ctx, attrCarrier(l.msgAttrs))
	}
	if sc, ok := parseAWSTraceHeader(l.awsTraceHeader); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// parseAWSTraceHeader reads an X-Ray tracing header,
// "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1":
// the root's epoch and random parts form the 128-bit trace id, Parent is the
// span id. Ours because OpenTelemetry's X-Ray propagator module is
// deprecated and unmaintained.
// https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader
func parseAWSTraceHeader(h string) (trace.SpanContext, bool) {
	if h == "" {
		return trace.SpanContext{}, false
	}
	var cfg trace.SpanContextConfig
	var haveTrace, haveParent bool
	for _, part := range strings.Split(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Root":
			ver, rest, ok := strings.Cut(v, "-")
			epoch, random, ok2 := strings.Cut(rest, "-")
			if !ok || !ok2 || ver != "1" || len(epoch) != 8 || len(random) != 24 {
				return trace.SpanContext{}, false
			}
			id, err := trace.TraceIDFromHex(epoch + random)
			if err != nil {
				return trace.SpanContext{}, false
			}
			cfg.TraceID, haveTrace = id, true
		case "Parent":
			id, err := trace.SpanIDFromHex(v)
			if err != nil {
				return trace.SpanContext{}, false
			}
			cfg.SpanID, haveParent = id, true
		case "Sampled":
			if v == "1" {
				cfg.TraceFlags = trace.FlagsSampled
			}
		}
	}
	if !haveTrace || !haveParent {
		return trace.SpanContext{}, false
	}
	cfg.Remote = true
	sc := trace.NewSpanContext(cfg)
	return sc, sc.IsValid()
}

// StartProcessSpan starts the consumer span of processing this delivery,
// a child of the trace the message came with (TraceContext), with the
// messaging semantic conventions for AWS SQS. The caller ends it.
func (l *Lease) StartProcessSpan(ctx context.Context) (context.Context, trace.Span) {
	if !tracing.On() {
		return ctx, noop.Span{}
	}
	ctx = l.TraceContext(ctx)
	var name, url string
	if l.c != nil {
		url = l.c.opts.QueueURL
		name = queueName(url)
	}
	return tracing.Start(ctx, "process "+name, func() []trace.SpanStartOption {
		return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			semconv.MessagingSystemAWSSQS,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(name),
			semconv.AWSSQSQueueURL(url),
			semconv.MessagingMessageID(l.MessageID),
			attribute.Int("messaging.aws_sqs.receive_count", l.ReceiveCount),
		)}
	})
}

// startSendSpan starts the producer span of sending one message to
// queueURL (the caller ends it) and writes its context into attrs.
func startSendSpan(ctx context.Context, queueURL string, attrs map[string]types.MessageAttributeValue, extra func() []attribute.KeyValue) (context.Context, trace.Span) {
	if !tracing.On() {
		return ctx, noop.Span{}
	}
	name := queueName(queueURL)
	ctx, span := tracing.Start(ctx, "send "+name, func() []trace.SpanStartOption {
		return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(append([]attribute.KeyValue{
			semconv.MessagingSystemAWSSQS,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(name),
			semconv.AWSSQSQueueURL(queueURL),
		}, extra()...)...)}
	})
	injectTrace(ctx, attrs)
	return ctx, span
}

// endSpan records err (if any) and the message id, and ends span.
func endSpan(span trace.Span, messageID *string, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else if id := aws.ToString(messageID); id != "" {
		span.SetAttributes(semconv.MessagingMessageID(id))
	}
	span.End()
}
