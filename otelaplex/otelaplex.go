// Package otelaplex traces aplex works with OpenTelemetry: one span per
// work, a child of the span of the code that submitted it, and the trace
// carried into the worker processes and cluster workers that run it.
//
// Register the propagator at package level, so that the re-executed worker
// binary registers it too, and observe the executor:
//
//	var _ = aplex.RegisterPropagator(otelaplex.Propagator())
//
//	ex, err := aplex.NewProcessExecutor(aplex.WithObserver(otelaplex.Observer()))
//
// Each Submit (each Map chunk) then records a span named after the work,
// from its submission to its end, with the attributes aplex.executor
// ("thread", "process", "cluster"), aplex.worker, aplex.attempt,
// aplex.outcome ("ok", "error", "cancelled", "rejected"),
// aplex.items and aplex.queue_wait_ms, and an error status when the work
// failed. The work's ctx carries that span, in whatever process it runs:
// spans the work starts with a TracerProvider of its process (set one up
// in the worker with aplex.RegisterWorkerInit: code in main after
// aplex.Main never runs there) are its children, in the caller's trace.
package otelaplex

import (
	"context"

	"github.com/aplex-go/aplex"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans the Observer
// records.
const ScopeName = "github.com/aplex-go/aplex/otelaplex"

// Attribute keys of the work spans.
const (
	AttrExecutor  = attribute.Key("aplex.executor")
	AttrWork      = attribute.Key("aplex.work")
	AttrItems     = attribute.Key("aplex.items")
	AttrWorker    = attribute.Key("aplex.worker")
	AttrPID       = attribute.Key("aplex.pid")
	AttrAttempt   = attribute.Key("aplex.attempt")
	AttrOutcome   = attribute.Key("aplex.outcome")
	AttrQueueWait = attribute.Key("aplex.queue_wait_ms")
)

// fallback is the propagation used while no global one is set: W3C trace
// context and baggage, OpenTelemetry's usual choice.
var fallback = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Propagator returns an aplex.Propagator over OpenTelemetry's global
// TextMapPropagator (otel.GetTextMapPropagator, read at each use, so one
// set after the registration counts), which carries the caller's span
// context and baggage to process and cluster works. While no global
// propagator is set, as in a worker process whose main never got past
// aplex.Main, it uses W3C trace context and baggage.
func Propagator() aplex.Propagator { return propagator{} }

type propagator struct{}

func textMap() propagation.TextMapPropagator {
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return fallback
}

// Inject writes ctx's trace context into carrier (aplex.Propagator).
func (propagator) Inject(ctx context.Context, carrier map[string]string) {
	textMap().Inject(ctx, propagation.MapCarrier(carrier))
}

// Extract returns ctx with the trace context of carrier (aplex.Propagator).
func (propagator) Extract(ctx context.Context, carrier map[string]string) context.Context {
	return textMap().Extract(ctx, propagation.MapCarrier(carrier))
}

// Option configures Observer.
type Option func(*config)

type config struct {
	tp trace.TracerProvider
}

// WithTracerProvider sets the TracerProvider of the work spans (default:
// the global one, otel.GetTracerProvider, at the time Observer is called).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// Observer returns an aplex.Observer that records a span per work (see the
// package doc). Pass it to an executor with aplex.WithObserver.
func Observer(opts ...Option) aplex.Observer {
	c := config{}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return &observer{tracer: c.tp.Tracer(ScopeName)}
}

type observer struct {
	tracer trace.Tracer
}

// ObserveWork starts the work's span when it is queued, notes its worker
// when it starts and ends it with its outcome.
func (o *observer) ObserveWork(ctx context.Context, e aplex.WorkEvent) context.Context {
	switch e.Kind {
	case aplex.WorkQueued:
		ctx, _ = o.tracer.Start(ctx, e.Work, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(
			AttrExecutor.String(e.Executor), AttrWork.String(e.Work), AttrItems.Int(e.Items),
		))
		return ctx
	case aplex.WorkStarted:
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			span.AddEvent("started", trace.WithAttributes(AttrWorker.String(e.Worker), AttrAttempt.Int(e.Attempt)))
		}
	case aplex.WorkFinished:
		span := trace.SpanFromContext(ctx)
		if !span.IsRecording() {
			return ctx
		}
		attrs := []attribute.KeyValue{AttrOutcome.String(e.Outcome.String()), AttrAttempt.Int(e.Attempt), AttrQueueWait.Float64(float64(e.QueueWait.Microseconds()) / 1000)}
		if e.Attempt > 0 {
			attrs = append(attrs, AttrWorker.String(e.Worker))
			if e.PID > 0 {
				attrs = append(attrs, AttrPID.Int(e.PID))
			}
		}
		span.SetAttributes(attrs...)
		switch e.Outcome {
		case aplex.OutcomeFailed, aplex.OutcomeRejected:
			if e.Err != nil {
				span.RecordError(e.Err)
				span.SetStatus(codes.Error, e.Err.Error())
			} else {
				span.SetStatus(codes.Error, e.Outcome.String())
			}
		}
		span.End()
	}
	return ctx
}

// ObserveWorker records nothing: worker events are not part of a trace.
func (o *observer) ObserveWorker(aplex.WorkerEvent) {}
