package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// results holds every figure of a benchmark run: results[name][unit] is
// the list of values seen (one per -count run). name is the benchmark path
// without "Benchmark" and without the GOMAXPROCS suffix, e.g.
// "Map/aplex-thread/chunk=100".
type results map[string]map[string][]float64

// benchLine matches a result line of go test -bench.
var benchLine = regexp.MustCompile(`^Benchmark(\S+)\s+(\d+)\s+(.+)$`)

// procsSuffix matches the -GOMAXPROCS suffix of a benchmark name.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// parse reads go test -bench output and adds its figures to rs. Other lines
// are ignored.
func (rs results) parse(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rs.parseLine(sc.Text())
	}
	return sc.Err()
}

func (rs results) parseLine(line string) {
	m := benchLine.FindStringSubmatch(line)
	if m == nil {
		return
	}
	name := procsSuffix.ReplaceAllString(m[1], "")
	fields := strings.Fields(m[3])
	for i := 0; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return
		}
		rs.add(name, fields[i+1], v)
	}
}

func (rs results) add(name, unit string, v float64) {
	if rs[name] == nil {
		rs[name] = map[string][]float64{}
	}
	rs[name][unit] = append(rs[name][unit], v)
}

// get returns the median of name's unit figures, and whether there was any.
func (rs results) get(name, unit string) (float64, bool) {
	vs := rs[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	return median(vs), true
}

// spread returns the spread of name's unit figures around their median
// (see spread), NaN when there are none.
func (rs results) spread(name, unit string) float64 { return spread(rs[name][unit]) }

// ratio returns the ratio of figure a (name, unit) to figure b, taken run
// by run, and the spread of those ratios. The report's runs are
// interleaved, so run i of every implementation ran in the same round
// (seconds apart; in the fan-out's rounds of a process per implementation,
// up to half a minute): a change of the machine's speed between rounds
// moves both figures of a pair, and the run-by-run ratio cancels it where
// the ratio of medians would not. When the two figures have different numbers of
// runs (input that was not interleaved), it falls back to the ratio of the
// medians and the sum of the two spreads.
func (rs results) ratio(aName, aUnit, bName, bUnit string) (r, spr float64) {
	as, bs := rs[aName][aUnit], rs[bName][bUnit]
	if len(as) == 0 || len(bs) == 0 {
		return none, none
	}
	if len(as) != len(bs) {
		return median(as) / median(bs), sumSpread(spread(as), spread(bs))
	}
	rr := make([]float64, len(as))
	for i := range as {
		rr[i] = as[i] / bs[i]
	}
	return median(rr), spread(rr)
}

// ratioRuns returns the run-by-run ratios of figure a to figure b (see
// ratio), nil when the two have different numbers of runs.
func (rs results) ratioRuns(aName, aUnit, bName, bUnit string) []float64 {
	as, bs := rs[aName][aUnit], rs[bName][bUnit]
	if len(as) == 0 || len(as) != len(bs) {
		return nil
	}
	rr := make([]float64, len(as))
	for i := range as {
		rr[i] = as[i] / bs[i]
	}
	return rr
}

// runs returns the most runs any figure has: what the medians were taken of.
func (rs results) runs() int {
	n := 0
	for _, units := range rs {
		for _, vs := range units {
			n = max(n, len(vs))
		}
	}
	return n
}
