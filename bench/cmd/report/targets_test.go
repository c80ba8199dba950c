package main

import (
	"slices"
	"strings"
	"testing"
)

// issue12Targets is issue 12's target list, in its order: the report must
// check exactly these.
var issue12Targets = []string{
	"Overhead: aplex-thread ns/work ≤ the best peer's",
	"Overhead: ≤ 1.2× the go+wg+sem floor",
	"Overhead: 1 allocation per work",
	"Fan-out CPU per work ≤ the best peer's",
	"Fan-out CPU ≤ 2.0 µs per work",
	"Process round trip ≤ 2× the raw pipe",
	"Process round trip ≥ 3× faster than go-plugin",
	"Process fan-out ≤ 1.2× its ideal (WithPrefetch)",
	"W1 process ≥ 30× Python's",
	"Process Map ChunkSize(100) ≥ 1.5 M works/s (default pool)",
	"Cluster round trip ≤ 1.5× a raw NATS request/reply (unsealed)",
	"Cluster round trip ≤ 1.5× a raw NATS request/reply (sealed)",
	"Cluster Map ChunkSize(100) > 500 k works/s over 3 local workers (unsealed)",
	"Cluster Map ChunkSize(100) > 500 k works/s over 3 local workers (sealed)",
}

// fig is one benchmark figure for a synthetic run.
type fig struct {
	name, unit string
	v          float64
}

// metAll is a run in which every target is met with room to spare.
var metAll = []fig{
	{"Overhead/aplex-thread", "ns/op", 500}, {"Overhead/aplex-thread", "allocs/op", 1},
	{"Overhead/go+wg+sem", "ns/op", 450}, {"Overhead/chan-pool", "ns/op", 100},
	{"Overhead/ants", "ns/op", 800}, {"Overhead/workerpool", "ns/op", 650}, {"Overhead/pond", "ns/op", 2000},
	{"FanOut/aplex-thread", "cpu-us/work", 1.5}, {"FanOut/chan-pool", "cpu-us/work", 1.0},
	{"FanOut/conc", "cpu-us/work", 2.4}, {"FanOut/ants", "cpu-us/work", 2.7},
	{"FanOut/aplex-process", "x-ideal", 1.20}, {"FanOut/aplex-process", "wall-ms", 108},
	{"FanOut/aplex-process-prefetch", "x-ideal", 1.10}, {"FanOut/aplex-process-prefetch", "wall-ms", 99},
	{"Process/rtt/aplex-process", "ns/op", 60e3}, {"Process/rtt/pipe-floor", "ns/op", 45e3}, {"Process/rtt/go-plugin", "ns/op", 185e3},
	{"Process/all-then-collect/aplex-process", "works/s", 250e3},
	{"Process/map/chunk=100/aplex-process", "works/s", 2e6},
	{"Cluster/rtt/raw-nats", "ns/op", 200e3}, {"Cluster/rtt/unsealed", "ns/op", 210e3}, {"Cluster/rtt/sealed", "ns/op", 220e3},
	{"Cluster/map/chunk=100/unsealed", "works/s", 1.9e6}, {"Cluster/map/chunk=100/sealed", "works/s", 1.8e6},
}

// pyMet is a Python report 40× slower than metAll's W1.
var pyMet = &pyReport{Rows: []pyRow{{Workload: "overhead", Impl: "ProcessPoolExecutor", WorksPerS: 250e3 / 40}}}

// runsOf returns results holding each figure five times, with edit
// applied first (a tight run: no spread).
func runsOf(figs []fig, edit map[string]float64) results {
	rs := results{}
	for _, f := range figs {
		v := f.v
		if x, ok := edit[f.name+" "+f.unit]; ok {
			v = x
		}
		for range 5 {
			rs.add(f.name, f.unit, v)
		}
	}
	return rs
}

// TestTargetsAreIssue12s checks that the report checks exactly issue 12's
// targets, each with a figure, and that a run meeting them all is called
// met on every row.
func TestTargetsAreIssue12s(t *testing.T) {
	v := view{rs: runsOf(metAll, nil), py: pyMet}
	ts := v.targets()
	var names []string
	for _, tg := range ts {
		names = append(names, tg.what)
		if got := verdict(tg.known, tg.met, tg.margin, tg.spread); got != verdictMet {
			t.Errorf("%s: %q (%s, margin %v, spread %v), want met", tg.what, got, tg.figure, tg.margin, tg.spread)
		}
	}
	if !slices.Equal(names, issue12Targets) {
		t.Errorf("targets:\n%s\nwant issue 12's:\n%s", strings.Join(names, "\n"), strings.Join(issue12Targets, "\n"))
	}
	var b strings.Builder
	v.writeTargets(&b)
	if want := "14 of 14 met, 0 unclear"; !strings.Contains(b.String(), want) {
		t.Errorf("the targets table does not say %q:\n%s", want, b.String())
	}
}

