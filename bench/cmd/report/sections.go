package main

import (
	"fmt"
	"io"
	"math"

	"github.com/aplex-go/aplex/bench"
)

// view reads medians out of the results and the Python report.
type view struct {
	rs    results
	py    *pyReport
	short bool // the run used -short sizes
	// quick: fewer than minRuns runs or a -benchtime override, so the
	// verdicts are a quick look.
	quick bool
}

// fig returns the median of name's unit, or NaN.
func (v view) fig(name, unit string) float64 {
	if x, ok := v.rs.get(name, unit); ok {
		return x
	}
	return none
}

// spread formats the spread of name's unit runs around their median
// ("±4.2 %"), "–" when unknown.
func (v view) spread(name, unit string) string { return pct(v.rs.spread(name, unit)) }

// has reports whether name produced any figure.
func (v view) has(name string) bool { return len(v.rs[name]) > 0 }

// label names an implementation in a table.
func label(im bench.Impl) string {
	switch im.Kind {
	case bench.KindAplex:
		return "**" + im.Name + "**"
	case bench.KindFloor:
		return "floor: " + im.Name
	}
	return im.Name
}

func (v view) overhead(w io.Writer) {
	section(w, "## 1. Overhead: N no-op works, all submitted, then all collected", "Capacity NumCPU × 300 for everyone. Floor: one goroutine per work (`go` + `sync.WaitGroup`) bounded by a semaphore at the same capacity (go+wg+sem, the floor DESIGN.md §5 quotes); go+wg starts them all at once; chan-pool is a fixed set of goroutines reading one channel (no results to wait for); futures-pool is a bare futures executor, aplex's design with nothing but the futures (Submit returns a future, Get waits on it; bench/futures.go).")
	t := &table{head: []string{"implementation", "ns/work", "spread", "allocs/work", "B/work", "÷ floor", "÷ aplex-thread"}}
	floor, ap := v.fig("Overhead/go+wg+sem", "ns/op"), v.fig("Overhead/aplex-thread", "ns/op")
	for _, im := range bench.Impls(false) {
		n := "Overhead/" + im.Name
		if !v.has(n) {
			continue
		}
		ns := v.fig(n, "ns/op")
		t.add(label(im), num(ns), v.spread(n, "ns/op"), num(v.fig(n, "allocs/op")), num(v.fig(n, "B/op")), ratio(ns, floor), ratio(ns, ap))
	}
	for _, impl := range []string{"ThreadPoolExecutor", "ProcessPoolExecutor"} {
		if r, ok := v.py.find("overhead", impl, 0); ok {
			t.add("python "+impl, num(r.NsPerWork), "–", "–", "–", ratio(r.NsPerWork, floor), ratio(r.NsPerWork, ap))
		}
	}
	t.write(w)
}

func (v view) fanout(w io.Writer) {
	section(w, "## 2. I/O fan-out: 10,000 works sleeping 10 ms, 1,200 in flight", "aplex: 4 workers × 300, collecting with a Get per work in order (aplex-thread-wait: the same, with one Wait(AllCompleted) for the whole batch before the Gets, as the peers' runners wait once; aplex-process: 4 worker processes × 300; aplex-process-prefetch: the same with WithPrefetch(300), each process sent up to 300 works more, which it starts as its works end); the others: a limit of 1,200. Ideal: ceil(10000/1200) × 10 ms = 90 ms. Wall: a batch in steady state; the first batch of a fresh pool (its goroutines made; for aplex-process, its worker processes' heaps grown) is run untimed and shown on its own. CPU: the process's user+system time (getrusage) per work over every batch, the first included; for aplex-process, plus its workers' whole lives, start-up included (counted once they are reaped). Floor: goroutines bounded by a semaphore; chan-pool and futures-pool as in the overhead workload.")
	t := &table{head: []string{"implementation", "wall ms", "spread", "× ideal", "first batch × ideal", "CPU µs/work", "wall ÷ floor", "wall ÷ aplex-thread", "CPU ÷ aplex-thread"}}
	fw := v.fig("FanOut/go+wg+sem", "wall-ms")
	aw, ac := v.fig("FanOut/aplex-thread", "wall-ms"), v.fig("FanOut/aplex-thread", "cpu-us/work")
	for _, im := range bench.FanOutImpls() {
		n := "FanOut/" + im.Name
		if !v.has(n) {
			continue
		}
		wall, cpu := v.fig(n, "wall-ms"), v.fig(n, "cpu-us/work")
		t.add(label(im), num(wall), v.spread(n, "wall-ms"), num(v.fig(n, "x-ideal")), num(v.fig(n, "first-x-ideal")), num(cpu), ratio(wall, fw), ratio(wall, aw), ratio(cpu, ac))
	}
	if r, ok := v.py.find("fanout", "ThreadPoolExecutor", 0); ok {
		wall := r.WallS * 1e3
		t.add("python ThreadPoolExecutor", num(wall), "–", num(r.XIdeal), "–", num(r.CPUUsPerWork), ratio(wall, fw), ratio(wall, aw), ratio(r.CPUUsPerWork, ac))
	}
	t.write(w)
}

