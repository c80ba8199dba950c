package main

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		vs   []float64
		want float64
	}{
		{"none", nil, math.NaN()},
		{"one", []float64{7}, 7},
		{"odd, unsorted", []float64{5, 1, 9, 3, 7}, 5},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"an outlier does not move it", []float64{100, 101, 99, 100, 1e6}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.vs)
			got := median(tc.vs)
			if !same(got, tc.want) {
				t.Errorf("median(%v) = %v, want %v", tc.vs, got, tc.want)
			}
			if !slices.Equal(in, tc.vs) {
				t.Errorf("median reordered its input: %v, was %v", tc.vs, in)
			}
		})
	}
}

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		name string
		vs   []float64
		want float64
		text string
	}{
		{"none: unknown", nil, math.NaN(), "–"},
		{"one run: none", []float64{42}, 0, "±0.0 %"},
		{"symmetric", []float64{90, 100, 110}, 0.10, "±10 %"},
		{"the wider side counts", []float64{98, 100, 100, 100, 130}, 0.30, "±30 %"},
		{"below the median", []float64{50, 100, 100, 101, 102}, 0.50, "±50 %"},
		{"small", []float64{999, 1000, 1001, 1000, 1000}, 0.001, "±0.1 %"},
		{"all zero", []float64{0, 0, 0}, 0, "±0.0 %"},
		{"zero median, not all zero: unknown", []float64{0, 0, 1}, math.NaN(), "–"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := spread(tc.vs)
			if !near(got, tc.want) {
				t.Errorf("spread(%v) = %v, want %v", tc.vs, got, tc.want)
			}
			if s := pct(got); s != tc.text {
				t.Errorf("pct(%v) = %q, want %q", got, s, tc.text)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name        string
		known, met  bool
		marg, sprd  float64
		wantVerdict string
	}{
		{"no data", false, true, 0.5, 0.01, verdictNoData},
		{"met, spread inside the margin", true, true, 0.20, 0.05, verdictMet},
		{"not met, spread inside the margin", true, false, 0.20, 0.05, verdictNotMet},
		{"met, spread wider than the margin", true, true, 0.02, 0.05, verdictUnclear},
		{"not met, spread wider than the margin", true, false, 0.02, 0.05, verdictUnclear},
		{"spread equal to the margin: still decided", true, true, 0.05, 0.05, verdictMet},
		{"exactly on the limit with any spread", true, true, 0, 0.001, verdictUnclear},
		{"exactly on the limit, one run", true, true, 0, 0, verdictMet},
		{"unknown spread: the median decides", true, false, 0.01, math.NaN(), verdictNotMet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdict(tc.known, tc.met, tc.marg, tc.sprd); got != tc.wantVerdict {
				t.Errorf("verdict(%v, %v, %v, %v) = %q, want %q", tc.known, tc.met, tc.marg, tc.sprd, got, tc.wantVerdict)
			}
		})
	}
}

func TestCheckJudge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		c        check
		wantMet  bool
		wantMarg float64
	}{
		{"at most, below", check{x: 1.0, limit: 1.2, atMost: true}, true, 1.0 / 6},
		{"at most, above", check{x: 1.5, limit: 1.2, atMost: true}, false, 0.25},
		{"at most, on the limit", check{x: 2, limit: 2, atMost: true}, true, 0},
		{"at least, above", check{x: 6e6, limit: 5e6}, true, 0.2},
		{"at least, below", check{x: 4e6, limit: 5e6}, false, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			met, marg := tc.c.judge()
			if met != tc.wantMet || !near(marg, tc.wantMarg) {
				t.Errorf("judge() = %v, %v; want %v, %v", met, marg, tc.wantMet, tc.wantMarg)
			}
		})
	}
}

// TestTargetFlagsSpreadWiderThanMargin checks the whole path from runs to
// a verdict: a median under the limit whose runs straddle it is unclear,
// and the same median with tight runs is met.
func TestTargetFlagsSpreadWiderThanMargin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		aplex   []float64 // Overhead/aplex-thread ns/op
		floor   []float64 // Overhead/go+wg+sem ns/op
		verdict string
	}{
		{"tight runs under the limit", []float64{110, 111, 110, 109, 110}, []float64{100, 100, 101, 99, 100}, verdictMet},
		{"tight runs over the limit", []float64{150, 151, 150, 149, 150}, []float64{100, 100, 101, 99, 100}, verdictNotMet},
		{"runs straddling the limit", []float64{110, 140, 110, 90, 112}, []float64{100, 100, 101, 99, 100}, verdictUnclear},
		{"the floor's spread counts too", []float64{110, 111, 110, 109, 110}, []float64{100, 70, 101, 130, 100}, verdictUnclear},
		{"a change of speed moving both figures of each run", []float64{110, 220, 110, 55, 112}, []float64{100, 200, 101, 50, 100}, verdictMet},
		{"a change of speed inside one run", []float64{110, 220, 110, 110, 112}, []float64{100, 100, 101, 100, 100}, verdictUnclear},
		// 15 rounds: the median's interval runs from the 4th smallest
		// ratio to the 4th largest, so three stray rounds past the limit
		// leave it decided, and a fourth does not.
		{"15 rounds, three past the limit", fifteen(110, 130, 3), fifteen(100, 100, 0), verdictMet},
		{"15 rounds, four past the limit", fifteen(110, 130, 4), fifteen(100, 100, 0), verdictUnclear},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := results{}
			for i := range tc.aplex {
				rs.add("Overhead/aplex-thread", "ns/op", tc.aplex[i])
				rs.add("Overhead/go+wg+sem", "ns/op", tc.floor[i])
			}
			v := view{rs: rs}
			var found bool
			for _, tg := range v.targets() {
				if !strings.Contains(tg.what, "the go+wg+sem floor") {
					continue
				}
				found = true
				if got := verdict(tg.known, tg.met, tg.margin, tg.spread); got != tc.verdict {
					t.Errorf("verdict = %q (margin %v, spread %v), want %q", got, tg.margin, tg.spread, tc.verdict)
				}
			}
			if !found {
				t.Fatal("no overhead target")
			}
			var b strings.Builder
			v.writeTargets(&b)
			if !strings.Contains(b.String(), tc.verdict) {
				t.Errorf("the targets table does not say %q:\n%s", tc.verdict, b.String())
			}
		})
	}
}

