package worker

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/tracing"
)

// endProcessSpan records what became of the delivery on its span. Only a
// failure of ferry's own (a retry, a rejected message) is an error status:
// access denied and failed are answers given to the customer.
func endProcessSpan(span trace.Span, rep Report) {
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("ferry.outcome", string(rep.Outcome)),
			attribute.String("ferry.task_id", rep.TaskID),
			attribute.String("ferry.customer_id", rep.CustomerID),
			attribute.String("ferry.event_id", rep.EventID),
			attribute.Int64("ferry.copied_bytes", rep.Bytes),
		)
		if rep.Err != nil {
			span.RecordError(rep.Err)
			if rep.Outcome == OutcomeRetried || rep.Outcome == OutcomeRejected {
				span.SetStatus(codes.Error, rep.Err.Error())
			}
		}
	}
	span.End()
}

// startCopySpan starts the span of copying attachment i. The URI is not
// recorded: it may be a presigned URL whose query is a credential.
func startCopySpan(ctx context.Context, i int) (context.Context, trace.Span) {
	return tracing.Start(ctx, "copy", func() []trace.SpanStartOption {
		return []trace.SpanStartOption{trace.WithAttributes(attribute.Int("ferry.attachment.index", i))}
	})
}

func endCopySpan(span trace.Span, r fetcher.Result, err error) {
	if span.IsRecording() {
		if err != nil {
			var fe *fetcher.Error
			if errors.As(err, &fe) {
				span.SetAttributes(attribute.String("ferry.copy.error_kind", string(fe.Kind)), attribute.String("ferry.copy.mode", string(fe.Mode)))
			}
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else {
			span.SetAttributes(attribute.String("ferry.copy.mode", string(r.Mode)), attribute.Int64("ferry.copy.bytes", r.Size))
		}
	}
	span.End()
}
