package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// say prints its argument on the worker's stdout and returns the worker's
// pid: the output-label tests read the line back from WithWorkerOutput.
var say = aplex.Register("cluster.say", func(_ context.Context, s string) (int, error) {
	fmt.Println(s)
	return os.Getpid(), nil
})

// syncBuffer is an output shared by the worker copiers and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pinBalancer sends a work whose Meta is an int to the worker of that
// slot, and any other to the first with room.
type pinBalancer struct{}

func (pinBalancer) Pick(ws aplex.Workers, meta any) int {
	slot, ok := meta.(int)
	for i := range ws.Len() {
		if ok && ws.ID(i) == slot || !ok && ws.Available(i) {
			return i
		}
	}
	return -1
}

// serveInProcess runs cluster.Serve in this process until the test ends.
func serveInProcess(t *testing.T, opts ...cluster.ServeOption) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx, append([]cluster.ServeOption{cluster.ServeHeartbeat(testHeartbeat)}, opts...)...)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// TestWorkerStatsShowClusterIdentity: Stats showed only a slot and a pid,
// never a cluster worker's id or labels; and local workers took slots in
// the order they joined, so local worker 0, whose output is labelled
// "[aplex cluster worker 0 pid P]", could sit in slot 1 behind a worker
// that joined first. Stats now names every worker and shows its labels,
// and local worker i holds slot i.
func TestWorkerStatsShowClusterIdentity(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	// A worker on its own, serving before the executor starts: it answers
	// the executor's call before the local workers have started.
	serveInProcess(t, cluster.ServeURL(url), cluster.ServePool("ident"),
		cluster.ServeWorkerID("gpu-box"), cluster.ServeLabels(map[string]string{"gpu": "true", "zone": "a"}))
	out := &syncBuffer{}
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("ident"), aplex.WithPoolSize(3),
		cluster.SpawnLocalWorkers(2), aplex.WithWorkerOutput(out), aplex.WithLoadBalancer(pinBalancer{}),
		cluster.LocalWorkerLabels(func(i int) map[string]string {
			if i == 1 {
				return map[string]string{"zone": "b", "disk": "ssd"}
			}
			return nil
		}))

	ws := ex.Stats().Workers
	if len(ws) != 3 {
		t.Fatalf("Stats has %d workers, want 3: %+v", len(ws), ws)
	}
	want := []struct {
		name   func(string) bool
		labels map[string]string
	}{
		{func(n string) bool { return strings.HasSuffix(n, "-0") }, nil},
		{func(n string) bool { return strings.HasSuffix(n, "-1") }, map[string]string{"zone": "b", "disk": "ssd"}},
		{func(n string) bool { return n == "gpu-box" }, map[string]string{"gpu": "true", "zone": "a"}},
	}
	for i, w := range ws {
		if w.ID != i || !want[i].name(w.Name) || !maps.Equal(w.Labels, want[i].labels) || w.PID == 0 {
			t.Errorf("Stats.Workers[%d] = %+v; want slot %d, its name and labels %v", i, w, i, want[i].labels)
		}
	}
	if ws[0].Name == ws[1].Name || strings.TrimSuffix(ws[0].Name, "-0") != strings.TrimSuffix(ws[1].Name, "-1") {
		t.Errorf("local worker names %q, %q: want <executor id>-0 and -1", ws[0].Name, ws[1].Name)
	}
	// The snapshot's labels are its own.
	ws[2].Labels["gpu"] = "false"
	if ex.Stats().Workers[2].Labels["gpu"] != "true" {
		t.Error("changing a Stats snapshot's labels changed the executor's")
	}

	// A local worker's output prefix names its Stats slot and pid.
	for _, w := range ws[:2] {
		msg := "hello from " + w.Name
		pid, err := get(t, submit(t, ex, say, msg, aplex.Meta(w.ID)))
		if err != nil {
			t.Fatal(err)
		}
		if pid != w.PID {
			t.Errorf("the work pinned to slot %d ran in pid %d; Stats says pid %d", w.ID, pid, w.PID)
		}
		line := fmt.Sprintf("[aplex cluster worker %d pid %d] %s\n", w.ID, w.PID, msg)
		waitFor(t, 5*time.Second, "the line "+line, func() bool { return strings.Contains(out.String(), line) })
	}
}

// viewRecorder records the balancer's view of every worker at each Pick.
type viewRecorder struct {
	mu   sync.Mutex
	seen map[int]workerView
}

type workerView struct {
	name   string
	labels map[string]string
	gpu    string
	hasGPU bool
}

func (r *viewRecorder) Pick(ws aplex.Workers, _ any) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range ws.Len() {
		gpu, has := ws.Label(i, "gpu")
		r.seen[ws.ID(i)] = workerView{ws.Name(i), maps.Clone(ws.Labels(i)), gpu, has}
	}
	return -1
}