// fifteen returns 15 runs of x, the first n of them y instead.
func fifteen(x, y float64, n int) []float64 {
	vs := make([]float64, 15)
	for i := range vs {
		vs[i] = x
		if i < n {
			vs[i] = y
		}
	}
	return vs
}

// TestPlanInterleaves checks that every round runs every implementation
// before the next round starts.
func TestPlanInterleaves(t *testing.T) {
	got := plan(workload{bench: "BenchmarkOverhead"}, 3)
	want := []step{{1, "^BenchmarkOverhead$"}, {2, "^BenchmarkOverhead$"}, {3, "^BenchmarkOverhead$"}}
	if !slices.Equal(got, want) {
		t.Errorf("plan = %v, want %v", got, want)
	}
	got = plan(workload{bench: "BenchmarkMemory", perProcess: []string{"a", "b+c", "d"}}, 4)
	want = []step{ // one process per row, starting one row further each round
		{1, `^BenchmarkMemory$/^a$`}, {1, `^BenchmarkMemory$/^b\+c$`}, {1, `^BenchmarkMemory$/^d$`},
		{2, `^BenchmarkMemory$/^b\+c$`}, {2, `^BenchmarkMemory$/^d$`}, {2, `^BenchmarkMemory$/^a$`},
		{3, `^BenchmarkMemory$/^d$`}, {3, `^BenchmarkMemory$/^a$`}, {3, `^BenchmarkMemory$/^b\+c$`},
		{4, `^BenchmarkMemory$/^a$`}, {4, `^BenchmarkMemory$/^b\+c$`}, {4, `^BenchmarkMemory$/^d$`},
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan = %v, want %v", got, want)
	}
}

func TestMethodText(t *testing.T) {
	for _, tc := range []struct {
		name      string
		m         method
		want, not []string
	}{
		{"a full run", method{runs: 5, loadStart: "0.10 0.20 0.30", loadEnd: "1.00 0.50 0.40", workloads: workloads()},
			[]string{"ran 5 times, interleaved", "medians of the 5 runs", "at the start: 0.10 0.20 0.30", "at the end: 1.00 0.50 0.40", "spread",
				"The fanout workload ran 15 rounds, each implementation in a process of its own", "The memory workload ran each implementation in a process of its own"},
			[]string{"quick look", "smoke"}},
		{"a quick look", method{runs: 2, benchtime: "100ms", loadStart: "unknown", loadEnd: "unknown"},
			[]string{"ran 2 times", "Fewer than 5 runs", "-benchtime 100ms", "at the start: unknown"}, nil},
		{"from input", method{runs: 3, input: true},
			[]string{"read from the input", "up to 3 runs", "load average not measured"}, []string{"interleaved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.m.text()
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("text lacks %q: %s", w, s)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(s, w) {
					t.Errorf("text has %q: %s", w, s)
				}
			}
		})
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

func near(a, b float64) bool { return same(a, b) || math.Abs(a-b) < 1e-9 }

// TestNumMissing checks that a missing figure, or the best of no peers
// (+Inf), prints as a dash rather than as a huge integer.
func TestNumMissing(t *testing.T) {
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := num(x); got != "–" {
			t.Errorf("num(%v) = %q, want –", x, got)
		}
	}
}

// TestRatioRunByRun checks that a ratio of two figures is taken run by
// run when both have the same runs, and falls back to the ratio of the
// medians and the sum of the spreads when they do not.
func TestRatioRunByRun(t *testing.T) {
	rs := results{}
	for _, v := range []float64{100, 200, 50} {
		rs.add("a", "ns/op", 1.1*v)
		rs.add("b", "ns/op", v)
	}
	if r, spr := rs.ratio("a", "ns/op", "b", "ns/op"); !near(r, 1.1) || !near(spr, 0) {
		t.Errorf("paired runs: ratio %v, spread %v; want 1.1, 0", r, spr)
	}
	rs.add("c", "ns/op", 100)
	rs.add("c", "ns/op", 120)
	r, spr := rs.ratio("c", "ns/op", "b", "ns/op")
	if want := median([]float64{100, 120}) / 100; !near(r, want) {
		t.Errorf("unpaired runs: ratio %v, want the medians' %v", r, want)
	}
	if want := spread([]float64{100, 120}) + spread([]float64{100, 200, 50}); !near(spr, want) {
		t.Errorf("unpaired runs: spread %v, want the sum %v", spr, want)
	}
	if r, spr := rs.ratio("a", "ns/op", "missing", "ns/op"); !nan(r) || !nan(spr) {
		t.Errorf("a missing figure: ratio %v, spread %v; want NaN, NaN", r, spr)
	}
}
