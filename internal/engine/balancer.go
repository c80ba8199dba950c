package engine

import (
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"sort"
)

// LoadBalancer picks the worker for each dispatch. The executor calls Pick
// under its lock, only when at least one worker has room, once per work (or
// Map chunk), with the call's Meta. (The package's own balancers are not
// asked, on a goroutine executor, when a work's end leaves only its own
// worker with room: it hands its slot to the next queued work, as any
// balancer would have to.) Pick returns an index in ws; an index that is
// out of range or names a full worker is replaced by the first
// worker with room, so a balancer can never overfill a worker.
//
// A balancer expresses a preference, not a constraint: when it finds no
// suitable worker with room it cannot make the work wait, because the core
// then gives the work to the first worker with room. A balancer that sends
// works to labelled workers (Workers.Label) therefore routes them there
// while those have room and elsewhere when they are all full; a strict
// placement needs a pool of its own (cluster.WithPool) or a
// MaxWorksPerWorker and queue sized so the labelled workers never fill.
//
// A balancer may keep state: it is never called concurrently by one
// executor, but must not be shared between executors.
type LoadBalancer interface {
	Pick(ws Workers, meta any) int
}

// builtinBalancer marks the package's balancers. Their Pick has no effect
// outside the executor, so when only one worker has room, where the
// choice is made already, the executor need not ask them (handOverLocked);
// a balancer of the caller's is asked once per work, as LoadBalancer
// says.
type builtinBalancer interface {
	LoadBalancer
	builtin()
}

func (*roundRobin) builtin() {}
func (randomLB) builtin()    {}
func (averageLB) builtin()   {}
func (powerOfTwo) builtin()  {}
func (*affinity) builtin()   {}

// Workers is the balancer's read-only view of the pool's workers, in slot
// order. It is valid only during the Pick call.
type Workers struct {
	ws  []*worker
	gen uint64
}

// Len returns the number of workers.
func (v Workers) Len() int { return len(v.ws) }

// ID returns worker i's stable identity (its slot): a process worker that is
// replaced keeps its ID.
func (v Workers) ID(i int) int { return v.ws[i].slot }

// Name returns worker i's name, as WorkerStats.Name shows it: "thread-N",
// "proc-N", or a cluster worker's id.
func (v Workers) Name(i int) string { return v.ws[i].name }

// Labels returns worker i's labels (a cluster worker's cluster.ServeLabels,
// APLEX_CLUSTER_LABELS or cluster.LocalWorkerLabels), nil if it has none.
// The map is shared with the executor, so that Pick allocates nothing: it
// must not be modified, nor kept past the Pick call.
func (v Workers) Labels(i int) map[string]string { return v.ws[i].labels }

// Label returns the value of worker i's label key, and whether it has it.
func (v Workers) Label(i int, key string) (string, bool) {
	val, ok := v.ws[i].labels[key]
	return val, ok
}

// Load returns how many works worker i holds.
func (v Workers) Load(i int) int { return int(v.ws[i].load.Load()) }

// Cap returns how many works worker i may hold.
func (v Workers) Cap(i int) int { return v.ws[i].cap }

// Available reports whether worker i has room for one more work.
func (v Workers) Available(i int) bool { return v.ws[i].hasRoom() }

// Generation changes whenever the set of workers changes (a worker joins,
// dies or retires), so a balancer can rebuild derived state.
func (v Workers) Generation() uint64 { return v.gen }

// RoundRobin cycles through the workers, skipping full ones. It is the default.
func RoundRobin() LoadBalancer { return &roundRobin{} }

type roundRobin struct{ next int }

func (r *roundRobin) Pick(ws Workers, _ any) int {
	n := ws.Len()
	for range n {
		i := r.next % n
		r.next = i + 1
		if ws.Available(i) {
			return i
		}
	}
	return 0
}

// Random picks uniformly among the workers with room.
func Random() LoadBalancer { return randomLB{} }

type randomLB struct{}

