package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex"
)

// Task is one workload's work in the two shapes the implementations need:
// Fn for the libraries that run closures, and Work, the same function
// registered with aplex so that process workers can run it too.
type Task struct {
	Name string
	Fn   func(int) int
	Work *aplex.Work[int, int]
}

// newTask registers fn under name; call it from package-level variables so
// that a re-executed worker process registers the same works.
func newTask(name string, fn func(int) int) Task {
	return Task{
		Name: name,
		Fn:   fn,
		Work: aplex.Register(name, func(_ context.Context, x int) (int, error) { return fn(x), nil }),
	}
}

// The workloads' works.
var (
	// Noop returns its argument.
	Noop = newTask("bench.noop", func(x int) int { return x })
	// Sleep10ms sleeps 10 ms (the I/O fan-out).
	Sleep10ms = newTask("bench.sleep10ms", func(x int) int { time.Sleep(10 * time.Millisecond); return x })
	// Sleep1s sleeps one second (the memory workload): it counts itself in
	// Sleep1sStarted, sleeps, then waits for the gate of ArmSleep1s if one
	// is armed, so that every work is in flight at once however slowly
	// they were started.
	Sleep1s = newTask("bench.sleep1s", sleep1s)
	// Hash runs x rounds of SHA-256 over a 64-byte block (the CPU-bound
	// workload; see HashRounds).
	Hash = newTask("bench.hash", hashRounds)
)

// Sleep1sStarted counts the Sleep1s works that have started, so the memory
// workload can tell when every work is in flight.
var Sleep1sStarted atomic.Int64

// sleepGate holds Sleep1s works after their second until released.
var sleepGate atomic.Pointer[chan struct{}]

func sleep1s(x int) int {
	Sleep1sStarted.Add(1)
	time.Sleep(time.Second)
	if g := sleepGate.Load(); g != nil {
		<-*g
	}
	return x
}

// ArmSleep1s resets Sleep1sStarted and arms a gate that holds every Sleep1s
// work after its second until release is called (release is idempotent).
func ArmSleep1s() (release func()) {
	Sleep1sStarted.Store(0)
	ch := make(chan struct{})
	sleepGate.Store(&ch)
	return sync.OnceFunc(func() { close(ch) })
}

// hashRounds chains rounds SHA-256 sums and returns part of the last one,
// so the compiler cannot drop the loop.
func hashRounds(rounds int) int {
	var block [64]byte
	for i := range rounds {
		sum := sha256.Sum256(block[:])
		copy(block[:], sum[:])
		binary.LittleEndian.PutUint64(block[32:], uint64(i))
	}
	return int(binary.LittleEndian.Uint32(block[:4]))
}

// HashRounds returns how many rounds make one Hash work take about d on
// this machine, and how long that many rounds took (the best of 3 timed
// runs), so a workload can state its ideal wall time.
func HashRounds(d time.Duration) (rounds int, took time.Duration) {
	const probe = 2000
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		hashRounds(probe)
		best = min(best, time.Since(start))
	}
	rounds = max(1, int(float64(probe)*float64(d)/float64(best)))
	return rounds, TimeRounds(rounds)
}

// TimeRounds returns the best of 3 timings of one Hash work of rounds.
func TimeRounds(rounds int) time.Duration {
	took := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		hashRounds(rounds)
		took = min(took, time.Since(start))
	}
	return took
}

// Args returns the arguments 0..n-1.
func Args(n int) []int {
	a := make([]int, n)
	for i := range a {
		a[i] = i
	}
	return a
}

// Fill returns n copies of v.
func Fill(n, v int) []int {
	a := make([]int, n)
	for i := range a {
		a[i] = v
	}
	return a
}