func (v view) cpu(w io.Writer) {
	section(w, "## 3. CPU-bound: 64 works of about 20 ms of SHA-256, NumCPU at a time", "Ideal: 64 × one work's serial time / cores, one work being timed alone just before each batch. Floor: one goroutine per work.")
	t := &table{head: []string{"implementation", "wall ms", "spread", "one work ms", "× ideal", "÷ floor", "÷ aplex-thread", "÷ aplex-process"}}
	fw := v.fig("CPU/go+wg", "wall-ms")
	at, ap := v.fig("CPU/aplex-thread", "wall-ms"), v.fig("CPU/aplex-process", "wall-ms")
	for _, im := range bench.Impls(true) {
		n := "CPU/" + im.Name
		if !v.has(n) {
			continue
		}
		wall := v.fig(n, "wall-ms")
		t.add(label(im), num(wall), v.spread(n, "wall-ms"), num(v.fig(n, "work-ms")), num(v.fig(n, "x-ideal")), ratio(wall, fw), ratio(wall, at), ratio(wall, ap))
	}
	t.write(w)
}

func (v view) memory(w io.Writer) {
	section(w, "## 4. Memory: 100,000 works sleeping 1 s, all in flight at once", "Per work, above the baseline taken before the pool is built, each row alone in a fresh process: live = heap + goroutine stacks in use (HeapInuse + StackInuse) after a GC taken once every work has started, and its stack part; peak = the same sampled every 25 ms, garbage included; Sys = peak growth of the memory obtained from the OS. Floor: one goroutine per work.")
	t := &table{head: []string{"implementation", "live B/work", "spread", "of which stacks", "peak B/work", "Sys B/work", "live ÷ floor", "live ÷ aplex-thread"}}
	floor, ap := v.fig("Memory/go+wg", "live-B/work"), v.fig("Memory/aplex-thread", "live-B/work")
	for _, im := range bench.Impls(false) {
		n := "Memory/" + im.Name
		if !v.has(n) {
			continue
		}
		live := v.fig(n, "live-B/work")
		t.add(label(im), num(live), v.spread(n, "live-B/work"), num(v.fig(n, "stack-B/work")), num(v.fig(n, "inuse-B/work")), num(v.fig(n, "sys-B/work")), ratio(live, floor), ratio(live, ap))
	}
	t.write(w)
}

