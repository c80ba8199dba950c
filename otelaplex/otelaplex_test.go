package otelaplex_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/otelaplex"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

// The propagator is registered at package level, in the test process and
// in its worker processes alike.
var _ = aplex.RegisterPropagator(otelaplex.Propagator())

func TestMain(m *testing.M) {
	if os.Getenv("APLEX_WORKER_ROLE") != "" {
		// A worker process with a TracerProvider of its own: its spans
		// record their parent, which the work reports back.
		otel.SetTracerProvider(sdktrace.NewTracerProvider())
	}
	aplex.Main()
	goleak.VerifyTestMain(m)
}

// Seen is what a work saw of its trace: the span it started and that
// span's parent.
type Seen struct {
	TraceID, SpanID, ParentSpanID string
	PID                           int
}

var (
	inner = aplex.Register("otelaplex.inner", func(ctx context.Context, _ int) (Seen, error) {
		_, span := otel.Tracer("work").Start(ctx, "inner")
		defer span.End()
		s := Seen{TraceID: span.SpanContext().TraceID().String(), SpanID: span.SpanContext().SpanID().String(), PID: os.Getpid()}
		if ro, ok := span.(sdktrace.ReadOnlySpan); ok {
			s.ParentSpanID = ro.Parent().SpanID().String()
		} else {
			s.ParentSpanID = trace.SpanContextFromContext(ctx).SpanID().String() // no SDK here: the ctx's span
		}
		return s, nil
	})
	failing = aplex.Register("otelaplex.fail", func(context.Context, int) (int, error) { return 0, errors.New("boom") })
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestTraceReachesProcessWorker: the span of a work is a child of the
// caller's span; inside the worker process, the span the work starts is a
// child of the work's span, in the caller's trace.
func TestTraceReachesProcessWorker(t *testing.T) {
	for _, kind := range []string{"process", "thread"} {
		t.Run(kind, func(t *testing.T) {
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			defer tp.Shutdown(context.Background())
			obs := otelaplex.Observer(otelaplex.WithTracerProvider(tp))
			var ex *aplex.Executor
			var err error
			if kind == "process" {
				ex, err = aplex.NewProcessExecutor(aplex.WithPoolSize(1), aplex.WithObserver(obs))
			} else {
				ex, err = aplex.NewThreadExecutor(aplex.WithPoolSize(1), aplex.WithObserver(obs))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()

			ctx, req := tp.Tracer("test").Start(ctxT(t), "request")
			f, err := aplex.Submit(ctx, ex, inner, 0)
			if err != nil {
				t.Fatal(err)
			}
			seen, err := f.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			fails, err := aplex.Submit(ctx, ex, failing, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fails.Get(ctx); err == nil {
				t.Fatal("no error")
			}
			req.End()

			caller := req.SpanContext()
			if seen.TraceID != caller.TraceID().String() {
				t.Fatalf("the worker's span is in trace %s, the caller's is %s", seen.TraceID, caller.TraceID())
			}
			if kind == "process" && seen.PID == os.Getpid() {
				t.Fatal("the work ran in the test process")
			}
			spans := map[string]sdktrace.ReadOnlySpan{}
			for _, s := range sr.Ended() {
				spans[s.Name()] = s
			}
			work, bad := spans["otelaplex.inner"], spans["otelaplex.fail"]
			if work == nil || bad == nil {
				t.Fatalf("spans recorded: %v", spans)
			}
			if work.Parent().SpanID() != caller.SpanID() || work.SpanContext().TraceID() != caller.TraceID() {
				t.Fatalf("the work span's parent is %v, want the caller's %v", work.Parent(), caller)
			}
			if seen.ParentSpanID != work.SpanContext().SpanID().String() {
				t.Fatalf("the span in the worker has parent %s, want the work span %s", seen.ParentSpanID, work.SpanContext().SpanID())
			}
			a := attrs(work)
			wantWorker := "thread-0"
			if kind == "process" {
				wantWorker = "proc-0"
			}
			if a[otelaplex.AttrExecutor].AsString() != kind || a[otelaplex.AttrWorker].AsString() != wantWorker ||
				a[otelaplex.AttrAttempt].AsInt64() != 1 || a[otelaplex.AttrOutcome].AsString() != "ok" || work.Status().Code == codes.Error {
				t.Fatalf("work span attributes %v, status %v", a, work.Status())
			}
			if b := attrs(bad); b[otelaplex.AttrOutcome].AsString() != "error" || bad.Status().Code != codes.Error || bad.Status().Description != "boom" {
				t.Fatalf("failed work span %v, status %v", b, bad.Status())
			}
		})
	}
}

func TestPropagatorUsesGlobalOrW3C(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "x")
	defer span.End()
	h := map[string]string{}
	otelaplex.Propagator().Inject(ctx, h)
	if h["traceparent"] == "" {
		t.Fatalf("no W3C traceparent without a global propagator: %v", h)
	}
	got := trace.SpanContextFromContext(otelaplex.Propagator().Extract(context.Background(), h))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Fatalf("extracted %v, want %v", got, span.SpanContext())
	}
}
