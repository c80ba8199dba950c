package aplex_test

import (
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/stresstest"
)

// TestStressEveryWorkEnds runs the shared stress mix (internal/stresstest:
// callers' deadlines and cancels, Deadline(d), Cancel, Retry, works that
// ignore their deadline and cost their worker process, a pool resized
// every 50–150ms) on a thread and a process executor, the process one
// with WithPrefetch: every future ends, each work's observer events come
// in order, and the executor counts nothing left. It found a local
// cluster worker restarted with back-off after its executor killed it
// (cluster.TestLocalWorkerKilledByItsExecutorIsReplacedAtOnce).
func TestStressEveryWorkEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  stresstest.Config
		make func(*testing.T, *stresstest.Tracker) *aplex.Executor
	}{
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &stresstest.Tracker{}
			ex := tc.make(t, tr)
			cfg := tc.cfg
			cfg.Submitters, cfg.For, cfg.Settle, cfg.Seed = 3, time.Second, time.Minute, 1
			counts := stresstest.Run(t, ex, tr, cfg)
			t.Logf("%v", counts)
			if err := ex.Shutdown(ctxT(t)); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
