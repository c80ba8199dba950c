// Isolation: what process workers buy. In one pool, one work calls
// os.Exit, one panics, one spins forever and is cancelled, and the rest
// succeed; the program prints what each got and shows the pool still whole.
//
//	go run ./examples/isolation
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/aplex-go/aplex"
)

// Works must be registered by name at package level: the worker processes
// are this same binary, re-executed, and find the works by name.
var (
	square = aplex.Register("isolation.square", func(_ context.Context, x int) (int, error) {
		time.Sleep(20 * time.Millisecond)
		return x * x, nil
	})
	exit = aplex.Register("isolation.exit", func(context.Context, int) (int, error) {
		os.Exit(3) // would end any in-process pool, and the program with it
		return 0, nil
	})
	panics = aplex.Register("isolation.panic", func(context.Context, int) (int, error) {
		var m map[string]int
		//lint:ignore SA5000 the panic is the point of this work
		m["boom"]++ // assignment to a nil map
		return 0, nil
	})
	spin = aplex.Register("isolation.spin", func(context.Context, int) (int, error) {
		//lint:ignore SA5002 the runaway loop is the point of this work
		for { // ignores its ctx: only killing its process stops it
		}
	})
)

func main() {
	aplex.Main() // in a worker process this serves works and never returns

	ex, err := aplex.NewProcessExecutor(
		aplex.WithPoolSize(2),
		aplex.WithKillGrace(200*time.Millisecond), // how long a cancelled work may ignore its ctx
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	before := pids(ex)
	fmt.Println("workers:", before)

	report := func(name string, f *aplex.Future[int]) {
		v, err := f.Get(ctx)
		var we *aplex.WorkerError
		var pe *aplex.PanicError
		switch {
		case errors.As(err, &we):
			fmt.Printf("%-10s worker died: %v\n", name, we.Reason)
		case errors.As(err, &pe):
			fmt.Printf("%-10s panicked in the worker: %v\n", name, pe.Value)
		case errors.Is(err, context.Canceled):
			fmt.Printf("%-10s cancelled\n", name)
		case err != nil:
			fmt.Printf("%-10s error: %v\n", name, err)
		default:
			fmt.Printf("%-10s = %d\n", name, v)
		}
	}

	// Healthy works keep running on the other worker while one dies.
	ok1 := submit(ctx, ex, square, 7)
	died := submit(ctx, ex, exit, 0)
	report("os.Exit", died)
	report("square(7)", ok1)

	panicked := submit(ctx, ex, panics, 0)
	report("panic", panicked)

	spinning := submit(ctx, ex, spin, 0)
	time.Sleep(100 * time.Millisecond)
	fmt.Println("cancel the spinning work:", spinning.Cancel())
	report("spin", spinning)
	ok2 := submit(ctx, ex, square, 8)
	report("square(8)", ok2)

	// The pool replaced the dead and the killed workers and keeps serving.
	deadline := time.Now().Add(10 * time.Second)
	for ex.Stats().Running > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var sum int
	for v, err := range aplex.Map(ctx, ex, square, func(yield func(int) bool) {
		for i := 1; i <= 10 && yield(i); i++ {
		}
	}) {
		if err != nil {
			log.Fatal(err)
		}
		sum += v
	}
	st := ex.Stats()
	fmt.Printf("after: workers %v, %d restarts; sum of squares 1..10 = %d\n", pids(ex), st.Restarts, sum)
	if err := ex.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("the pool is still whole; shut down cleanly")
}

func pids(ex *aplex.Executor) []int {
	var out []int
	for _, w := range ex.Stats().Workers {
		out = append(out, w.PID)
	}
	return out
}

// submit is aplex.Submit for this example: a Submit error (bad input, a
// closed executor) ends it.
func submit[A, R any](ctx context.Context, ex *aplex.Executor, w *aplex.Work[A, R], arg A) *aplex.Future[R] {
	f, err := aplex.Submit(ctx, ex, w, arg)
	if err != nil {
		log.Fatal(err)
	}
	return f
}
