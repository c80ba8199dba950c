//go:build linux

package proc

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/testutil"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// fakeSink records a transport's events on channels. It stands in for the
// executor core, which is not under test here.
type fakeSink struct {
	t       *testing.T
	joined  chan xport.Worker
	retired chan xport.Worker
	lost    chan lostEvent
	broken  chan error
	results chan wire.Result
	closed  atomic.Bool // set once Transport.Close returned

	mu   sync.Mutex
	pids []int // every worker ever joined
}

type lostEvent struct {
	w     xport.Worker
	cause error
}

func newSink(t *testing.T) *fakeSink {
	return &fakeSink{
		t:       t,
		joined:  make(chan xport.Worker, 64),
		retired: make(chan xport.Worker, 64),
		lost:    make(chan lostEvent, 64),
		broken:  make(chan error, 64),
		results: make(chan wire.Result, 1<<14),
	}
}

func (s *fakeSink) check(method string) {
	if s.closed.Load() {
		s.t.Errorf("Sink.%s called after Transport.Close returned", method)
	}
}

func (s *fakeSink) Join(w xport.Worker) {
	s.check("Join")
	s.mu.Lock()
	s.pids = append(s.pids, w.Info().PID)
	s.mu.Unlock()
	s.joined <- w
}
func (s *fakeSink) Retire(w xport.Worker) { s.check("Retire"); s.retired <- w }
func (s *fakeSink) Lost(w xport.Worker, cause error) {
	s.check("Lost")
	s.lost <- lostEvent{w, cause}
}
func (s *fakeSink) Broken(err error)               { s.check("Broken"); s.broken <- err }
func (s *fakeSink) Started(xport.Worker, []uint64) { s.check("Started") }
func (s *fakeSink) Outstanding(xport.Worker) ([]*wire.Job, []uint64) {
	s.check("Outstanding")
	return nil, nil
}
func (s *fakeSink) Done(_ xport.Worker, rs []wire.Result) {
	s.check("Done")
	for _, r := range rs {
		s.results <- r
	}
}

const waitFor = 5 * time.Second

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// collect receives n results, keyed by job id.
func (s *fakeSink) collect(n int) map[uint64]wire.Result {
	s.t.Helper()
	got := make(map[uint64]wire.Result, n)
	for len(got) < n {
		r := recv(s.t, s.results, strconv.Itoa(n-len(got))+" more results")
		got[r.ID] = r
	}
	return got
}

var lastID atomic.Uint64

// job builds a job with a fresh id.
func job(name string, args ...string) *wire.Job {
	j := &wire.Job{ID: lastID.Add(1), Name: name}
	for _, a := range args {
		j.Args = append(j.Args, []byte(a))
	}
	if len(j.Args) == 0 {
		j.Args = [][]byte{nil}
	}
	return j
}

// start starts a transport with cfg (Output and StartTimeout defaulted for
// tests) and returns it with its sink and the initial workers by slot. The
// cleanup closes it and checks that no child it ever ran is left.
func start(t *testing.T, cfg Config) (*Transport, *fakeSink, []xport.Worker) {
	t.Helper()
	if cfg.Output == nil {
		cfg.Output = &testutil.Buffer{}
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = waitFor
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t)
	if err := tr.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	ws := make([]xport.Worker, cfg.Size)
	for range cfg.Size {
		w := recv(t, s.joined, "Join")
		ws[w.Slot()] = w
	}
	t.Cleanup(func() { closeAndCheck(t, tr, s) })
	return tr, s, ws
}

// closeAndCheck closes tr and checks that every child it ran was reaped.
// It is idempotent, so a test may call it before its cleanup does.
func closeAndCheck(t *testing.T, tr *Transport, s *fakeSink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := tr.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	s.closed.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pid := range s.pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("worker pid %d still exists after Close", pid)
		}
	}
}
