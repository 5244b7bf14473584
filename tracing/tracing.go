// Package tracing sets up ferry's OpenTelemetry traces from the standard
// OTEL_* environment variables and names the tracer every package records
// with. Tracing is off unless an OTLP endpoint is set: the global tracer
// provider then stays OpenTelemetry's no-op, whose spans cost a context
// lookup and no allocation.
//
// Trace context crosses the queues as the W3C traceparent message attribute
// (package queue injects and extracts it), so one trace runs from `ferry
// enqueue` through the worker's task to the terminal event.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ferryworks/ferry/internal/buildinfo"
)

// Name is the instrumentation scope of ferry's spans.
const Name = "github.com/ferryworks/ferry"

var on atomic.Bool

// On reports whether tracing is on in this process. Instrumented code
// checks it before building a span's attributes, so that tracing off costs
// one atomic load per span and nothing else.
func On() bool { return on.Load() }

// Tracer returns ferry's tracer from the global provider.
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Start starts a span with ferry's tracer when tracing is on; otherwise it
// returns ctx and a no-op span without touching the global provider. opts
// is called only when tracing is on (building attributes allocates).
func Start(ctx context.Context, name string, opts func() []trace.SpanStartOption) (context.Context, trace.Span) {
	if !on.Load() {
		return ctx, noop.Span{}
	}
	var o []trace.SpanStartOption
	if opts != nil {
		o = opts()
	}
	return Tracer().Start(ctx, name, o...)
}

// Use makes tp the global tracer provider and turns tracing on; Setup calls
// it, and tests that record spans in memory. Use(nil) turns tracing off.
func Use(tp trace.TracerProvider) {
	if tp == nil {
		on.Store(false)
		otel.SetTracerProvider(noop.NewTracerProvider())
		return
	}
	otel.SetTracerProvider(tp)
	on.Store(true)
}

// Enabled reports whether the environment asks for traces: an OTLP endpoint
// is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
// and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says
// otherwise. Without an endpoint the OTLP exporter would send to
// localhost:4318 by default; ferry stays quiet instead.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) == "none" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup turns tracing on when Enabled(getenv) and returns the function that
// flushes and stops it (call it before the process exits; it is a no-op
// when tracing is off). The exporter, protocol (OTEL_EXPORTER_OTLP_PROTOCOL,
// default http/protobuf), headers, sampler (OTEL_TRACES_SAMPLER…), batching
// (OTEL_BSP_*) and resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) are
// read from the environment by the OpenTelemetry SDK itself, as every
// OpenTelemetry SDK does, rather than through package config: operators set
// them the same way for every service. service.name defaults to
// defaultService and service.version is the build's version.
func Setup(ctx context.Context, getenv func(string) string, defaultService string) (shutdown func(context.Context) error, err error) {
	if !Enabled(getenv) {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w (check OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_PROTOCOL, or unset OTEL_EXPORTER_OTLP_ENDPOINT to turn tracing off)", err)
	}
	// Later options win: the environment overrides the defaults.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(defaultService), semconv.ServiceVersion(buildinfo.Get().Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w (check OTEL_RESOURCE_ATTRIBUTES)", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	Use(tp)
	return tp.Shutdown, nil
}
