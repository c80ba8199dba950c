//go:build unix

// Command driver is the workload cmd/alternate builds against each
// revision it compares: the goroutine executor's fan-out (the bench
// suite's workload 2, root BenchmarkFanOut's shape): 10,000 works sleeping
// 10 ms on 4 workers × 300, all submitted, then collected with a Get each.
// It runs one batch untimed, then the number of batches its argument says,
// and prints the process's CPU time (user + system) per work of those, in
// µs. It imports only aplex's public API, so any revision builds it.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/aplex-go/aplex"
)

const (
	works, pool, perWorker = 10_000, 4, 300
	sleep                  = 10 * time.Millisecond
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: driver BATCHES")
	}
	batches, err := strconv.Atoi(os.Args[1])
	if err != nil || batches < 1 {
		return fmt.Errorf("BATCHES must be a positive number, not %q", os.Args[1])
	}
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(pool), aplex.WithMaxWorksPerWorker(perWorker))
	if err != nil {
		return err
	}
	defer ex.Close()
	w := aplex.Fn(func(_ context.Context, x int) (int, error) { time.Sleep(sleep); return x, nil })
	fs := make([]*aplex.Future[int], works)
	batch := func() error {
		ctx := context.Background()
		for i := range fs {
			f, err := aplex.Submit(ctx, ex, w, i)
			if err != nil {
				return err
			}
			fs[i] = f
		}
		for i, f := range fs {
			v, err := f.Get(ctx)
			if err != nil {
				return err
			}
			if v != i {
				return fmt.Errorf("work %d returned %d", i, v)
			}
		}
		return nil
	}
	if err := batch(); err != nil { // a fresh pool's first batch makes its goroutines
		return err
	}
	start := cpuTime()
	for range batches {
		if err := batch(); err != nil {
			return err
		}
	}
	fmt.Printf("%.4f\n", float64(cpuTime()-start)/float64(time.Microsecond)/float64(batches*works))
	return nil
}

// cpuTime is the process's user + system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
