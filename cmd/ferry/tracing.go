package main

import (
	"context"
	"os"
	"time"

	"github.com/ferryworks/ferry/tracing"
)

// startTracing turns OpenTelemetry tracing on when the standard OTEL_*
// variables name an OTLP endpoint (see package tracing); otherwise it costs
// nothing.
func (a *app) startTracing(ctx context.Context) error {
	if a.stopTrace != nil {
		return nil
	}
	stop, err := tracing.Setup(ctx, os.Getenv, "ferry")
	if err != nil {
		return err
	}
	a.stopTrace = stop
	return nil
}

// stopTracing flushes the spans still buffered; a collector that does not
// answer within a few seconds loses them rather than holding up the exit.
func (a *app) stopTracing() {
	if a.stopTrace == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.stopTrace(ctx); err != nil {
		a.log.Warn().Err(err).Msg("traces not flushed")
	}
}
