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
// Every future ends: with the work's result, its error, a *PanicError, a
// *WorkerError when its worker died, or the caller's ctx error.
//
// The package is a façade: its names are aliases of, and thin wrappers
// around, the engine in internal/engine, where the documentation below is
// written. Edit the engine, then run go generate in this directory.
package aplex

//go:generate go run ./internal/facadegen internal/engine facade.go