func (v view) mapping(w io.Writer) {
	section(w, "## 5. Map: 100,000 no-op inputs, results in input order", "Floor: NumCPU goroutines taking chunks of indices from a channel. conc's iter.Map (GOMAXPROCS goroutines over a slice) is the nearest peer; a pond task group is pond's way. Ratios are of time per work.")
	t := &table{head: []string{"implementation", "works/s", "ns/work", "spread", "allocs/work", "÷ floor (chunk 100)", "÷ aplex chunk 100"}}
	floor, ap := v.fig("Map/chunked-map/chunk=100", "ns/work"), v.fig("Map/aplex-thread/chunk=100", "ns/work")
	rows := []struct{ name, label string }{
		{"aplex-thread/chunk=1", "**aplex-thread** ChunkSize 1"},
		{"aplex-thread/chunk=100", "**aplex-thread** ChunkSize 100"},
		{"chunked-map/chunk=1", "floor: chunked-map, chunk 1"},
		{"chunked-map/chunk=100", "floor: chunked-map, chunk 100"},
		{"conc-iter-map", "conc iter.Map"},
		{"pond-group", "pond task group"},
	}
	for _, r := range rows {
		n := "Map/" + r.name
		if !v.has(n) {
			continue
		}
		ns := v.fig(n, "ns/work")
		t.add(r.label, num(v.fig(n, "works/s")), num(ns), v.spread(n, "ns/work"), num(v.fig(n, "allocs/work")), ratio(ns, floor), ratio(ns, ap))
	}
	for _, pr := range []struct {
		impl  string
		chunk int
	}{{"ProcessPoolExecutor", 1}, {"ProcessPoolExecutor", 100}, {"ThreadPoolExecutor", 1}} {
		if r, ok := v.py.find("map", pr.impl, pr.chunk); ok {
			t.add(fmt.Sprintf("python %s.map, chunksize %d", pr.impl, pr.chunk), num(r.WorksPerS), num(r.NsPerWork), "–", "–", ratio(r.NsPerWork, floor), ratio(r.NsPerWork, ap))
		}
	}
	t.write(w)
}

// pipeFloor names mode's process floor: the pipe with raw system calls,
// or, in output from before it existed, the pipe through os.File.
func (v view) pipeFloor(mode string) string {
	if n := "Process/" + mode + "/pipe-floor-raw"; v.has(n) {
		return n
	}
	return "Process/" + mode + "/pipe-floor"
}

func (v view) process(w io.Writer) {
	section(w, "## 6. Process round trips and throughput", "One child process each: the floor is a raw ping-pong over a pair of `os.Pipe` on fds 3/4 (32-byte messages, echoed, writes batched while requests queue), both sides reading and writing the non-blocking pipe ends with raw system calls and waiting on the netpoller, as aplex's pipes do (÷ floor is against this one); the same through `os.File` is the row below it; aplex runs one worker process; go-plugin v1.8.0 over net/rpc. For rtt, a second floor reads the replies in a goroutine of its own that hands each to the waiting one over a channel: the raw pipe plus the one goroutine wake-up that any executor whose caller waits on a future pays. rtt = one no-op work at a time; in flight = a sliding window of pending works (go-plugin: that many goroutines). CPU: user + system time of the parent and the child per work (getrusage, once the child is reaped).")
	t := &table{head: []string{"mode", "implementation", "µs/work", "spread", "works/s", "CPU µs/work", "allocs/work", "÷ floor", "÷ aplex-process"}}
	for _, mode := range []string{"rtt", "inflight=64", "inflight=256"} {
		floor, ap := v.fig(v.pipeFloor(mode), "ns/op"), v.fig("Process/"+mode+"/aplex-process", "ns/op")
		for _, impl := range []string{"pipe-floor-raw", "pipe-floor", "pipe-handoff", "aplex-process", "go-plugin"} {
			n := "Process/" + mode + "/" + impl
			if !v.has(n) {
				continue
			}
			ns := v.fig(n, "ns/op")
			lbl := impl
			switch impl {
			case "pipe-floor-raw":
				lbl = "floor: raw pipe, raw system calls"
			case "pipe-floor":
				lbl = "raw pipe through os.File"
			case "pipe-handoff":
				lbl = "raw pipe through os.File + one hand-off"
			case "aplex-process":
				lbl = "**aplex-process**"
			}
			t.add(mode, lbl, num(ns/1e3), v.spread(n, "ns/op"), num(v.fig(n, "works/s")), num(v.fig(n, "cpu-us/work")), num(v.fig(n, "allocs/op")), ratio(ns, floor), ratio(ns, ap))
		}
	}
	t.write(w)
	fmt.Fprintln(w, "Throughput on the default pool (NumCPU worker processes), beside Python's ProcessPoolExecutor (NumCPU processes):")
	fmt.Fprintln(w)
	t = &table{head: []string{"workload", "implementation", "works/s", "spread", "ns/work", "CPU µs/work", "allocs/work", "aplex ÷ python (speed)"}}
	type pair struct {
		mode, name, unit, allocUnit string
		pyWorkload                  string
		chunk                       int
	}
	for _, p := range []pair{
		{"all submitted, then collected", "Process/all-then-collect/aplex-process", "ns/op", "allocs/op", "overhead", 0},
		{"Map, ChunkSize 1", "Process/map/chunk=1/aplex-process", "ns/work", "allocs/work", "map", 1},
		{"Map, ChunkSize 100", "Process/map/chunk=100/aplex-process", "ns/work", "allocs/work", "map", 100},
	} {
		py, pyOK := v.py.find(p.pyWorkload, "ProcessPoolExecutor", p.chunk)
		ws := v.fig(p.name, "works/s")
		if v.has(p.name) {
			speed := "–"
			if pyOK {
				speed = ratio(ws, py.WorksPerS)
			}
			t.add(p.mode, "**aplex-process**", num(ws), v.spread(p.name, "works/s"), num(v.fig(p.name, p.unit)), num(v.fig(p.name, "cpu-us/work")), num(v.fig(p.name, p.allocUnit)), speed)
		}
		if pyOK {
			t.add(p.mode, "python ProcessPoolExecutor", num(py.WorksPerS), "–", num(py.NsPerWork), "–", "–", "")
		}
	}
	t.write(w)
}

