package fanout

import (
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunsEveryItemOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 100, 1000} {
		counts := make([]atomic.Int32, n)
		Run(n, func(i int) { counts[i].Add(1) })
		for i := range counts {
			if c := counts[i].Load(); c != 1 {
				t.Fatalf("n=%d: item %d ran %d times", n, i, c)
			}
		}
	}
}

// A blocked item must not hold up the others: they all start while it waits.
func TestBlockingItemsRunConcurrently(t *testing.T) {
	const n = 50
	var started atomic.Int32
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		Run(n, func(int) {
			started.Add(1)
			<-release
		})
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for started.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d blocking items started", started.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-done
}

func BenchmarkRun100(b *testing.B) {
	var sink atomic.Int64
	b.ReportAllocs()
	for range b.N {
		Run(100, func(i int) { sink.Add(int64(i)) })
	}
}
