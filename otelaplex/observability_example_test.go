package otelaplex_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/otelaplex"
	"github.com/aplex-go/aplex/promaplex"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
)

// In a program, register the propagator at package level, so that the
// re-executed worker binary registers it too (this test file does, above):
//
//	var _ = aplex.RegisterPropagator(otelaplex.Propagator())
//
// then observe the executor with traces, metrics and logs. This is the
// README's "Observability" sample.
func Example_observability() {
	metrics := promaplex.New("resize")
	prometheus.NewRegistry().MustRegister(metrics) // or prometheus.MustRegister, and serve promhttp.Handler()

	ex, err := aplex.NewProcessExecutor(
		aplex.WithPoolSize(2),
		aplex.WithObserver(otelaplex.Observer()),                        // a span per work, in the caller's trace
		aplex.WithObserver(metrics),                                     // aplex_works_total, aplex_work_queue_seconds, …
		aplex.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))), // worker lost, restarted
	)
	if err != nil {
		panic(err)
	}
	defer ex.Close()

	ctx, span := otel.Tracer("app").Start(context.Background(), "request")
	defer span.End()
	inputs := func(yield func(int) bool) {
		for _, n := range []int{640, 1024, 2048} {
			if !yield(n) {
				return
			}
		}
	}
	for v, err := range aplex.Map(ctx, ex, resize, inputs, aplex.OnProgress(func(p aplex.Progress) {
		fmt.Fprintf(os.Stderr, "\r%d done, %d failed, %d in flight after %v", p.Done, p.Failed, p.InFlight, p.Elapsed)
	})) {
		if err != nil {
			panic(err)
		}
		fmt.Println(v)
	}
	// Output:
	// 320
	// 512
	// 1024
}
