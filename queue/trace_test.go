package queue

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.opentelemetry.io/otel/trace"
)

// A delivery continues the trace it was sent with: the W3C traceparent
// message attribute first, else the AWSTraceHeader system attribute that
// X-Ray-instrumented producers (and AWS services) set.
func TestLeaseTraceContext(t *testing.T) {
	t.Parallel()
	const (
		tp   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	)
	for _, c := range []struct {
		name           string
		attrs          map[string]types.MessageAttributeValue
		system         map[string]string
		trace, parent  string
		sampled, valid bool
	}{
		{"traceparent", map[string]types.MessageAttributeValue{AttrTraceParent: stringAttr(tp)}, nil,
			"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true, true},
		{"traceparent wins over AWSTraceHeader", map[string]types.MessageAttributeValue{AttrTraceParent: stringAttr(tp)},
			map[string]string{string(types.MessageSystemAttributeNameAWSTraceHeader): xray},
			"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true, true},
		{"AWSTraceHeader", nil, map[string]string{string(types.MessageSystemAttributeNameAWSTraceHeader): xray},
			"5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", true, true},
		{"AWSTraceHeader without a parent", nil, map[string]string{string(types.MessageSystemAttributeNameAWSTraceHeader): "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"},
			"", "", false, false},
		{"AWSTraceHeader with a bad root", nil, map[string]string{string(types.MessageSystemAttributeNameAWSTraceHeader): "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"},
			"", "", false, false},
		{"AWSTraceHeader not sampled", nil, map[string]string{string(types.MessageSystemAttributeNameAWSTraceHeader): "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"},
			"5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", false, true},
		{"neither", map[string]types.MessageAttributeValue{AttrCustomerID: stringAttr("acme")}, nil, "", "", false, false},
		{"malformed traceparent", map[string]types.MessageAttributeValue{AttrTraceParent: stringAttr("00-zz")}, nil, "", "", false, false},
	} {
		l := (&Consumer{}).newLease(types.Message{MessageId: aws.String("m"), Body: aws.String("{}"),
			MessageAttributes: c.attrs, Attributes: c.system}, time.Now())
		sc := trace.SpanContextFromContext(l.TraceContext(context.Background()))
		if sc.IsValid() != c.valid {
			t.Errorf("%s: valid = %v", c.name, sc.IsValid())
			continue
		}
		if !c.valid {
			continue
		}
		if sc.TraceID().String() != c.trace || sc.SpanID().String() != c.parent || sc.IsSampled() != c.sampled || !sc.IsRemote() {
			t.Errorf("%s: got trace %s parent %s sampled %v remote %v", c.name, sc.TraceID(), sc.SpanID(), sc.IsSampled(), sc.IsRemote())
		}
	}
}

// A message sent with a span in its context carries traceparent; without
// one it carries nothing extra.
func TestInjectTrace(t *testing.T) {
	t.Parallel()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	attrs := map[string]types.MessageAttributeValue{}
	injectTrace(ctx, attrs)
	if got := aws.ToString(attrs[AttrTraceParent].StringValue); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Errorf("traceparent = %q", got)
	}
	if dt := aws.ToString(attrs[AttrTraceParent].DataType); dt != "String" {
		t.Errorf("DataType = %q", dt)
	}
	empty := map[string]types.MessageAttributeValue{}
	injectTrace(context.Background(), empty)
	if len(empty) != 0 {
		t.Errorf("no span, yet attributes %v", empty)
	}
}
