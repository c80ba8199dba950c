// Observe: what a pool does, seen three ways at once, with nothing
// installed. One command starts a process executor and a cluster executor
// (an embedded NATS server and two local worker processes):
//
//	go run ./examples/observe
//
// It then:
//   - serves both executors' Prometheus metrics (package promaplex) on
//     http://127.0.0.1:<port>/metrics, and prints them before it exits;
//   - traces every work with OpenTelemetry (package otelaplex) to stdout:
//     each work's span is a child of the request span that submitted it,
//     and the span the work starts inside its worker process (printed by
//     that worker: the executor shows it on stderr, labelled "[aplex
//     worker N pid P]") has the same trace id;
//   - draws a progress bar for a Map on the cluster (aplex.OnProgress);
//   - logs worker events (aplex.WithLogger) as JSON on stderr.
//
// It exits by itself after a few seconds; -hold keeps /metrics up longer.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/schollz/progressbar/v3"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/otelaplex"
	"github.com/aplex-go/aplex/promaplex"
)

// The trace context travels with each work to the worker processes: the
// propagator is registered at package level, so they register it too.
var _ = aplex.RegisterPropagator(otelaplex.Propagator())

// Each worker process sets up its own TracerProvider in the worker init:
// code in main after aplex.Main never runs in a worker. Its spans go to
// its stdout, which the executor shows on stderr, labelled.
var _ = aplex.RegisterWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
	if os.Getenv("APLEX_WORKER_ROLE") == "" {
		return ctx, nil // a thread executor's worker: the parent's provider serves
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	if err != nil {
		return nil, err
	}
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	return ctx, nil
})

// resize is a traced work: it starts a span of its own in the worker.
var resize = aplex.Register("example.observe.resize", func(ctx context.Context, n int) (int, error) {
	_, span := otel.Tracer("example").Start(ctx, "resize.compute")
	defer span.End()
	return digest(n, 20_000), nil
})

// thumb is the Map's work: a few milliseconds of CPU, no span of its own.
var thumb = aplex.Register("example.observe.thumb", func(_ context.Context, n int) (int, error) {
	return digest(n, 2_000), nil
})

func digest(n, rounds int) int {
	sum := sha256.Sum256([]byte(fmt.Sprint(n)))
	for range rounds {
		sum = sha256.Sum256(sum[:])
	}
	return int(sum[0])
}

func main() {
	aplex.Main() // first thing: a re-executed binary becomes a worker here

	items := flag.Int("n", 400, "inputs of the cluster Map")
	hold := flag.Duration("hold", 0, "keep serving /metrics this long before exiting")
	flag.Parse()
	if err := run(*items, *hold); err != nil {
		log.Fatal(err)
	}
}

func run(items int, hold time.Duration) error {
	ctx := context.Background()

	// Traces: the stdout exporter, one JSON line per span.
	exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(ctx)
	otel.SetTracerProvider(tp)

	// Metrics: one promaplex.Metrics per executor, served on loopback.
	procMetrics, clusterMetrics := promaplex.New("resize"), promaplex.New("thumbs")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(procMetrics, clusterMetrics)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	metricsURL := "http://" + ln.Addr().String() + "/metrics"
	fmt.Fprintln(os.Stderr, "metrics on", metricsURL)

	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	traces := otelaplex.Observer()

	px, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2), aplex.WithLogger(logger),
		aplex.WithObserver(traces), aplex.WithObserver(procMetrics))
	if err != nil {
		return err
	}
	defer px.Close()
	cx, err := cluster.NewExecutor(cluster.SpawnLocalWorkers(2), aplex.WithLogger(logger),
		aplex.WithObserver(traces), aplex.WithObserver(clusterMetrics))
	if err != nil {
		return err
	}
	defer cx.Close()

	// One request: three traced works on the process executor…
	ctx, req := otel.Tracer("example").Start(ctx, "request")
	fmt.Fprintln(os.Stderr, "trace id", req.SpanContext().TraceID())
	var fs []*aplex.Future[int]
	for i := range 3 {
		f, err := aplex.Submit(ctx, px, resize, i)
		if err != nil {
			return err
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			return err
		}
	}

	// …and a Map on the cluster, with a progress bar on stderr.
	bar := progressbar.NewOptions(items, progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription("thumbs"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	done := 0
	for _, err := range aplex.Map(ctx, cx, thumb, count(items), aplex.ChunkSize(40),
		aplex.OnProgress(func(p aplex.Progress) { bar.Set(p.Done + p.Failed) })) {
		if err != nil {
			return err
		}
		done++
	}
	bar.Finish()
	req.End()
	fmt.Fprintf(os.Stderr, "%d thumbs done\n", done)

	if hold > 0 {
		fmt.Fprintf(os.Stderr, "serving %s for %v\n", metricsURL, hold)
		time.Sleep(hold)
	}
	return printMetrics(metricsURL)
}

// count yields 0 … n-1.
func count(n int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// printMetrics fetches /metrics as Prometheus would and prints the aplex
// series, histogram buckets left out.
func printMetrics(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "GET", url)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "aplex_") && !strings.Contains(line, "_bucket") {
			fmt.Fprintln(os.Stderr, " ", line)
		}
	}
	return nil
}