// TestBalancerSeesLabels: the balancer's Workers view had no way to tell
// workers apart but their slot. It now shows each worker's name and labels,
// the same as Stats.
func TestBalancerSeesLabels(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	serveInProcess(t, cluster.ServeURL(url), cluster.ServePool("view"),
		cluster.ServeWorkerID("plain"))
	serveInProcess(t, cluster.ServeURL(url), cluster.ServePool("view"),
		cluster.ServeWorkerID("gpu-box"), cluster.ServeLabels(map[string]string{"gpu": "true"}))
	rec := &viewRecorder{seen: map[int]workerView{}}
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("view"), aplex.WithPoolSize(2),
		aplex.WithLoadBalancer(rec))
	if _, err := get(t, submit(t, ex, noop, 1)); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, w := range ex.Stats().Workers {
		v, ok := rec.seen[w.ID]
		if !ok || v.name != w.Name || !maps.Equal(v.labels, w.Labels) {
			t.Errorf("balancer saw slot %d as %+v; Stats shows %+v", w.ID, v, w)
		}
		if wantGPU := w.Name == "gpu-box"; v.hasGPU != wantGPU || wantGPU && v.gpu != "true" {
			t.Errorf("balancer's Label(%q, gpu) = %q, %v", w.Name, v.gpu, v.hasGPU)
		}
	}
	if len(rec.seen) != 2 {
		t.Errorf("balancer saw %d workers, want 2", len(rec.seen))
	}
}

// TestLabelBalancerRoutesByMeta: the example's labelBalancer sends works
// whose Meta asks for gpu=true to the labelled worker only, and other works
// anywhere. When the labelled worker is full it returns -1, and the
// executor gives the work to a worker with room: a balancer states a
// preference, not a constraint (aplex.LoadBalancer).
func TestLabelBalancerRoutesByMeta(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	serveInProcess(t, cluster.ServeURL(url), cluster.ServePool("route"),
		cluster.ServeWorkerID("plain"), cluster.ServeMaxWorks(4))
	serveInProcess(t, cluster.ServeURL(url), cluster.ServePool("route"),
		cluster.ServeWorkerID("gpu-box"), cluster.ServeMaxWorks(4), cluster.ServeLabels(map[string]string{"gpu": "true"}))
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("route"), aplex.WithPoolSize(2),
		aplex.WithLoadBalancer(labelBalancer{}))

	// Four at once: as many as the gpu worker holds, and more than half,
	// so a balancer ignoring the label would put some on the other.
	var fs []*aplex.Future[string]
	for range 4 {
		fs = append(fs, submit(t, ex, whoami, 50*time.Millisecond, aplex.Meta(gpuLabel)))
	}
	for _, f := range fs {
		if who, err := get(t, f); err != nil || worker(who) != "gpu-box" {
			t.Errorf("gpu work ran on %q (%v), want gpu-box", who, err)
		}
	}

	// A future is done before its worker's load drops: wait for both idle.
	waitFor(t, 5*time.Second, "the workers to be idle", func() bool {
		for _, w := range ex.Stats().Workers {
			if w.Workload != 0 {
				return false
			}
		}
		return true
	})

	// Works without the label run anywhere: with gpu-box busy, on plain.
	keys := []string{"gpu-0", "gpu-1", "gpu-2", "gpu-3"}
	var held []*aplex.Future[int]
	for _, k := range keys {
		held = append(held, submit(t, ex, block, k, aplex.Meta(gpuLabel)))
	}
	waitFor(t, 5*time.Second, "the gpu worker to hold four works", dispatched(ex, 4))
	for _, w := range ex.Stats().Workers {
		if want := map[bool]int{true: 4, false: 0}[w.Name == "gpu-box"]; w.Workload != want {
			t.Fatalf("%s holds %d works, want %d", w.Name, w.Workload, want)
		}
	}
	if who, err := get(t, submit(t, ex, whoami, time.Duration(0))); err != nil || worker(who) != "plain" {
		t.Errorf("unlabelled work ran on %q (%v), want plain while gpu-box is full", who, err)
	}
	// A gpu work finds no labelled worker with room: the balancer returns
	// -1 and the executor overrules it.
	if who, err := get(t, submit(t, ex, whoami, time.Duration(0), aplex.Meta(gpuLabel))); err != nil || worker(who) != "plain" {
		t.Errorf("gpu work with gpu-box full ran on %q (%v), want plain: the balancer prefers, the executor overrules", who, err)
	}
	for _, f := range held {
		f.Cancel()
	}
	for _, f := range held {
		if _, err := get(t, f); !errors.Is(err, context.Canceled) && !errors.Is(err, errObserved) {
			t.Errorf("cancelled block: %v", err)
		}
	}
}

// TestLocalWorkerLabelsRefused: labels the environment cannot carry, or
// without local workers, fail NewExecutor with the option's name.
func TestLocalWorkerLabelsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []aplex.Option
		want string
	}{
		{"no local workers", []aplex.Option{cluster.WithURL("nats://127.0.0.1:1"),
			cluster.LocalWorkerLabels(func(int) map[string]string { return nil })}, "add cluster.SpawnLocalWorkers"},
		{"nil", []aplex.Option{cluster.SpawnLocalWorkers(1), cluster.LocalWorkerLabels(nil)}, "LocalWorkerLabels(nil)"},
		{"comma in value", []aplex.Option{cluster.SpawnLocalWorkers(1),
			cluster.LocalWorkerLabels(func(int) map[string]string { return map[string]string{"a": "x,y"} })}, `label "a"="x,y"`},
		{"= in key", []aplex.Option{cluster.SpawnLocalWorkers(1),
			cluster.LocalWorkerLabels(func(int) map[string]string { return map[string]string{"a=b": "x"} })}, `label "a=b"`},
		{"empty key", []aplex.Option{cluster.SpawnLocalWorkers(1),
			cluster.LocalWorkerLabels(func(int) map[string]string { return map[string]string{"": "x"} })}, `label ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := cluster.NewExecutor(tc.opts...)
			if err == nil {
				ex.Close()
				t.Fatal("NewExecutor succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "LocalWorkerLabels") {
				t.Errorf("err = %v, want it to contain %q and name LocalWorkerLabels", err, tc.want)
			}
		})
	}
}
