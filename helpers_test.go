package aplex_test

import (
	"context"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// newThread builds a thread executor closed at the end of the test.
func newThread(t *testing.T, opts ...aplex.Option) *aplex.Executor {
	t.Helper()
	ex, err := aplex.NewThreadExecutor(opts...)
	if err != nil {
		t.Fatalf("NewThreadExecutor: %v", err)
	}
	t.Cleanup(func() {
		if err := ex.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ex
}

// ctxT returns a context bounded so that a bug fails the test, not hangs it.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustSubmit[A, R any](t *testing.T, ex *aplex.Executor, w *aplex.Work[A, R], arg A, opts ...aplex.CallOption) *aplex.Future[R] {
	t.Helper()
	f, err := aplex.Submit(ctxT(t), ex, w, arg, opts...)
	if err != nil {
		t.Fatalf("Submit(%v): %v", arg, err)
	}
	return f
}

func mustGet[R any](t *testing.T, f *aplex.Future[R]) R {
	t.Helper()
	v, err := f.Get(ctxT(t))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return v
}

// seq yields 0 … n-1 (n < 0: forever), counting what was read.
func seq(n int, read *int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := 0; n < 0 || i < n; i++ {
			if read != nil {
				*read = i + 1
			}
			if !yield(i) {
				return
			}
		}
	}
}

// waitFor polls cond until it holds or the test's deadline nears.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type workerKey struct{}

// withWorkerID makes each worker's ID readable from its works' ctx.
func withWorkerID() aplex.Option {
	return aplex.WithWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
		return context.WithValue(ctx, workerKey{}, w.ID), nil
	})
}

func workerOf(ctx context.Context) int { return ctx.Value(workerKey{}).(int) }
