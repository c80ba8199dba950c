package bench_test

import (
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/aplex-go/aplex/bench"
)

// TestFloorsReturnEveryResultInOrder runs each in-process floor on more
// works than its limit (so that some queue), and with works that block
// until all of the first batch have started (so that the limit is reached
// for real), then checks every result and that Close leaves no goroutine
// behind (goleak). The futures-pool floor hands works between goroutines itself;
// the benchmarks only check a sum.
func TestFloorsReturnEveryResultInOrder(t *testing.T) {
	for _, im := range bench.Impls(false) {
		if im.Kind != bench.KindFloor {
			continue
		}
		t.Run(im.Name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			const limit, n = 8, 100
			r, err := im.New(bench.Shape{Workers: 2, PerWorker: limit / 2})
			if err != nil {
				t.Fatal(err)
			}
			// The first limit works wait until all of them run.
			var started sync.WaitGroup
			started.Add(limit)
			var mu sync.Mutex
			count := 0
			task := bench.Task{Name: "double", Fn: func(x int) int {
				mu.Lock()
				count++
				first := count <= limit
				mu.Unlock()
				if first {
					started.Done()
					started.Wait()
				}
				return 2 * x
			}}
			for round := range 3 { // goroutines parked by a round take the next one's works
				args, out := make([]int, n), make([]int, n)
				for i := range args {
					args[i] = i + round
				}
				if err := r.Run(task, args, out); err != nil {
					t.Fatal(err)
				}
				want := make([]int, n)
				for i := range want {
					want[i] = 2 * (i + round)
				}
				if !slices.Equal(out, want) {
					t.Fatalf("round %d: results %v, want %v", round, out, want)
				}
			}
			r.Close()
		})
	}
}
