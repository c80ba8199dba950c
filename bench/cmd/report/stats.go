package main

import (
	"fmt"
	"math"
	"slices"
)

// minRuns is the fewest runs whose median the report treats as a figure
// rather than a quick look: fewer is allowed (-count) but said.
const minRuns = 5

// median returns the middle of vs (the mean of the two middle values for an
// even count), or NaN for none. A median rather than a mean, because on a
// shared machine one run caught by a neighbour's burst would drag a mean.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread returns how far the runs stray from their median, as a fraction
// of it: max(max−median, median−min) / median. One run has no spread (0);
// no runs, or a zero median, give NaN (unknown). The wider side is taken,
// so "±s" bounds every run.
func spread(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	m := median(vs)
	if m == 0 {
		if slices.Min(vs) == 0 && slices.Max(vs) == 0 {
			return 0
		}
		return math.NaN()
	}
	return max(slices.Max(vs)-m, m-slices.Min(vs)) / math.Abs(m)
}

// pct formats a spread as "±4.2 %", or "–" when unknown.
func pct(s float64) string {
	if math.IsNaN(s) {
		return "–"
	}
	if s < 0.1 {
		return fmt.Sprintf("±%.1f %%", 100*s)
	}
	return fmt.Sprintf("±%.0f %%", 100*s)
}

// margin is how far a measured value x lies from its target's limit, as a
// fraction of the limit: the room the verdict has before it would flip.
func margin(x, limit float64) float64 {
	if limit == 0 {
		return math.Abs(x)
	}
	return math.Abs(x-limit) / math.Abs(limit)
}

// Verdicts of a target.
const (
	verdictNoData  = "no data"
	verdictMet     = "met"
	verdictNotMet  = "**not met**"
	verdictUnclear = "unclear (spread wider than margin)"
)

// verdict judges a target from its median comparison (met), the margin
// between the median and the limit, and the spread of the runs behind it
// (both fractions). When the runs spread wider than the margin, some of
// them fall on the other side of the limit, so the median's side says
// little: the verdict is "unclear" rather than "met" or "not met". An
// unknown spread (NaN) is judged on the median alone.
func verdict(known, met bool, marg, spr float64) string {
	switch {
	case !known:
		return verdictNoData
	case !math.IsNaN(spr) && spr > marg:
		return verdictUnclear
	case met:
		return verdictMet
	default:
		return verdictNotMet
	}
}

// sumSpread combines the spreads of the figures a ratio is made of: to
// first order the relative spreads of a quotient add up. NaN if any is
// unknown.
func sumSpread(ss ...float64) float64 {
	t := 0.0
	for _, s := range ss {
		t += s
	}
	return t
}