// TestTargetsWithoutFiguresSayNoData checks that a target whose figures
// were not measured (a workload left out with -only, Python skipped) is
// still listed, as no data, rather than dropped or judged.
func TestTargetsWithoutFiguresSayNoData(t *testing.T) {
	var b strings.Builder
	view{rs: results{}}.writeTargets(&b)
	out := b.String()
	for _, name := range issue12Targets {
		line := lineWith(out, name)
		if !strings.HasSuffix(line, verdictNoData+" |") {
			t.Errorf("%s: %q, want %s", name, line, verdictNoData)
		}
	}
	if want := "0 of 0 met"; !strings.Contains(out, want) {
		t.Errorf("the targets table does not say %q:\n%s", want, out)
	}

	// Python skipped: only W1 lacks its figure.
	v := view{rs: runsOf(metAll, nil)}
	for _, tg := range v.targets() {
		if want := tg.what != "W1 process ≥ 30× Python's"; tg.known != want {
			t.Errorf("%s: known = %v without Python, want %v", tg.what, tg.known, want)
		}
	}
}

// TestTargetVerdicts moves one figure of the all-met run at a time and
// checks the verdict of the target it feeds: the best peer is the cheapest
// peer (never a floor), the sealed figures are judged beside the
// unsealed ones, and ratios point the right way.
func TestTargetVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   map[string]float64
		target string
		want   string
		figure string // part of the measured cell
	}{
		{"behind the best peer", map[string]float64{"Overhead/aplex-thread ns/op": 700}, issue12Targets[0], verdictNotMet, "workerpool 650 ns"},
		{"a floor is no peer", map[string]float64{"Overhead/chan-pool ns/op": 10}, issue12Targets[0], verdictMet, "workerpool"},
		{"over 1.2× the floor", map[string]float64{"Overhead/aplex-thread ns/op": 600}, issue12Targets[1], verdictNotMet, "1.33×"},
		{"two allocations", map[string]float64{"Overhead/aplex-thread allocs/op": 2}, issue12Targets[2], verdictNotMet, "2.00 allocs"},
		{"fan-out CPU over the best peer", map[string]float64{"FanOut/aplex-thread cpu-us/work": 3.0}, issue12Targets[3], verdictNotMet, "conc 2.40 µs"},
		{"fan-out CPU over 2 µs", map[string]float64{"FanOut/aplex-thread cpu-us/work": 2.3}, issue12Targets[4], verdictNotMet, "2.30 µs/work"},
		{"round trip 2.5× the pipe", map[string]float64{"Process/rtt/aplex-process ns/op": 112.5e3}, issue12Targets[5], verdictNotMet, "2.50×"},
		{"only 1.6× faster than go-plugin", map[string]float64{"Process/rtt/aplex-process ns/op": 115e3}, issue12Targets[6], verdictNotMet, "1.61×"},
		{"process fan-out 1.27× its ideal", map[string]float64{"FanOut/aplex-process-prefetch x-ideal": 1.27}, issue12Targets[7], verdictNotMet, "1.27×"},
		{"W1 only 24× Python's", map[string]float64{"Process/all-then-collect/aplex-process works/s": 150e3}, issue12Targets[8], verdictNotMet, "24.00×"},
		{"process Map 1.1 M works/s", map[string]float64{"Process/map/chunk=100/aplex-process works/s": 1.1e6}, issue12Targets[9], verdictNotMet, "1,100,000"},
		{"unsealed round trip 2× raw NATS", map[string]float64{"Cluster/rtt/unsealed ns/op": 400e3}, issue12Targets[10], verdictNotMet, "2.00×"},
		{"sealed round trip 1.6× raw NATS", map[string]float64{"Cluster/rtt/sealed ns/op": 320e3}, issue12Targets[11], verdictNotMet, "1.60×"},
		{"sealed slow: unsealed still met", map[string]float64{"Cluster/rtt/sealed ns/op": 320e3}, issue12Targets[10], verdictMet, "1.05×"},
		{"unsealed Map 450 k works/s", map[string]float64{"Cluster/map/chunk=100/unsealed works/s": 450e3}, issue12Targets[12], verdictNotMet, "450,000"},
		{"sealed Map 450 k works/s", map[string]float64{"Cluster/map/chunk=100/sealed works/s": 450e3}, issue12Targets[13], verdictNotMet, "450,000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := view{rs: runsOf(metAll, tc.edit), py: pyMet}
			for _, tg := range v.targets() {
				if tg.what != tc.target {
					continue
				}
				if got := verdict(tg.known, tg.met, tg.margin, tg.spread); got != tc.want {
					t.Errorf("verdict = %q (%s), want %q", got, tg.figure, tc.want)
				}
				if !strings.Contains(tg.figure, tc.figure) {
					t.Errorf("figure %q lacks %q", tg.figure, tc.figure)
				}
				return
			}
			t.Fatalf("no target %q", tc.target)
		})
	}
}

