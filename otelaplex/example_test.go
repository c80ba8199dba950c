package otelaplex_test

import (
	"context"
	"fmt"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/otelaplex"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

var resize = aplex.Register("example.resize", func(_ context.Context, n int) (int, error) { return n / 2, nil })

// Each work gets a span, a child of the span that submitted it. With
// aplex.RegisterPropagator(otelaplex.Propagator()) at package level (see
// the package doc), the trace goes on in process and cluster workers.
func ExampleObserver() {
	rec := tracetest.NewSpanRecorder() // in production: an exporter
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())

	ex, err := aplex.NewThreadExecutor(aplex.WithObserver(otelaplex.Observer(otelaplex.WithTracerProvider(tp))))
	if err != nil {
		panic(err)
	}
	defer ex.Close()

	ctx, req := tp.Tracer("http").Start(context.Background(), "GET /thumbnail")
	f, err := aplex.Submit(ctx, ex, resize, 640)
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Get(ctx))
	req.End()

	for _, s := range rec.Ended() {
		fmt.Printf("%s (child of the request: %v)\n", s.Name(), s.Parent().SpanID() == req.SpanContext().SpanID())
	}
	// Output:
	// 320 <nil>
	// example.resize (child of the request: true)
	// GET /thumbnail (child of the request: false)
}
