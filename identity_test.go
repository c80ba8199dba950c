package aplex_test

import (
	"sync"
	"testing"

	"github.com/aplex-go/aplex"
)

// namesSeen records the names and labels of the workers in the balancer's
// view; it then picks the first worker.
type namesSeen struct {
	mu     sync.Mutex
	names  map[int]string
	labels int // workers seen with labels
}

func (n *namesSeen) Pick(ws aplex.Workers, _ any) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range ws.Len() {
		n.names[ws.ID(i)] = ws.Name(i)
		if ws.Labels(i) != nil {
			n.labels++
		}
		if _, ok := ws.Label(i, "gpu"); ok {
			n.labels++
		}
	}
	return 0
}

// TestWorkerStatsShowWorkerNames: WorkerStats named no worker; it now
// shows the name errors use ("proc-N", as *WorkerError.Worker) and
// "thread-N" for goroutine workers, and the balancer's view shows the same.
// Only cluster workers have labels (cluster tests cover them).
func TestWorkerStatsShowWorkerNames(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		new    func(...aplex.Option) (*aplex.Executor, error)
		prefix string
	}{
		{"thread", aplex.NewThreadExecutor, "thread-"},
		{"process", aplex.NewProcessExecutor, "proc-"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			lb := &namesSeen{names: map[int]string{}}
			ex, err := tc.new(aplex.WithPoolSize(2), aplex.WithLoadBalancer(lb))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := ex.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			mustGet(t, mustSubmit(t, ex, pDouble, 2))
			ws := ex.Stats().Workers
			if len(ws) != 2 {
				t.Fatalf("%d workers in Stats, want 2", len(ws))
			}
			lb.mu.Lock()
			defer lb.mu.Unlock()
			for i, w := range ws {
				want := tc.prefix + itoa(i)
				if w.ID != i || w.Name != want || w.Labels != nil {
					t.Errorf("Stats.Workers[%d] = %+v, want Name %q and no labels", i, w, want)
				}
				if lb.names[i] != want {
					t.Errorf("the balancer saw slot %d named %q, want %q", i, lb.names[i], want)
				}
			}
			if lb.labels != 0 {
				t.Errorf("the balancer saw labels on %s workers", tc.kind)
			}
		})
	}
}
