package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aplex-go/aplex"
)

// TestEachCallersCtxEndsOnlyItsOwnWorks: callers submitting at once, each
// under a ctx of its own (each ctx's works share one watch on it), more
// of them than the executor keeps stopped watches for, with most works
// queued: a caller's ctx ending ends its works, queued or running, and no
// other caller's. On goroutine and process workers.
func TestEachCallersCtxEndsOnlyItsOwnWorks(t *testing.T) {
	const callers, perCaller = 20, 6
	kinds := []ctxKind{
		{"thread", func(t *testing.T) *aplex.Executor {
			return newThread(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(4))
		}},
		{"process", func(t *testing.T) *aplex.Executor {
			return newProcess(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(4))
		}},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			ex := kind.new(t)
			ctxs := make([]context.Context, callers)
			cancels := make([]context.CancelFunc, callers)
			futures := make([][]*aplex.Future[int], callers)
			for i := range ctxs {
				ctxs[i], cancels[i] = context.WithCancel(context.Background())
				defer cancels[i]()
			}
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for i := range callers {
				wg.Go(func() {
					for range perCaller {
						f, err := aplex.Submit(ctxs[i], ex, pWaitCtx, 1) // waits for its ctx
						if err != nil {
							errs <- fmt.Errorf("caller %d: %w", i, err)
							return
						}
						futures[i] = append(futures[i], f)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			ended := func(i int) {
				t.Helper()
				for j, f := range futures[i] {
					if _, err := f.Get(ctxT(t)); !errors.Is(err, context.Canceled) {
						t.Fatalf("caller %d, work %d, after its ctx ended: %v, want context.Canceled", i, j, err)
					}
				}
			}
			for i := 0; i < callers; i += 2 {
				cancels[i]()
				ended(i)
			}
			for i := 1; i < callers; i += 2 {
				for j, f := range futures[i] {
					select {
					case <-f.Done():
						t.Fatalf("caller %d, work %d, ended with other callers' ctxs: %v", i, j, f.Err())
					default:
					}
				}
			}
			for i := 1; i < callers; i += 2 {
				cancels[i]()
				ended(i)
			}
		})
	}
}
