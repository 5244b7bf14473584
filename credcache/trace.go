package credcache

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryworks/ferry/tracing"
)

// startAssumeSpan starts the client span of one STS AssumeRole call (a
// cache miss). The external ID is a secret and is never recorded.
func startAssumeSpan(ctx context.Context, t *target) (context.Context, trace.Span) {
	return tracing.Start(ctx, "assume_role", func() []trace.SpanStartOption {
		return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			semconv.RPCSystemNameKey.String("aws-api"),
			semconv.RPCMethod("STS/AssumeRole"),
			attribute.String("aws.iam.role_arn", t.roleARN),
			attribute.String("ferry.customer_id", t.customerID),
		)}
	})
}

func endAssumeSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		result := "error"
		var ae *AssumeRoleError
		if errors.As(err, &ae) && ae.Denied {
			result = "denied"
		}
		span.SetAttributes(attribute.String("ferry.assume_role.result", result))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
