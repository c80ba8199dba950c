// Package stats holds the statistics the bench module's commands share:
// the distribution-free confidence interval of a median, by which the
// report judges its targets and cmd/alternate reports a change.
package stats

import (
	"math"
	"slices"
)

// MedianCI returns a confidence interval of the median of the
// distribution the runs vs were drawn from, with no assumption on its
// shape: the k-th smallest and the k-th largest run, k the largest rank
// for which fewer than k of n runs fall below the median with a
// probability of at most 2.5 % (each run is below it with probability ½,
// independently), so the interval misses the median at most 5 % of the
// time. Up to 8 runs no narrower interval is that safe, and it is the
// whole range (for 5 runs it holds the median 93.75 % of the time), as the
// bench report judged before it ran more than 5. More runs narrow it: 15 runs
// give the 4th smallest to the 4th largest, 20 the 6th to the 6th.
// NaN, NaN for none.
func MedianCI(vs []float64) (lo, hi float64) {
	n := len(vs)
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	s := slices.Sorted(slices.Values(vs))
	k := ciRank(n)
	return s[k-1], s[n-k]
}

// ciRank returns the rank k of MedianCI's interval for n runs: the largest
// k with P(Binomial(n, ½) ≤ k−1) ≤ 2.5 %, or 1 if there is none (the
// interval from the k-th smallest to the k-th largest run then misses the
// median with a probability of 2 P(B ≤ k−1)).
func ciRank(n int) int {
	k, cdf, term := 1, 0.0, math.Pow(0.5, float64(n)) // term: P(B = j)
	for j := 0; j < n; j++ {
		cdf += term
		if cdf > 0.025 {
			break
		}
		k = j + 1
		term = term * float64(n-j) / float64(j+1)
	}
	return k
}
