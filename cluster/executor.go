package cluster

import (
	"sync"
	"weak"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/engine"
	"github.com/aplex-go/aplex/internal/xport"
)

// NewExecutor returns an executor whose workers are cluster workers: worker
// processes, on this machine or others, serving the pool over NATS (Serve,
// or a binary started with APLEX_WORKER_ROLE=cluster). It is the same
// *aplex.Executor as the other kinds: Submit, Map, futures, balancers and
// Shutdown work unchanged, and every core option applies except
// WithWorkerInit (use aplex.RegisterWorkerInit) and the process-only ones
// (WithWorkerCommand, WithRecycleAfter, WithWorkerMemoryLimit).
//
// It connects with WithURL (and WithNATSOptions) or WithConn; with
// neither, it starts an embedded NATS server on 127.0.0.1 (URL tells
// workers where), which stops at Shutdown. With SpawnLocalWorkers it also
// starts worker processes of this binary and returns once they joined;
// aplex.WithPoolSize(n) makes it wait until n workers joined. Otherwise it
// returns at once, and works wait in the queue until a worker joins.
//
// Works must be registered (aplex.Register) in the worker binaries too.
// Shutdown stops using the remote workers (they serve on for other
// executors) and stops the local ones.
//
// Cost, measured on a 2 vCPU machine (go test -bench . -benchmem ./cluster,
// 2026-11-30, 3 runs, NATS on loopback, unsealed): a no-op round trip
// takes 194-202 µs and 15 allocations, where a raw NATS request/reply
// between the same two processes takes 196-204 µs; Map reaches 2.0-2.1 M
// works/s with ChunkSize(100) over 2 worker processes (1.8-2.0 M over 3
// with the embedded server; 3 allocations per work) and 100-104 k works/s
// with ChunkSize(1) (11). A pool key costs 4-8 % (BenchmarkSealed). Ship
// works of a millisecond or more, or chunk them.
func NewExecutor(opts ...aplex.Option) (*aplex.Executor, error) {
	var tr *transport
	ex, err := engine.NewClusterExecutor(opts, func(xc xport.Config, cfg *execConfig) (xport.Transport, error) {
		t, err := newTransport(xc, cfg)
		if err != nil {
			return nil, err
		}
		tr = t
		return t, nil
	})
	if err != nil {
		return nil, err
	}
	register(ex, tr)
	return ex, nil
}

// executors maps executors to their transports for URL. The key is weak,
// so the map does not keep an abandoned executor from its cleanup (which
// closes it, and the transport then removes the entry).
var executors sync.Map // weak.Pointer[aplex.Executor] → *transport

func register(ex *aplex.Executor, t *transport) {
	key := weak.Make(ex)
	executors.Store(key, t)
	t.mu.Lock()
	t.unreg = func() { executors.Delete(key) }
	t.mu.Unlock()
}

// URL returns the NATS URL the executor's workers connect to. For the
// embedded server it holds everything a worker needs to join: the
// server's generated token and, after '#', the pool key the executor
// generated, e.g.
// "nats://3f…9a@127.0.0.1:41873#aplex-key=<64 hex digits>" (a key given
// with WithPoolKey is not included: give it to workers yourself). Treat it
// as a secret. Otherwise it is the URLs the executor was given
// (comma-separated, credentials included if the URLs hold any). Start
// more workers against it, on this machine:
//
//	APLEX_WORKER_ROLE=cluster APLEX_CLUSTER_URL=<URL> ./yourbinary
//
// (or cluster.ServeURL(URL)). The environment keeps it out of process
// listings; a command line would not.
//
// It returns "" for an executor that is not a cluster executor or has
// been shut down.
func URL(ex *aplex.Executor) string {
	v, ok := executors.Load(weak.Make(ex))
	if !ok {
		return ""
	}
	return v.(*transport).url
}