// TestClusterWorkload checks that the suite runs the cluster workload, and
// that its rows reach the cluster table.
func TestClusterWorkload(t *testing.T) {
	i := slices.IndexFunc(workloads(), func(w workload) bool { return w.key == "cluster" })
	if i < 0 || workloads()[i].bench != "BenchmarkCluster" {
		t.Fatalf("no cluster workload running BenchmarkCluster: %+v", workloads())
	}
	rs := results{}
	err := rs.parse(strings.NewReader(`BenchmarkCluster/rtt/raw-nats-2         	    5000	    200000 ns/op	      5000 works/s	    1848 B/op	      25 allocs/op
BenchmarkCluster/rtt/sealed-2           	    5000	    220000 ns/op	      4545 works/s	    2312 B/op	      27 allocs/op
BenchmarkCluster/map/chunk=100/sealed-2 	       5	 183905279 ns/op	         3.155 allocs/work	      1839 ns/work	    543758 works/s	16128248 B/op	  315492 allocs/op
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := rs.get("Cluster/map/chunk=100/sealed", "works/s"); got != 543758 {
		t.Errorf("sealed Map works/s = %v, want 543758", got)
	}
	var b strings.Builder
	view{rs: rs}.cluster(&b)
	out := b.String()
	for _, want := range []string{"| rtt | floor: raw NATS request/reply | 200 |", "| rtt | **aplex-cluster** sealed | 220 |", "1.10×", "| Map, ChunkSize 100 | **aplex-cluster** sealed | 1.84 |", "543,758"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster table lacks %q:\n%s", want, out)
		}
	}
}

// lineWith returns the first line of s holding sub, or "".
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestRoundTripTargetUsesTheRawSyscallFloor checks that the process round
// trip is judged against the pipe floor that makes aplex's raw system
// calls when the run has it, and against the os.File one otherwise.
func TestRoundTripTargetUsesTheRawSyscallFloor(t *testing.T) {
	const what = "Process round trip ≤ 2× the raw pipe"
	for _, tc := range []struct {
		name   string
		raw    float64 // Process/rtt/pipe-floor-raw ns/op; 0: not measured
		want   string
		figure string
	}{
		{"no raw floor: the os.File one", 0, verdictMet, "vs 45.0 µs"},
		{"a raw floor under half of aplex's", 25e3, verdictNotMet, "vs 25.0 µs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := runsOf(metAll, nil)
			for range 5 {
				if tc.raw > 0 {
					rs.add("Process/rtt/pipe-floor-raw", "ns/op", tc.raw)
				}
			}
			for _, tg := range (view{rs: rs, py: pyMet}).targets() {
				if tg.what != what {
					continue
				}
				if got := verdict(tg.known, tg.met, tg.margin, tg.spread); got != tc.want || !strings.Contains(tg.figure, tc.figure) {
					t.Errorf("%s: %q, want %s with %q", tg.figure, got, tc.want, tc.figure)
				}
				return
			}
			t.Fatalf("no target %q", what)
		})
	}
}

// TestUnclearOnlyWhenRunsStraddleTheLimit: a target is unclear when some
// run lies beyond its limit, on the other side from the median, however
// the runs stray on the far side. The report at 7f3d9a2 called the
// Overhead's floor target unclear with every run's ratio between 0.26×
// and 0.64× (limit 1.2×): one quick run of the floor spread the ratios
// ±120 % around their median, more than its 76 % margin.
func TestUnclearOnlyWhenRunsStraddleTheLimit(t *testing.T) {
	const what = "Overhead: ≤ 1.2× the go+wg+sem floor"
	for _, tc := range []struct {
		name  string
		floor []float64 // go+wg+sem ns/op, run by run; aplex-thread takes 317 ns in each
		want  string
	}{
		{"far below, spread wide on the far side", []float64{1273, 1082, 1047, 1125, 526.7}, verdictMet},
		{"one run beyond the limit", []float64{1273, 1082, 1047, 1125, 250}, verdictUnclear},
		{"every run beyond the limit", []float64{250, 260, 240, 255, 230}, verdictNotMet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := runsOf(metAll, nil)
			delete(rs, "Overhead/aplex-thread")
			delete(rs, "Overhead/go+wg+sem")
			for _, f := range tc.floor {
				rs.add("Overhead/aplex-thread", "ns/op", 317)
				rs.add("Overhead/aplex-thread", "allocs/op", 1)
				rs.add("Overhead/go+wg+sem", "ns/op", f)
			}
			for _, tg := range (view{rs: rs, py: pyMet}).targets() {
				if tg.what != what {
					continue
				}
				if got := verdict(tg.known, tg.met, tg.margin, tg.spread); got != tc.want {
					t.Errorf("%s (margin %v, spread %v): %q, want %q", tg.figure, tg.margin, tg.spread, got, tc.want)
				}
				return
			}
			t.Fatalf("no target %q", what)
		})
	}
}
