package main

import (
	"fmt"
	"io"
	"math"

	"github.com/aplex-go/aplex/bench"
)

// target is one performance target of DESIGN.md §5.
type target struct {
	what   string
	figure string
	met    bool
	known  bool
	noise  bool // met only within the figure's run-to-run noise
}

// fanOutNoise is the run-to-run spread of a fan-out wall time on the
// project's 2-core VM (±3–5 % within one row): a wall within it of the best
// peer's counts as no worse.
const fanOutNoise = 0.03

// targets checks every target the suite measures.
func (v view) targets() []target {
	var ts []target
	add := func(what string, known, met bool, format string, args ...any) {
		ts = append(ts, target{what: what, known: known, met: met, figure: fmt.Sprintf(format, args...)})
	}
	ok := func(xs ...float64) bool {
		for _, x := range xs {
			if nan(x) {
				return false
			}
		}
		return true
	}

	ap, raw, sem := v.fig("Overhead/aplex-thread", "ns/op"), v.fig("Overhead/go+wg", "ns/op"), v.fig("Overhead/go+wg+sem", "ns/op")
	add("goroutine executor submit+get ≤ 1.2× a raw goroutine per work", ok(ap, sem), ap <= 1.2*sem,
		"%s ns vs go+wg+sem %s ns = %s (vs unbounded go+wg %s ns: %s)", num(ap), num(sem), ratio(ap, sem), num(raw), ratio(ap, raw))
	allocs := v.fig("Overhead/aplex-thread", "allocs/op")
	add("≤ 2 allocations per work", ok(allocs), allocs <= 2, "%s allocs/work", num(allocs))
	pond := v.fig("Overhead/pond", "ns/op")
	add("≥ 2× faster than pond v2 futures", ok(ap, pond), pond >= 2*ap, "pond %s ns ÷ aplex %s ns = %s", num(pond), num(ap), ratio(pond, ap))
	mws := v.fig("Map/aplex-thread/chunk=100", "works/s")
	add("Map ChunkSize(100) ≥ 5 M works/s", ok(mws), mws >= 5e6, "%s works/s", num(mws))

	fw, fc := v.fig("FanOut/aplex-thread", "wall-ms"), v.fig("FanOut/aplex-thread", "cpu-us/work")
	best, bestName := math.Inf(1), ""
	for _, im := range bench.Impls(false) {
		if im.Kind != bench.KindPeer {
			continue
		}
		if x := v.fig("FanOut/"+im.Name, "wall-ms"); !nan(x) && x < best {
			best, bestName = x, im.Name
		}
	}
	add("fan-out wall no worse than the best peer", ok(fw) && bestName != "", fw <= best*(1+fanOutNoise),
		"%s ms vs %s %s ms = %s", num(fw), bestName, num(best), ratio(fw, best))
	ts[len(ts)-1].noise = fw > best
	floorCPU := v.fig("FanOut/chan-pool", "cpu-us/work")
	add("fan-out CPU ≤ 2 µs per work", ok(fc), fc <= 2, "%s µs/work (the chan-pool floor: %s µs)", num(fc), num(floorCPU))

	mem, memRaw := v.fig("Memory/aplex-thread", "live-B/work"), v.fig("Memory/go+wg", "live-B/work")
	add("100,000 in flight ≤ 1.2× raw goroutines' memory", ok(mem, memRaw), mem <= 1.2*memRaw,
		"%s B vs %s B live per work = %s", num(mem), num(memRaw), ratio(mem, memRaw))

	rtt, pipe, plug := v.fig("Process/rtt/aplex-process", "ns/op"), v.fig("Process/rtt/pipe-floor", "ns/op"), v.fig("Process/rtt/go-plugin", "ns/op")
	add("process round trip ≤ 2× the raw pipe ping-pong", ok(rtt, pipe), rtt <= 2*pipe,
		"%s µs vs %s µs = %s", num(rtt/1e3), num(pipe/1e3), ratio(rtt, pipe))
	add("process round trip ≥ 3× faster than go-plugin", ok(rtt, plug), plug >= 3*rtt,
		"go-plugin %s µs ÷ aplex %s µs = %s", num(plug/1e3), num(rtt/1e3), ratio(plug, rtt))
	atc := v.fig("Process/all-then-collect/aplex-process", "works/s")
	add("process no-op works all-then-collect ≥ 200k works/s", ok(atc), atc >= 2e5, "%s works/s", num(atc))
	if py, found := v.py.find("overhead", "ProcessPoolExecutor", 0); found {
		add("… and ≥ 30× Python's ProcessPoolExecutor", ok(atc), atc >= 30*py.WorksPerS,
			"%s ÷ %s works/s = %s", num(atc), num(py.WorksPerS), ratio(atc, py.WorksPerS))
	}
	pm := v.fig("Process/map/chunk=100/aplex-process", "works/s")
	add("process Map ChunkSize(100) ≥ 1.5 M works/s", ok(pm), pm >= 1.5e6, "%s works/s", num(pm))
	return ts
}

func (v view) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "## Targets (DESIGN.md §5)")
	fmt.Fprintln(w)
	if v.short {
		fmt.Fprintln(w, "**-short run: a tenth of the real sizes, so these verdicts do not count.**")
		fmt.Fprintln(w)
	}
	t := &table{head: []string{"target", "measured", "verdict"}}
	met, total := 0, 0
	for _, tg := range v.targets() {
		verdict := "no data"
		if tg.known {
			total++
			if tg.met {
				verdict = "met"
				if tg.noise {
					verdict = "met (within the 3 % noise)"
				}
				met++
			} else {
				verdict = "**not met**"
			}
		}
		t.add(tg.what, tg.figure, verdict)
	}
	t.head[0] = fmt.Sprintf("target (%d of %d met)", met, total)
	t.write(w)
}
