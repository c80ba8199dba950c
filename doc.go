// Package aplex is an asynchronous pool executor: it runs works (functions
// that block, wait on I/O or burn CPU) on a pool of workers and returns
// futures, with many works running at once inside each worker, pluggable
// load balancers, cancellation of running works, Map with chunking and
// timeouts, and graceful shutdown.
//
// One API serves three kinds of worker:
//
//   - goroutine workers (NewThreadExecutor): bounded, load-balanced fan-out
//     in this process;
//   - process workers (NewProcessExecutor): child processes running this
//     same binary (call Main first thing in main), for crash isolation,
//     works that can really be killed, memory limits and recycling;
//   - cluster workers (package cluster): worker processes on this machine
//     or others, reached through NATS.
//
// A work is declared once, with Register (or Fn for in-process works), and
// submitted with Submit, TrySubmit, Map or MapUnordered. The same code
// gives the same outcome on every kind: values, errors (RegisterError,
// RegisterErrorType), panics, the caller's deadline and propagated values
// (RegisterPropagator), per-worker set-up (RegisterWorkerInit),
// cancellation and Shutdown.
//
//	var fetch = aplex.Register("fetch", fetchURL) // package level
//
//	func main() {
//		aplex.Main() // first thing: in a worker process it serves works
//		ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(4))
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer ex.Shutdown(context.Background())
//		f, err := aplex.Submit(ctx, ex, fetch, "https://example.com")
//		…
//		n, err := f.Get(ctx)
//	}
//
// Every future ends: with the work's result, its error, a *PanicError, a
// *WorkerError when its worker died, or the caller's ctx error. Every
// entry point has a runnable example.
//
// # Platforms
//
// Linux is where everything works and where the test suite runs. Process
// workers die with their parent (Pdeathsig, set from a locked forker
// thread, besides the end of their pipe), WithWorkerMemoryLimit sets
// GOMEMLIMIT in the child and checks its resident size in /proc, and the
// pipes get 1 MiB buffers.
//
// macOS and the other Unix systems: the module builds and vets there (the
// tests run on Linux only). Goroutine, process and cluster executors work
// the same, except that NewProcessExecutor refuses WithWorkerMemoryLimit
// with an error ("not supported on this system"), children have no
// Pdeathsig (a process worker whose parent is killed outright exits at the
// end of its pipe, a local cluster worker within half a second, by polling
// its parent id) and pipes keep the system's default buffer size.
//
// Windows: the module builds and vets (untested there). Goroutine
// executors, and cluster executors whose workers run elsewhere or call
// cluster.Serve, are portable Go. Process workers are not supported:
// they need pipes inherited as descriptors 3 and 4, which Windows does not
// pass to children, so NewProcessExecutor fails. Nor is
// cluster.SpawnLocalWorkers: without SIGTERM its workers cannot be asked to
// drain, and Shutdown ends them only by killing them once its ctx ends.
//
// The package is a façade: its names are aliases of, and thin wrappers
// around, the engine in internal/engine, where the documentation below is
// written. Edit the engine, then run go generate in this directory.
package aplex

//go:generate go run ./internal/facadegen internal/engine facade.go
