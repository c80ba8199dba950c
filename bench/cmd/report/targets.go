package main

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/aplex-go/aplex/bench"
	"github.com/aplex-go/aplex/bench/internal/stats"
)

// target is one performance target of issue 12.
type target struct {
	what   string
	figure string
	met    bool
	known  bool
	// margin is how far the median lies from the limit, spread how far
	// the runs behind it stray toward the limit (check.towardLimit), both
	// as fractions of the limit; spread NaN when unknown.
	margin, spread float64
}

// check is one comparison a target makes: the measured value x (a figure
// or a ratio of figures, the median of its runs), its limit, whether x
// must stay at or below it (else at or above), and its runs.
type check struct {
	x, limit float64
	atMost   bool
	runs     runSet
}

// runSet is what a check knows of the runs behind its value: the runs
// themselves when known (figures of interleaved runs, or their run-by-run
// ratios), else only their spread around the median (ratios of figures
// with different numbers of runs).
type runSet struct {
	vs     []float64
	spread float64
}

// scaled returns the runs divided by k.
func (r runSet) scaled(k float64) runSet {
	out := runSet{spread: r.spread}
	for _, v := range r.vs {
		out.vs = append(out.vs, v/k)
	}
	return out
}

// towardLimit is the spread the verdict weighs against the margin: how far
// the median's confidence interval (stats.MedianCI: with up to 8 runs, their
// whole range) reaches from the median toward the limit, as a share of the
// limit, so that it exceeds the margin exactly when the interval reaches
// past the limit: the runs cannot tell on which side of it the median
// lies. Without the runs, it is the spread around the median (both sides,
// as a share of the median).
func (c check) towardLimit() float64 {
	if len(c.runs.vs) == 0 {
		return c.runs.spread
	}
	lim := math.Abs(c.limit)
	if lim == 0 {
		lim = 1
	}
	lo, hi := stats.MedianCI(c.runs.vs)
	if c.x <= c.limit {
		return max(0, hi-c.x) / lim
	}
	return max(0, c.x-lo) / lim
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

// Limits of issue 12's targets.
const (
	overheadFloorLimit = 1.2   // aplex-thread ns/work ÷ go+wg+sem
	overheadAllocs     = 1     // allocations per work
	fanoutCPULimit     = 2.0   // µs of CPU per work
	rttPipeLimit       = 2.0   // process round trip ÷ raw pipe
	rttPluginLimit     = 3.0   // go-plugin round trip ÷ aplex's
	procFanoutLimit    = 1.2   // process fan-out wall ÷ its ideal
	pythonLimit        = 30.0  // W1 process works/s ÷ Python's
	procMapLimit       = 1.5e6 // process Map ChunkSize(100), works/s
	clusterRTTLimit    = 1.5   // cluster round trip ÷ raw NATS request/reply
	clusterMapLimit    = 500e3 // cluster Map ChunkSize(100), works/s
)

// bestPeer returns the peer library with the lowest median of workload's
// unit ("Overhead", "ns/op"), and that median; ("", +Inf) when no peer ran.
func (v view) bestPeer(workload, unit string) (string, float64) {
	best, name := math.Inf(1), ""
	for _, im := range bench.Impls(false) {
		if im.Kind != bench.KindPeer {
			continue
		}
		if x := v.fig(workload+"/"+im.Name, unit); !nan(x) && x < best {
			best, name = x, im.Name
		}
	}
	return name, best
}

// targets checks issue 12's targets, in its order, each a figure or a
// ratio of two figures measured in the same interleaved runs. A target
// whose figures are missing is listed as no data rather than left out, so
// the table always names every target.
func (v view) targets() []target {
	var ts []target
	add := func(what string, known bool, c check, format string, args ...any) {
		met, marg := c.judge()
		ts = append(ts, target{what: what, known: known, met: met, margin: marg, spread: c.towardLimit(), figure: fmt.Sprintf(format, args...)})
	}
	// sp is the spread of one figure; rt a ratio of two, run by run, with
	// its spread.
	sp := func(name, unit string) runSet {
		return runSet{vs: v.rs[name][unit], spread: v.rs.spread(name, unit)}
	}
	rt := func(a, b, unit string) (float64, runSet) {
		r, s := v.rs.ratio(a, unit, b, unit)
		return r, runSet{vs: v.rs.ratioRuns(a, unit, b, unit), spread: s}
	}
	ok := func(xs ...float64) bool {
		for _, x := range xs {
			if nan(x) || math.IsInf(x, 0) {
				return false
			}
		}
		return true
	}

	// Overhead: no-op works, submitted then collected.
	ap, sem := v.fig("Overhead/aplex-thread", "ns/op"), v.fig("Overhead/go+wg+sem", "ns/op")
	peer, best := v.bestPeer("Overhead", "ns/op")
	r, rs := rt("Overhead/aplex-thread", "Overhead/"+peer, "ns/op")
	add("Overhead: aplex-thread ns/work ≤ the best peer's", ok(ap, best), check{r, 1, true, rs},
		"%s ns vs %s %s ns: %s run by run", num(ap), orDash(peer), num(best), times(r))
	r, rs = rt("Overhead/aplex-thread", "Overhead/go+wg+sem", "ns/op")
	add(fmt.Sprintf("Overhead: ≤ %.1f× the go+wg+sem floor", overheadFloorLimit), ok(ap, sem), check{r, overheadFloorLimit, true, rs},
		"%s ns vs %s ns: %s run by run", num(ap), num(sem), times(r))
	allocs := v.fig("Overhead/aplex-thread", "allocs/op")
	add("Overhead: 1 allocation per work", ok(allocs), check{allocs, overheadAllocs, true, sp("Overhead/aplex-thread", "allocs/op")},
		"%s allocs/work", num(allocs))

	// Fan-out: 10,000 × 10 ms at 1,200 in flight, CPU per work.
	fc := v.fig("FanOut/aplex-thread", "cpu-us/work")
	fcRuns := sp("FanOut/aplex-thread", "cpu-us/work")
	peer, best = v.bestPeer("FanOut", "cpu-us/work")
	r, rs = rt("FanOut/aplex-thread", "FanOut/"+peer, "cpu-us/work")
	add("Fan-out CPU per work ≤ the best peer's", ok(fc, best), check{r, 1, true, rs},
		"%s µs vs %s %s µs: %s run by run", num(fc), orDash(peer), num(best), times(r))
	add(fmt.Sprintf("Fan-out CPU ≤ %.1f µs per work", fanoutCPULimit), ok(fc), check{fc, fanoutCPULimit, true, fcRuns},
		"%s µs/work (floors: chan-pool %s µs, futures-pool %s µs)", num(fc), num(v.fig("FanOut/chan-pool", "cpu-us/work")), num(v.fig("FanOut/futures-pool", "cpu-us/work")))

	// Process workers.
	pipeFloor := v.pipeFloor("rtt")
	rtt, pipe, plug := v.fig("Process/rtt/aplex-process", "ns/op"), v.fig(pipeFloor, "ns/op"), v.fig("Process/rtt/go-plugin", "ns/op")
	r, rs = rt("Process/rtt/aplex-process", pipeFloor, "ns/op")
	add(fmt.Sprintf("Process round trip ≤ %.0f× the raw pipe", rttPipeLimit), ok(rtt, pipe), check{r, rttPipeLimit, true, rs},
		"%s µs vs %s µs: %s run by run", num(rtt/1e3), num(pipe/1e3), times(r))
	r, rs = rt("Process/rtt/go-plugin", "Process/rtt/aplex-process", "ns/op")
	add(fmt.Sprintf("Process round trip ≥ %.0f× faster than go-plugin", rttPluginLimit), ok(rtt, plug), check{r, rttPluginLimit, false, rs},
		"go-plugin %s µs ÷ aplex %s µs: %s run by run", num(plug/1e3), num(rtt/1e3), times(r))
	// Judged with WithPrefetch, the option made for this load; the
	// default's figure stands beside it.
	pf := v.fig("FanOut/aplex-process-prefetch", "x-ideal")
	add(fmt.Sprintf("Process fan-out ≤ %.1f× its ideal (WithPrefetch)", procFanoutLimit), ok(pf), check{pf, procFanoutLimit, true, sp("FanOut/aplex-process-prefetch", "x-ideal")},
		"%s ms = %s× the ideal in steady state with WithPrefetch(300), first batch %s×; without: %s× (first batch %s×); aplex-thread: %s×", num(v.fig("FanOut/aplex-process-prefetch", "wall-ms")), num(pf), num(v.fig("FanOut/aplex-process-prefetch", "first-x-ideal")), num(v.fig("FanOut/aplex-process", "x-ideal")), num(v.fig("FanOut/aplex-process", "first-x-ideal")), num(v.fig("FanOut/aplex-thread", "x-ideal")))
	// W1: Python's figure is pools.py's ProcessPoolExecutor, taken in the
	// same report; it has one run, so no spread of its own.
	atc := v.fig("Process/all-then-collect/aplex-process", "works/s")
	py, pyOK := v.py.find("overhead", "ProcessPoolExecutor", 0)
	pyWS := none
	if pyOK {
		pyWS = py.WorksPerS
	}
	add(fmt.Sprintf("W1 process ≥ %.0f× Python's", pythonLimit), ok(atc, pyWS), check{atc / pyWS, pythonLimit, false, sp("Process/all-then-collect/aplex-process", "works/s").scaled(pyWS)},
		"%s ÷ %s works/s (Python's ProcessPoolExecutor) = %s", num(atc), num(pyWS), ratio(atc, pyWS))
	pm := v.fig("Process/map/chunk=100/aplex-process", "works/s")
	add("Process Map ChunkSize(100) ≥ 1.5 M works/s (default pool)", ok(pm), check{pm, procMapLimit, false, sp("Process/map/chunk=100/aplex-process", "works/s")},
		"%s works/s", num(pm))

	// Cluster workers: the unsealed pool, then the sealed one beside it.
	raw := v.fig("Cluster/rtt/raw-nats", "ns/op")
	for _, kind := range []string{"unsealed", "sealed"} {
		n := "Cluster/rtt/" + kind
		x := v.fig(n, "ns/op")
		r, rs := rt(n, "Cluster/rtt/raw-nats", "ns/op")
		add(fmt.Sprintf("Cluster round trip ≤ %.1f× a raw NATS request/reply (%s)", clusterRTTLimit, kind), ok(x, raw), check{r, clusterRTTLimit, true, rs},
			"%s µs vs %s µs: %s run by run", num(x/1e3), num(raw/1e3), times(r))
	}
	for _, kind := range []string{"unsealed", "sealed"} {
		n := "Cluster/map/chunk=100/" + kind
		x := v.fig(n, "works/s")
		add(fmt.Sprintf("Cluster Map ChunkSize(100) > 500 k works/s over %d local workers (%s)", bench.ClusterWorkers, kind), ok(x), check{x, clusterMapLimit, false, sp(n, "works/s")},
			"%s works/s", num(x))
	}
	return ts
}

// orDash returns s, or "–" for none.
func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func (v view) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "## Targets (issue 12)")
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
	fmt.Fprintln(w, "Margin: how far the median lies from the target's limit, as a share of the limit. Spread: how far the median's 95 % confidence interval reaches toward the limit, also as a share of the limit (the interval is distribution-free, from the order statistics of the runs: with up to 8 runs, their whole range; with 15, the 4th smallest to the 4th largest; the other tables' spread is the widest run's distance from the median, both ways), so that it is wider than the margin exactly when the interval reaches past the limit: such a target is called unclear rather than met or not met. A ratio is taken run by run, each run's two figures from the same round, and judged by the median and the runs of those ratios: the machine's changes of speed between rounds move both figures, and the run's ratio cancels them.")
	fmt.Fprintln(w)
}
