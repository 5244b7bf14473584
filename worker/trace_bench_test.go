package worker

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/tracing"
)

// BenchmarkTaskTracing measures what tracing adds to one task of two
// attachments in Handle: the process span (extracting the message's trace
// context), a span per copy, and recording the outcome. "off" is the default
// (no OTLP endpoint: OpenTelemetry's no-op provider); "on" records into an
// in-memory exporter, for scale. It swaps the process's tracer provider, so it must not run beside
// anything else that traces (nothing in this package does).
//
//	go test -run '^$' -bench BenchmarkTaskTracing -benchmem ./worker
func BenchmarkTaskTracing(b *testing.B) {
	run := func(b *testing.B) {
		l := &queue.Lease{MessageID: "m-1", ReceiveCount: 1}
		rep := Report{Outcome: OutcomeCompleted, TaskID: "t-1", CustomerID: "acme", EventID: "t-1/completed", Bytes: 2048}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			pctx, span := l.StartProcessSpan(ctx)
			for i := range 2 {
				_, cs := startCopySpan(pctx, i)
				endCopySpan(cs, fetcher.Result{Size: 1024, Mode: fetcher.Mode("delegated")}, nil)
			}
			endProcessSpan(span, rep)
		}
	}
	if tracing.On() {
		b.Fatal("tracing is on before the benchmark turned it on")
	}
	b.Run("off", run)
	b.Run("on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
		tracing.Use(tp)
		defer func() {
			tracing.Use(nil)
			_ = tp.Shutdown(context.Background())
		}()
		run(b)
	})
}