func (randomLB) Pick(ws Workers, _ any) int {
	n := ws.Len()
	start := rand.IntN(n)
	// Count the available workers and pick the k-th, uniformly.
	avail := 0
	for i := range n {
		if ws.Available(i) {
			avail++
		}
	}
	k := rand.IntN(max(avail, 1))
	for j := range n {
		i := (start + j) % n
		if ws.Available(i) {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return start
}

// Average picks the least loaded worker (the original's "Average"); ties go
// to the first in slot order.
func Average() LoadBalancer { return averageLB{} }

type averageLB struct{}

func (averageLB) Pick(ws Workers, _ any) int {
	best := -1
	for i := range ws.Len() {
		if ws.Available(i) && (best < 0 || ws.Load(i) < ws.Load(best)) {
			best = i
		}
	}
	return best
}

// PowerOfTwo picks two workers with room at random and takes the less
// loaded: nearly the balance of Average at constant cost per pick.
func PowerOfTwo() LoadBalancer { return powerOfTwo{} }

type powerOfTwo struct{}

func (powerOfTwo) Pick(ws Workers, _ any) int {
	n := ws.Len()
	a, b := rand.IntN(n), rand.IntN(n)
	for range n {
		if ws.Available(a) {
			break
		}
		a = (a + 1) % n
	}
	for range n {
		if ws.Available(b) {
			break
		}
		b = (b + 1) % n
	}
	if ws.Load(b) < ws.Load(a) {
		return b
	}
	return a
}

// Affinity sends works with the same Meta key to the same worker while it
// has room, and to the next worker on a consistent-hash ring when it is
// full, so adding or losing a worker moves few keys. Works without Meta are
// spread round-robin. Keys are hashed by their fmt-independent value: use
// comparable keys (strings, numbers, small structs).
func Affinity() LoadBalancer {
	return &affinity{seed: maphash.MakeSeed(), gen: ^uint64(0)}
}

// affinityReplicas is the number of points per worker on the ring: enough
// for an even spread over a few workers without a large ring.
const affinityReplicas = 64

type ringPoint struct {
	hash uint64
	id   int // worker slot
}

type affinity struct {
	seed maphash.Seed
	gen  uint64
	ring []ringPoint
	rr   roundRobin
}

func (a *affinity) rebuild(ws Workers) {
	a.ring = a.ring[:0]
	for i := range ws.Len() {
		for r := range affinityReplicas {
			a.ring = append(a.ring, ringPoint{hash: maphash.Comparable(a.seed, [2]int{ws.ID(i), r}), id: ws.ID(i)})
		}
	}
	slices.SortFunc(a.ring, func(x, y ringPoint) int {
		switch {
		case x.hash < y.hash:
			return -1
		case x.hash > y.hash:
			return 1
		}
		return x.id - y.id
	})
	a.gen = ws.Generation()
}

func (a *affinity) Pick(ws Workers, meta any) int {
	if meta == nil {
		return a.rr.Pick(ws, nil)
	}
	if a.gen != ws.Generation() {
		a.rebuild(ws)
	}
	h := hashKey(a.seed, meta)
	start := sort.Search(len(a.ring), func(i int) bool { return a.ring[i].hash >= h })
	for j := range a.ring {
		p := a.ring[(start+j)%len(a.ring)]
		if i := indexOfSlot(ws, p.id); i >= 0 && ws.Available(i) {
			return i
		}
	}
	return a.rr.Pick(ws, nil)
}

// hashKey hashes a Meta value; keys that are not comparable fall back to
// their type's zero hash plus a round-robin spread by the caller.
func hashKey(seed maphash.Seed, key any) (h uint64) {
	defer func() {
		if recover() != nil { // not comparable (slice, map, func)
			h = 0
		}
	}()
	switch k := key.(type) {
	case string:
		return maphash.String(seed, k)
	case int:
		return maphash.Comparable(seed, k)
	}
	return maphash.Comparable(seed, key)
}

func indexOfSlot(ws Workers, slot int) int {
	// ws is in slot order: binary search.
	i := sort.Search(ws.Len(), func(i int) bool { return ws.ID(i) >= slot })
	if i < ws.Len() && ws.ID(i) == slot {
		return i
	}
	return -1
}
