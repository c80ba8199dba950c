package aplex_test

import (
	"slices"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/stresstest"
)

// TestStressEveryWorkEnds runs the shared stress mix (internal/stresstest:
// callers' deadlines and cancels, Deadline(d), Cancel, Retry, works that
// ignore their deadline and cost their worker process, a pool resized
// every 50–150ms) on a thread and a process executor, the process one
// with WithPrefetch, each once to the end and once cut short by a
// graceful Shutdown under load: every future ends, each work's observer
// events come in order, the executor counts nothing left, and Shutdown
// returns nil or its ctx's error. The same mix on a cluster executor found
// a local worker restarted with back-off after its executor killed it
// (cluster.TestLocalWorkerKilledByItsExecutorIsReplacedAtOnce).
func TestStressEveryWorkEnds(t *testing.T) {
	type stressCase struct {
		name string
		cfg  stresstest.Config
		make func(*testing.T, *stresstest.Tracker) *aplex.Executor
	}
	cases := []stressCase{
		{"thread", stresstest.Config{Sizes: []int{1, 2, 3}}, func(t *testing.T, tr *stresstest.Tracker) *aplex.Executor {
			ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(3), aplex.WithObserver(tr))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ex.Close() })
			return ex
		}},
		{"process, prefetch", stresstest.Config{Sizes: []int{1, 2, 3}, Retry: true, Stubborn: 300, StubbornFor: 2 * time.Second},
			func(t *testing.T, tr *stresstest.Tracker) *aplex.Executor {
				return newProcess(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(3), aplex.WithPrefetch(3),
					aplex.WithKillGrace(500*time.Millisecond), aplex.WithObserver(tr))
			}},
	}
	for _, tc := range slices.Clone(cases) {
		tc.name += ", Shutdown under load"
		tc.cfg.ShutdownWithin = 500 * time.Millisecond
		cases = append(cases, tc)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &stresstest.Tracker{}
			ex := tc.make(t, tr)
			cfg := tc.cfg
			cfg.Submitters, cfg.Mappers, cfg.For, cfg.Settle, cfg.Seed = 3, 2, time.Second, time.Minute, 1
			counts := stresstest.Run(t, ex, tr, cfg)
			t.Logf("%v", counts)
			// After a Shutdown under load, this one returns what that did.
			if err := ex.Shutdown(ctxT(t)); err != nil && cfg.ShutdownWithin == 0 {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
