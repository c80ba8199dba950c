//go:build unix

package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// stubborn records its start, as block does, then ignores its ctx.
var stubborn = aplex.Register("cluster.stubborn", func(_ context.Context, key string) (int, error) {
	started.Store(key, true)
	time.Sleep(time.Minute)
	return 0, nil
})

// TestWorkFrozenPastItsKillIsSettledWhenItsWorkerComesBack: a worker
// process stopped (SIGSTOP) while a work of a Deadline(d) runs there
// stays silent past the work's deadline and kill grace (the kill waits:
// its answer may only be held up) and past the heartbeat timeout, which
// drops it and fails the work with a *WorkerError. When the process
// resumes and joins again, the executor asks it about that work: a work
// that ignores its ctx still runs and costs its worker, as it would have
// without the freeze (before, it ran on, holding a slot, and the worker
// lived on); a work that honoured its deadline as it resumed costs
// nothing.
func TestWorkFrozenPastItsKillIsSettledWhenItsWorkerComesBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		work   *aplex.Work[string, int]
		killed bool
	}{
		{"a work that ignores its ctx", stubborn, true},
		{"a work that honours it", block, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRestartableServer(t)
			w := spawnWorker(t, srv.url, "frozen", "w1")
			probed := newRecordLog(slog.LevelDebug, "aplex cluster: asked a returning worker")
			ex := newExecutor(t, cluster.WithURL(srv.url), cluster.WithPool("frozen"), aplex.WithPoolSize(1),
				aplex.WithHeartbeatTimeout(time.Second), aplex.WithKillGrace(200*time.Millisecond), aplex.WithLogger(slog.New(probed)))
			pid := ex.Stats().Workers[0].PID
			key := "frozen-" + tc.name
			// The kill comes due at 900ms, once the worker has been silent
			// for more than half the heartbeat timeout.
			f := submit(t, ex, tc.work, key, aplex.Deadline(700*time.Millisecond))
			waitFor(t, 5*time.Second, "the work to start", startedIn(t, ex, key))
			if err := kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			resumed := false
			t.Cleanup(func() {
				if !resumed {
					kill(pid, syscall.SIGCONT)
				}
			})
			_, err := get(t, f)
			var we *aplex.WorkerError
			if !errors.As(err, &we) || !strings.Contains(we.Reason, "lost heartbeat") {
				t.Fatalf("the frozen worker's work: %v, want a *WorkerError for its lost heartbeat", err)
			}
			resumed = true
			if err := kill(pid, syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the worker to join again", func() bool {
				s := ex.Stats().Workers
				return len(s) == 1 && s[0].PID == pid
			})
			if tc.killed {
				select {
				case <-w.done:
				case <-time.After(10 * time.Second):
					t.Fatal("the worker lives on, its work ignoring its cancel")
				}
				return
			}
			// Once the executor has asked about the work (its log says so),
			// nothing is left running and the worker still serves.
			select {
			case <-probed.arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("the executor never asked the returning worker about its work")
			}
			if left := attrOf(probed.records()[0], "still running").Int64(); left != 0 {
				t.Fatalf("the work that honoured its deadline counts as still running (%d)", left)
			}
			if v, err := get(t, submit(t, ex, square, 7)); v != 49 || err != nil {
				t.Fatalf("after the probe: %v, %v", v, err)
			}
			if s := ex.Stats().Workers; len(s) != 1 || s[0].PID != pid {
				t.Fatalf("workers %+v, want pid %d still there", s, pid)
			}
		})
	}
}
