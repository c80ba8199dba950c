package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/bench"
)

func BenchmarkZZFanOutNoPark(b *testing.B) {
	ex, err := bench.NewThreadExecutor(bench.Shape{Workers: 4, PerWorker: 300})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	works := 10000
	args, out := bench.Args(works), make([]int, works)
	late := os.Getenv("LATE") != ""
	run := func() {
		ctx := context.Background()
		fs := make([]*aplex.Future[int], len(args))
		for i, a := range args {
			fs[i], _ = aplex.Submit(ctx, ex, bench.Sleep10ms.Work, a)
		}
		if late {
			time.Sleep(110 * time.Millisecond)
		}
		for i, f := range fs {
			out[i], _ = f.Get(ctx)
		}
	}
	run()
	cpu0 := bench.CPUTime()
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.ReportMetric(float64(bench.CPUTime()-cpu0)/1e3/float64(b.N*works), "cpu-us/work")
}
