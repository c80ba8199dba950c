package aplex

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// RegisterWorkerInit registers this binary's per-worker set-up for process
// and cluster workers, the counterpart of WithWorkerInit for workers in
// other processes: every worker process runs init once when it starts,
// before it serves any work, and the context init returns is the parent
// of every work's ctx in that process, so works read per-process state
// (a database handle, a cache) from it. WorkerInfo.ID is the worker's slot
// for process workers, its index for local cluster workers
// (cluster.SpawnLocalWorkers) and -1 for other cluster workers.
//
// An init that fails stops the worker: a process worker exits with the
// error on its output (the executor reports the failed start), a cluster
// worker's Serve returns it. Register from a package-level variable or
// init, so that the re-executed binary registers it too:
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
// context works in this process descend from.
func runWorkerInit(base context.Context, w WorkerInfo) (context.Context, error) {
	workerInit.mu.Lock()
	init := workerInit.fn
	workerInit.mu.Unlock()
	if init == nil {
		return base, nil
	}
	ctx, err := init(base, w)
	if err != nil {
		return nil, fmt.Errorf("worker init failed for worker %d: %w", w.ID, err)
	}
	if ctx == nil {
		ctx = base
	}
	return ctx, nil
}
