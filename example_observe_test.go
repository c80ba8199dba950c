package aplex_test

import (
	"context"
	"fmt"

	"github.com/aplex-go/aplex"
)

// printer is an Observer that prints what it sees. It embeds nothing and
// switches on Kind with a default: new kinds of event are ignored.
type printer struct{}

func (printer) ObserveWork(ctx context.Context, e aplex.WorkEvent) context.Context {
	switch e.Kind {
	case aplex.WorkQueued:
		fmt.Println("queued", e.Work)
	case aplex.WorkStarted:
		fmt.Println("started on", e.Worker, "attempt", e.Attempt)
	case aplex.WorkFinished:
		fmt.Println("finished:", e.Outcome, e.Err)
	}
	return ctx
}

func (printer) ObserveWorker(e aplex.WorkerEvent) {
	fmt.Println("worker", e.Worker, e.Kind)
}

var half = aplex.Register("example.half", func(_ context.Context, n int) (int, error) { return n / 2, nil })

// An Observer sees each work queued, started on a worker and finished,
// and each worker join, get lost, restart or be recycled: the hook for
// metrics (package promaplex) and traces (package otelaplex).
func ExampleWithObserver() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1), aplex.WithObserver(printer{}))
	if err != nil {
		panic(err)
	}
	defer ex.Close()
	ctx := context.Background()
	f, err := aplex.Submit(ctx, ex, half, 84)
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Get(ctx))
	// Output:
	// worker thread-0 joined
	// queued example.half
	// started on thread-0 attempt 1
	// finished: ok <nil>
	// 42 <nil>
}

// OnProgress reports a Map's progress at most every 100 ms, and once at
// the end, on the goroutine ranging over the results: a progress bar draws
// there (examples/observe draws one with github.com/schollz/progressbar).
func ExampleOnProgress() {
	ex, err := aplex.NewThreadExecutor()
	if err != nil {
		panic(err)
	}
	defer ex.Close()
	inputs := func(yield func(int) bool) {
		for i := range 1000 {
			if !yield(i) {
				return
			}
		}
	}
	var last aplex.Progress
	sum := 0
	for v, err := range aplex.Map(context.Background(), ex, half, inputs, aplex.ChunkSize(50),
		aplex.OnProgress(func(p aplex.Progress) { last = p })) {
		if err != nil {
			panic(err)
		}
		sum += v
	}
	fmt.Println("sum", sum)
	fmt.Printf("done %d, failed %d, in flight %d\n", last.Done, last.Failed, last.InFlight)
	// Output:
	// sum 249500
	// done 1000, failed 0, in flight 0
}
