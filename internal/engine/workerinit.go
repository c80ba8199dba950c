package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// RegisterWorkerInit registers this binary's per-worker set-up, for every
// kind of executor: each worker runs init once when it starts, before it
// serves any work, and the context init returns is the parent (for values)
// of every work's ctx on that worker, so works read per-worker state (a
// database handle, a cache) from it. A process or cluster worker runs it
// once per process; a thread executor runs it once per goroutine worker,
// in NewThreadExecutor, with WithWorkerInit (if given) after it, on the
// context it returned. WorkerInfo means the same on every kind: ID is the
// worker's slot (thread and process workers), its index for local cluster
// workers (cluster.SpawnLocalWorkers) and -1 for other cluster workers;
// WorkerID and Labels name a cluster worker.
//
// An init that fails (returns an error or panics) stops the worker:
// NewThreadExecutor, or Resize, returns the error, a process worker exits
// with the error on its output (the executor reports the failed start), a
// cluster worker's Serve returns it. Register from a package-level
// variable or init, so that the re-executed binary registers it too:
//
//	var _ = aplex.RegisterWorkerInit(openDB)
//
// A binary has at most one; registering nil or a second one is an error.
func RegisterWorkerInit(init func(ctx context.Context, w WorkerInfo) (context.Context, error)) error {
	if init == nil {
		return errors.New("aplex: RegisterWorkerInit(nil): need a function")
	}
	workerInit.mu.Lock()
	defer workerInit.mu.Unlock()
	if workerInit.fn != nil {
		return errors.New("aplex: RegisterWorkerInit: a worker init is already registered")
	}
	workerInit.fn = init
	return nil
}

var workerInit struct {
	mu sync.Mutex
	fn func(context.Context, WorkerInfo) (context.Context, error)
}

// runWorkerInit runs the registered worker init, if any, and returns the
// context the worker's works take their values from.
func runWorkerInit(base context.Context, w WorkerInfo) (context.Context, error) {
	workerInit.mu.Lock()
	init := workerInit.fn
	workerInit.mu.Unlock()
	if init == nil {
		return base, nil
	}
	ctx, err := callInit(base, init, w)
	if err != nil {
		return nil, fmt.Errorf("worker init failed for worker %d: %w", w.ID, err)
	}
	if ctx == nil {
		ctx = base
	}
	return ctx, nil
}

// callInit calls a worker init (RegisterWorkerInit's, WithWorkerInit's),
// turning a panic into an error: the init runs in whatever goroutine adds
// the worker (NewThreadExecutor's caller, Resize's, the autoscaler's, a
// worker process's start-up), and a failed init is an error on every kind.
func callInit(ctx context.Context, init func(context.Context, WorkerInfo) (context.Context, error), w WorkerInfo) (next context.Context, err error) {
	defer func() {
		if v := recover(); v != nil {
			next, err = nil, fmt.Errorf("the init panicked: %v", v)
		}
	}()
	return init(ctx, w)
}
