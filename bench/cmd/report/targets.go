package main

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/aplex-go/aplex/bench"
)

// target is one performance target of DESIGN.md §5.
type target struct {
	what   string
	figure string
	met    bool
	known  bool
	// margin is how far the median lies from the limit, spread how far
	// the runs behind it stray (fractions; spread NaN when unknown).
	margin, spread float64
}

// check is one comparison a target makes: the measured value x (a figure
// or a ratio of figures), its limit, whether x must stay at or below it
// (else at or above), and the spread of x.
type check struct {
	x, limit float64
	atMost   bool
	spread   float64
}

// judge returns whether the check is met by the medians, and its margin.
func (c check) judge() (met bool, marg float64) {
	if c.atMost {
		met = c.x <= c.limit
	} else {
		met = c.x >= c.limit
	}
	return met, margin(c.x, c.limit)
}

// targets checks every target the suite measures.
func (v view) targets() []target {
	var ts []target
	add := func(what string, known bool, c check, format string, args ...any) {
		met, marg := c.judge()
		ts = append(ts, target{what: what, known: known, met: met, margin: marg, spread: c.spread, figure: fmt.Sprintf(format, args...)})
	}
	// sp is the spread of one figure; ratios add their figures' spreads.
	sp := func(name, unit string) float64 { return v.rs.spread(name, unit) }
	ok := func(xs ...float64) bool {
		for _, x := range xs {
			if nan(x) {
				return false
			}
		}
		return true
	}

	ap, raw, sem := v.fig("Overhead/aplex-thread", "ns/op"), v.fig("Overhead/go+wg", "ns/op"), v.fig("Overhead/go+wg+sem", "ns/op")
	add("goroutine executor submit+get ≤ 1.2× a raw goroutine per work", ok(ap, sem), check{ap / sem, 1.2, true, sumSpread(sp("Overhead/aplex-thread", "ns/op"), sp("Overhead/go+wg+sem", "ns/op"))},
		"%s ns vs go+wg+sem %s ns = %s (vs unbounded go+wg %s ns: %s)", num(ap), num(sem), ratio(ap, sem), num(raw), ratio(ap, raw))
	allocs := v.fig("Overhead/aplex-thread", "allocs/op")
	add("≤ 2 allocations per work", ok(allocs), check{allocs, 2, true, sp("Overhead/aplex-thread", "allocs/op")}, "%s allocs/work", num(allocs))
	pond := v.fig("Overhead/pond", "ns/op")
	add("≥ 2× faster than pond v2 futures", ok(ap, pond), check{pond / ap, 2, false, sumSpread(sp("Overhead/pond", "ns/op"), sp("Overhead/aplex-thread", "ns/op"))}, "pond %s ns ÷ aplex %s ns = %s", num(pond), num(ap), ratio(pond, ap))
	mws := v.fig("Map/aplex-thread/chunk=100", "works/s")
	add("Map ChunkSize(100) ≥ 5 M works/s", ok(mws), check{mws, 5e6, false, sp("Map/aplex-thread/chunk=100", "works/s")}, "%s works/s", num(mws))

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
	add("fan-out wall no worse than the best peer", ok(fw) && bestName != "", check{fw / best, 1, true, sumSpread(sp("FanOut/aplex-thread", "wall-ms"), sp("FanOut/"+bestName, "wall-ms"))},
		"%s ms vs %s %s ms = %s", num(fw), bestName, num(best), ratio(fw, best))
	floorCPU := v.fig("FanOut/chan-pool", "cpu-us/work")
	add("fan-out CPU ≤ 2 µs per work", ok(fc), check{fc, 2, true, sp("FanOut/aplex-thread", "cpu-us/work")}, "%s µs/work (the chan-pool floor: %s µs)", num(fc), num(floorCPU))

	mem, memRaw := v.fig("Memory/aplex-thread", "live-B/work"), v.fig("Memory/go+wg", "live-B/work")
	add("100,000 in flight ≤ 1.2× raw goroutines' memory", ok(mem, memRaw), check{mem / memRaw, 1.2, true, sumSpread(sp("Memory/aplex-thread", "live-B/work"), sp("Memory/go+wg", "live-B/work"))},
		"%s B vs %s B live per work = %s", num(mem), num(memRaw), ratio(mem, memRaw))

	rtt, pipe, plug := v.fig("Process/rtt/aplex-process", "ns/op"), v.fig("Process/rtt/pipe-floor", "ns/op"), v.fig("Process/rtt/go-plugin", "ns/op")
	add("process round trip ≤ 2× the raw pipe ping-pong", ok(rtt, pipe), check{rtt / pipe, 2, true, sumSpread(sp("Process/rtt/aplex-process", "ns/op"), sp("Process/rtt/pipe-floor", "ns/op"))},
		"%s µs vs %s µs = %s", num(rtt/1e3), num(pipe/1e3), ratio(rtt, pipe))
	add("process round trip ≥ 3× faster than go-plugin", ok(rtt, plug), check{plug / rtt, 3, false, sumSpread(sp("Process/rtt/go-plugin", "ns/op"), sp("Process/rtt/aplex-process", "ns/op"))},
		"go-plugin %s µs ÷ aplex %s µs = %s", num(plug/1e3), num(rtt/1e3), ratio(plug, rtt))
	atc := v.fig("Process/all-then-collect/aplex-process", "works/s")
	add("process no-op works all-then-collect ≥ 200k works/s", ok(atc), check{atc, 2e5, false, sp("Process/all-then-collect/aplex-process", "works/s")}, "%s works/s", num(atc))
	if py, found := v.py.find("overhead", "ProcessPoolExecutor", 0); found {
		add("… and ≥ 30× Python's ProcessPoolExecutor", ok(atc), check{atc / py.WorksPerS, 30, false, sp("Process/all-then-collect/aplex-process", "works/s")},
			"%s ÷ %s works/s = %s", num(atc), num(py.WorksPerS), ratio(atc, py.WorksPerS))
	}
	pm := v.fig("Process/map/chunk=100/aplex-process", "works/s")
	add("process Map ChunkSize(100) ≥ 1.5 M works/s", ok(pm), check{pm, 1.5e6, false, sp("Process/map/chunk=100/aplex-process", "works/s")}, "%s works/s", num(pm))
	return ts
}

