// Package bench runs aplex's executors side by side with their floors (raw
// goroutines, a raw channel worker pool, a raw pipe ping-pong with a child
// process, a raw NATS request/reply with a cluster worker process) and with
// the Go libraries people use instead (ants, pond, conc, errgroup,
// workerpool, go-plugin), on the same workloads.
//
// The workloads are testing.B benchmarks in this package's test files; every
// implementation is a [Runner] built by an [Impl], so a workload is written
// once and run on each. cmd/report runs the whole suite and prints markdown
// tables of ratios; see README.md.
//
// The package lives in its own module so that the peers never enter the
// library's go.mod.
package bench
