package aplex_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aplex-go/aplex"
)

// pWaitCtx returns at once for 0 and otherwise waits for its ctx to end.
var pWaitCtx = aplex.Register("test.wait-ctx", func(ctx context.Context, x int) (int, error) {
	if x == 0 {
		return 0, nil
	}
	<-ctx.Done()
	return 0, ctx.Err()
})

// cancelSeen reports each work that ends cancelled.
type cancelSeen chan struct{}

func (c cancelSeen) ObserveWork(ctx context.Context, e aplex.WorkEvent) context.Context {
	if e.Kind == aplex.WorkFinished && e.Outcome == aplex.OutcomeCancelled {
		c <- struct{}{}
	}
	return ctx
}
func (cancelSeen) ObserveWorker(aplex.WorkerEvent) {}

// TestMapCtxEndCancelsRunningWorksWhileTheLoopBodyRuns: the caller's ctx
// ending cancels a Map's running works at once, even while the loop body
// holds the Map's goroutine: the Map's one watch on its ctx does it, not
// its loop (its chunks carry no watch of their own).
func TestMapCtxEndCancelsRunningWorksWhileTheLoopBodyRuns(t *testing.T) {
	for _, kind := range []string{"thread", "process"} {
		t.Run(kind, func(t *testing.T) {
			seen := make(cancelSeen, 4)
			var ex *aplex.Executor
			if kind == "thread" {
				ex = newThread(t, aplex.WithPoolSize(2), aplex.WithObserver(seen))
			} else {
				ex = newProcess(t, aplex.WithPoolSize(2), aplex.WithObserver(seen))
			}
			bound := ctxT(t)
			ctx, cancel := context.WithCancel(bound)
			defer cancel()
			for v, err := range aplex.Map(ctx, ex, pWaitCtx, slices.Values([]int{0, 1, 2})) {
				if err != nil || v != 0 {
					t.Fatalf("the first result: %v, %v", v, err)
				}
				// In the loop body: the two other works run (or wait
				// for a slot) until their ctx ends.
				cancel()
				for range 2 {
					select {
					case <-seen:
					case <-bound.Done():
						t.Fatal("the running works were not cancelled while the loop body ran")
					}
				}
				break
			}
		})
	}
}