func (v view) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "## Targets (DESIGN.md §5)")
	fmt.Fprintln(w)
	if v.short {
		fmt.Fprintln(w, "**-short run: a tenth of the real sizes, so these verdicts do not count.**")
		fmt.Fprintln(w)
	}
	if v.quick {
		fmt.Fprintf(w, "**A quick look (fewer than %d runs, or a -benchtime override), so these verdicts do not count.**\n", minRuns)
		fmt.Fprintln(w)
	}
	t := &table{head: []string{"target", "measured", "margin", "spread", "verdict"}}
	met, unclear, total := 0, 0, 0
	for _, tg := range v.targets() {
		vd := verdict(tg.known, tg.met, tg.margin, tg.spread)
		switch vd {
		case verdictMet:
			met++
		case verdictUnclear:
			unclear++
		}
		if tg.known {
			total++
		}
		marg, spr := "–", "–"
		if tg.known {
			marg, spr = strings.TrimPrefix(pct(tg.margin), "±"), pct(tg.spread)
		}
		t.add(tg.what, tg.figure, marg, spr, vd)
	}
	t.head[0] = fmt.Sprintf("target (%d of %d met, %d unclear)", met, total, unclear)
	t.write(w)
	fmt.Fprintln(w, "Margin: how far the median lies from the target's limit, as a share of the limit. Spread: how far the runs stray from their median (a ratio adds its two figures' spreads). A target whose spread is wider than its margin has runs on both sides of the limit, so it is called unclear rather than met or not met.")
	fmt.Fprintln(w)
}