func (v view) cluster(w io.Writer) {
	section(w, "## 7. Cluster: NATS round trips and Map", fmt.Sprintf("%d local worker processes per executor. unsealed and sealed (a pool key) share one NATS server in this process, reached in-process as the embedded default reaches its own; embedded is the default set-up itself (its own server, sealed with the key it generates). Floor: a raw NATS request/reply (8 bytes) from this process, in-process to the server, answered by the unsealed executor's workers over TCP loopback. rtt = one no-op work at a time; Map = 100,000 no-op inputs, ChunkSize 100.", bench.ClusterWorkers))
	t := &table{head: []string{"mode", "implementation", "µs/work", "spread", "works/s", "allocs/work", "÷ floor", "÷ unsealed"}}
	floor, un := v.fig("Cluster/rtt/raw-nats", "ns/op"), v.fig("Cluster/rtt/unsealed", "ns/op")
	for _, impl := range []string{"raw-nats", "unsealed", "sealed", "embedded"} {
		n := "Cluster/rtt/" + impl
		if !v.has(n) {
			continue
		}
		lbl := "**aplex-cluster** " + impl
		if impl == "raw-nats" {
			lbl = "floor: raw NATS request/reply"
		}
		ns := v.fig(n, "ns/op")
		t.add("rtt", lbl, num(ns/1e3), v.spread(n, "ns/op"), num(v.fig(n, "works/s")), num(v.fig(n, "allocs/op")), ratio(ns, floor), ratio(ns, un))
	}
	un = v.fig("Cluster/map/chunk=100/unsealed", "ns/work")
	for _, impl := range []string{"unsealed", "sealed", "embedded"} {
		n := "Cluster/map/chunk=100/" + impl
		if !v.has(n) {
			continue
		}
		ns := v.fig(n, "ns/work")
		t.add("Map, ChunkSize 100", "**aplex-cluster** "+impl, num(ns/1e3), v.spread(n, "works/s"), num(v.fig(n, "works/s")), num(v.fig(n, "allocs/work")), "–", ratio(ns, un))
	}
	t.write(w)
}

// nan reports a missing figure.
func nan(x float64) bool { return math.IsNaN(x) }

// section writes a workload's heading and the paragraph that explains it.
func section(w io.Writer, heading, intro string) {
	fmt.Fprintf(w, "%s\n\n%s\n\n", heading, intro)
}
