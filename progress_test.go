package aplex_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

type mapFn func(context.Context, *aplex.Executor, *aplex.Work[int, int], iter.Seq[int], ...aplex.CallOption) iter.Seq2[int, error]

var mapFns = []struct {
	name string
	fn   mapFn
}{
	{"Map", aplex.Map[int, int]},
	{"MapUnordered", aplex.MapUnordered[int, int]},
}

// checkReports checks OnProgress's contract: reports at least 100 ms
// apart but for the last, counts that only grow, and a last report with
// nothing in flight and done+failed as given.
func checkReports(t *testing.T, ps []aplex.Progress, done, failed int) {
	t.Helper()
	if len(ps) == 0 {
		t.Fatal("no report")
	}
	last := ps[len(ps)-1]
	if last.Done != done || last.Failed != failed || last.InFlight != 0 {
		t.Fatalf("last report %+v, want done %d failed %d", last, done, failed)
	}
	for i := 1; i < len(ps)-1; i++ {
		if ps[i].Elapsed-ps[i-1].Elapsed < 100*time.Millisecond {
			t.Fatalf("reports %d and %d only %v apart: %+v", i-1, i, ps[i].Elapsed-ps[i-1].Elapsed, ps)
		}
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].Done < ps[i-1].Done || ps[i].Elapsed < ps[i-1].Elapsed {
			t.Fatalf("reports go back: %+v", ps)
		}
	}
}

func TestOnProgressReportsAndEnds(t *testing.T) {
	const n = 40
	slow := aplex.Fn(func(_ context.Context, x int) (int, error) { time.Sleep(8 * time.Millisecond); return x, nil })
	for _, m := range mapFns {
		t.Run(m.name, func(t *testing.T) {
			ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
			var ps []aplex.Progress
			got := 0
			for _, err := range m.fn(ctxT(t), ex, slow, seq(n, nil), aplex.OnProgress(func(p aplex.Progress) { ps = append(ps, p) })) {
				if err != nil {
					t.Fatal(err)
				}
				got++
			}
			if got != n {
				t.Fatalf("%d results", got)
			}
			checkReports(t, ps, n, 0)
			if len(ps) < 2 {
				t.Fatalf("a run of at least %v made %d reports: %+v", n*8*time.Millisecond, len(ps), ps)
			}
			for _, p := range ps[:len(ps)-1] {
				if p.InFlight < 0 || p.Done+p.InFlight > n {
					t.Fatalf("report %+v", p)
				}
			}
		})
	}
}

func TestOnProgressEndsOnErrorAndBreak(t *testing.T) {
	failAt3 := aplex.Fn(func(_ context.Context, x int) (int, error) {
		if x == 3 {
			return 0, errors.New("three")
		}
		return x, nil
	})
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	var ps []aplex.Progress
	for _, err := range aplex.Map(ctxT(t), ex, failAt3, seq(10, nil), aplex.OnProgress(func(p aplex.Progress) { ps = append(ps, p) })) {
		if err != nil {
			break
		}
	}
	checkReports(t, ps, 3, 1)

	ps = nil
	for v, err := range aplex.Map(ctxT(t), ex, noop, seq(10, nil), aplex.OnProgress(func(p aplex.Progress) { ps = append(ps, p) })) {
		if err != nil {
			t.Fatal(err)
		}
		if v == 4 {
			break
		}
	}
	checkReports(t, ps, 5, 0)
}

func TestOnProgressRefusedBySubmit(t *testing.T) {
	ex := newThread(t)
	opt := aplex.OnProgress(func(aplex.Progress) {})
	if _, err := aplex.Submit(ctxT(t), ex, noop, 1, opt); err == nil || !strings.Contains(err.Error(), "OnProgress applies to Map and MapUnordered only") {
		t.Fatalf("Submit with OnProgress: %v", err)
	}
	if _, err := aplex.TrySubmit(ctxT(t), ex, noop, 1, opt); err == nil {
		t.Fatal("TrySubmit took OnProgress")
	}
	for _, err := range aplex.Map(ctxT(t), ex, noop, seq(1, nil), aplex.OnProgress(nil)) {
		if err == nil || !strings.Contains(err.Error(), "OnProgress(nil)") {
			t.Fatalf("OnProgress(nil): %v", err)
		}
	}
}
