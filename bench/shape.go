package bench

import (
	"runtime"
	"slices"
)

// Shape is the concurrency a workload gives every implementation: aplex
// executors get Workers workers of PerWorker works each; peers and floors get
// Total() workers (or concurrent tasks).
type Shape struct {
	Workers   int
	PerWorker int
}

// Total returns Workers × PerWorker.
func (s Shape) Total() int { return s.Workers * s.PerWorker }

// DefaultShape is aplex's default executor shape on this machine: NumCPU
// workers of 300 works each.
func DefaultShape() Shape { return Shape{Workers: runtime.NumCPU(), PerWorker: 300} }

// Runner runs one batch of tasks the way the users of one library would.
type Runner interface {
	// Run submits t for every argument in args (all of them first), then
	// collects every result into out, which has len(args) entries. Libraries
	// that do not keep results in order (conc's ResultPool) fill out in
	// completion order.
	Run(t Task, args, out []int) error
	// Close releases the runner's workers.
	Close()
}

// Kind says what an Impl is in the tables.
type Kind int

// The kinds of implementation.
const (
	KindAplex Kind = iota // an aplex executor
	KindFloor             // a raw Go floor: the least any pool can cost
	KindPeer              // another Go library
)

// Impl is one implementation of the batch workloads.
type Impl struct {
	// Name labels the benchmark row, e.g. "aplex-thread" or "pond".
	Name string
	// Kind says whether the row is aplex, a floor or a peer.
	Kind Kind
	// Unbounded marks implementations that ignore the shape and start one
	// goroutine per task; workloads whose result depends on the concurrency
	// limit skip them.
	Unbounded bool
	// New builds a runner with the given shape.
	New func(s Shape) (Runner, error)
}

// Impls returns every batch implementation in table order: aplex first,
// then the floors, then the peers. The process executor is included only
// when process is true.
func Impls(process bool) []Impl {
	out := []Impl{aplexThreadImpl()}
	if process {
		out = append(out, aplexProcessImpl())
	}
	out = append(out, floorImpls()...)
	return append(out, peerImpls()...)
}

// FanOutImpls is Impls(true) with aplex-thread-wait beside aplex-thread
// and aplex-process-prefetch beside aplex-process: the I/O fan-out, where
// the collecting loop's wake-ups and a worker's next work waiting a round
// trip for its slot show.
func FanOutImpls() []Impl {
	out := Impls(true)
	i := slices.IndexFunc(out, func(im Impl) bool { return im.Name == "aplex-thread" })
	out = slices.Insert(out, i+1, aplexThreadWaitImpl())
	i = slices.IndexFunc(out, func(im Impl) bool { return im.Name == "aplex-process" })
	return slices.Insert(out, i+1, aplexProcessPrefetchImpl())
}

func peerImpls() []Impl {
	return []Impl{antsImpl(), pondImpl(), concImpl(), errgroupImpl(), workerpoolImpl()}
}
