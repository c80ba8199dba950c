package stats

import (
	"math"
	"testing"
)

// TestMedianCIRanks checks the ranks of the median's distribution-free
// interval against the binomial table: none is safe below 6 runs (the
// whole range), and the 95 % ranks of the usual tables above.
func TestMedianCIRanks(t *testing.T) {
	for _, tc := range []struct{ n, k int }{
		{1, 1}, {2, 1}, {5, 1}, {6, 1}, {7, 1}, {8, 1}, {9, 2}, {10, 2}, {11, 2}, {12, 3},
		{15, 4}, {20, 6}, {25, 8}, {30, 10},
	} {
		if got := ciRank(tc.n); got != tc.k {
			t.Errorf("ciRank(%d) = %d, want %d", tc.n, got, tc.k)
		}
	}
	lo, hi := MedianCI([]float64{5, 1, 4, 2, 3})
	if lo != 1 || hi != 5 {
		t.Errorf("medianCI of 5 runs = %v, %v; want the range 1, 5", lo, hi)
	}
	var vs []float64
	for i := 15; i >= 1; i-- {
		vs = append(vs, float64(i))
	}
	if lo, hi := MedianCI(vs); lo != 4 || hi != 12 {
		t.Errorf("medianCI of 1..15 = %v, %v; want 4, 12", lo, hi)
	}
	if lo, hi := MedianCI(nil); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("MedianCI(nil) = %v, %v; want NaN, NaN", lo, hi)
	}
}
