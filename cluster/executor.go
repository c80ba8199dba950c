package cluster

import (
	"sync"
	"weak"

	"github.com/aplex-go/aplex"
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
func NewExecutor(opts ...aplex.Option) (*aplex.Executor, error) {
	anyOpts := make([]any, len(opts))
	for i, o := range opts {
		if o != nil {
			anyOpts[i] = o
		}
	}
	var tr *transport
	v, err := xport.NewExecutor(extKey, anyOpts, func(xc xport.Config) (xport.Transport, error) {
		t, err := newTransport(xc)
		if err != nil {
			return nil, err
		}
		tr = t
		return t, nil
	})
	if err != nil {
		return nil, err
	}
	ex := v.(*aplex.Executor)
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
