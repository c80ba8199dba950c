// Package proc is the process-worker transport: it runs workers as child
// processes (by default the same binary, re-executed), talks to each over a
// pair of pipes on the child's fds 3 and 4 with the wire protocol, and
// supervises them: a dead worker is reported and replaced in the same slot,
// a worker over its memory limit, silent past its heartbeat timeout or no
// longer writable is killed, and workers are recycled after a number of
// jobs.
//
// The parent side implements xport.Transport; ServeChild is the child side.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex/internal/spawn"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// Config configures a Transport.
type Config struct {
	// Size is the number of workers (slots 0..Size-1).
	Size int
	// Path is the worker binary; empty means os.Executable(). Args are its
	// arguments (not including the program name).
	Path string
	Args []string
	// Env is added to os.Environ() for the children (later entries win).
	Env []string
	// Output receives the children's stdout and stderr, each line prefixed
	// "[aplex worker <slot> pid <pid>] ". Nil means os.Stderr.
	Output io.Writer
	// RecycleAfter replaces a worker once this many jobs were sent to it
	// (0: never). The old one is retired and closed when idle.
	RecycleAfter int
	// MemoryLimit is a per-worker resident memory limit in bytes (0: none).
	// The child gets it as GOMEMLIMIT (a soft limit for its GC) and the
	// parent kills a worker whose RSS exceeds it, checking every 100ms.
	MemoryLimit int64
	// StartTimeout bounds a worker's handshake (0: 10s).
	StartTimeout time.Duration
	// HeartbeatTimeout is how long a worker may stay silent (0: no limit).
	// The children beat at a third of it, from a goroutine of their own,
	// so a busy worker still beats; one silent past it (stopped, stuck in
	// the kernel) is killed, reported lost and replaced.
	HeartbeatTimeout time.Duration
	// Slots is how many jobs a child runs at once, sent in every Run
	// (wire.Run.Slots; 0: no bound, the core keeps within the worker's
	// capacity). The core sends more than that only with a prefetch
	// (aplex.WithPrefetch); the child holds those and starts each as a
	// slot frees. A child whose Hello announces a smaller MaxWorks runs
	// that many.
	Slots int
	// MaxFrame is the frame size limit in both directions (0:
	// wire.DefaultMaxFrame; at least 8 KiB).
	MaxFrame int
	// Logger receives the rare log line (a failed restart). Nil discards.
	Logger *slog.Logger
}

// Defaults and bounds.
const (
	defaultStartTimeout = 10 * time.Second
	minFrame            = 8 << 10
	minHeartbeatTimeout = 10 * time.Millisecond
	beatsPerTimeout     = 3               // a child beats at HeartbeatTimeout/3
	exitGrace           = 2 * time.Second // from EOF on fd 4 to a kill
)

// Transport starts and supervises process workers. It implements
// xport.Transport; its workers implement xport.Worker.
type Transport struct {
	cfg  Config
	log  *slog.Logger
	out  io.Writer
	outM sync.Mutex // keeps the workers' output lines whole

	ctx    context.Context // ends at Close: stops Start's handshakes, the memory poll
	cancel context.CancelFunc
	epoch  time.Time     // monotonic base of worker.heard
	reaped chan struct{} // closed by Close once every worker is gone: stops the watchdog
	sink   xport.Sink
	sup    *spawn.Supervisor // forks every worker; one goroutine per slot replaces them

	wg sync.WaitGroup // every other goroutine: readers, writers, memory poll
	// delivering counts the goroutines in Sink.Done or Sink.Lost (a
	// worker's reader, or a Get reading for itself): they run completion
	// callbacks, which Close must not wait for without end (awaitReaders).
	delivering atomic.Int32

	mu      sync.Mutex
	started bool
	closing bool
	workers map[*worker]struct{} // every registered process not yet reaped
	slots   map[int]*slot        // the slots kept staffed (resize.go changes them)
}

var _ xport.Transport = (*Transport)(nil)

// New validates cfg and returns a Transport; nothing starts until Start.
func New(cfg Config) (*Transport, error) {
	if IsChild() {
		// The binary was re-executed as a worker but did not call
		// aplex.Main first: starting workers here would fork without end.
		return nil, fmt.Errorf("aplex: this process is a worker (%s is set) but its main did not call aplex.Main() first thing; refusing to start process workers", EnvRole)
	}
	switch {
	case cfg.Size < 1:
		return nil, fmt.Errorf("aplex: process workers: pool size %d, need at least 1", cfg.Size)
	case cfg.RecycleAfter < 0:
		return nil, fmt.Errorf("aplex: process workers: RecycleAfter %d is negative", cfg.RecycleAfter)
	case cfg.Slots < 0:
		return nil, fmt.Errorf("aplex: process workers: Slots %d is negative", cfg.Slots)
	case cfg.MemoryLimit < 0:
		return nil, fmt.Errorf("aplex: process workers: MemoryLimit %d is negative", cfg.MemoryLimit)
	case cfg.StartTimeout < 0:
		return nil, fmt.Errorf("aplex: process workers: StartTimeout %v is negative", cfg.StartTimeout)
	case cfg.HeartbeatTimeout < 0 || cfg.HeartbeatTimeout > 0 && cfg.HeartbeatTimeout < minHeartbeatTimeout:
		return nil, fmt.Errorf("aplex: process workers: HeartbeatTimeout %v, need 0 (none) or at least %v", cfg.HeartbeatTimeout, minHeartbeatTimeout)
	case cfg.MaxFrame < 0 || cfg.MaxFrame > 0 && cfg.MaxFrame < minFrame:
		return nil, fmt.Errorf("aplex: process workers: MaxFrame %d, need 0 (default) or at least %d", cfg.MaxFrame, minFrame)
	}
	if cfg.MemoryLimit > 0 && !spawn.MemorySupported {
		return nil, errors.New("aplex: process workers: MemoryLimit is not supported on this system")
	}
	if cfg.Path == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("aplex: process workers: cannot find this executable: %w", err)
		}
		cfg.Path = exe
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = wire.DefaultMaxFrame
	}
	t := &Transport{cfg: cfg, log: cfg.Logger, out: cfg.Output, workers: map[*worker]struct{}{}, slots: map[int]*slot{}}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.out == nil {
		t.out = os.Stderr
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.epoch = time.Now()
	t.reaped = make(chan struct{})
	return t, nil
}

// MaxMessage is the frame limit; see wire.PayloadLimit for a job's share.
func (t *Transport) MaxMessage() int { return t.cfg.MaxFrame }

// Start brings up Size workers concurrently and calls sink.Join for each
// once all completed the handshake. If one fails, it stops the others and
// returns that error (wrapping ErrHandshake when the binary did not answer
// as a worker); Close is then a no-op.
func (t *Transport) Start(ctx context.Context, sink xport.Sink) error {
	t.mu.Lock()
	if t.started || t.closing {
		t.mu.Unlock()
		return errors.New("aplex: process workers: Start called twice or after Close")
	}
	t.started = true
	t.mu.Unlock()
	t.sink = sink
	t.sup = spawn.NewSupervisor(spawn.SupervisorConfig{
		Slots:  t.cfg.Size,
		Run:    t.runSlot,
		Failed: t.startFailed,
		What:   "process worker",
		Logger: t.log,
	})

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(t.ctx, stop)()
	ws := make([]*worker, t.cfg.Size)
	errs := make([]error, t.cfg.Size)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			ws[i], errs[i] = t.spawn(ctx, i)
			if errs[i] != nil {
				stop() // no point waiting for the others
			}
		})
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		for _, w := range ws {
			if w != nil {
				w.abort()
			}
		}
		t.sup.Release()
		t.mu.Lock()
		t.closing = true
		t.mu.Unlock()
		t.cancel()
		return err
	}

	t.mu.Lock()
	for i, w := range ws {
		s := newSlot(i)
		s.cur = w
		w.slot = s
		t.slots[i] = s
		t.workers[w] = struct{}{}
	}
	t.mu.Unlock()
	for _, w := range ws {
		sink.Join(w)
		w.startIO()
	}
	t.sup.Start()
	if t.cfg.MemoryLimit > 0 {
		t.wg.Go(func() { spawn.WatchMemory(t.ctx, t.cfg.MemoryLimit, t.watched) })
	}
	if t.cfg.HeartbeatTimeout > 0 {
		t.wg.Go(t.watchHeartbeats)
	}
	return nil
}

// firstError returns the first non-nil error, preferring a real failure
// over the cancellations it caused in the other spawns.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// register adds w to the live set, unless the transport is closing.
func (t *Transport) register(w *worker) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.workers[w] = struct{}{}
	return true
}

// unregister removes a reaped worker.
func (t *Transport) unregister(w *worker) {
	t.mu.Lock()
	delete(t.workers, w)
	t.mu.Unlock()
}

// watched returns the live workers for spawn.WatchMemory.
func (t *Transport) watched() []spawn.Watched {
	ws := t.live()
	out := make([]spawn.Watched, len(ws))
	for i, w := range ws {
		out[i] = spawn.Watched{PID: w.pid, Kill: func(err *spawn.MemoryLimitError) { w.Kill(err) }}
	}
	return out
}

// live returns the registered workers.
func (t *Transport) live() []*worker {
	t.mu.Lock()
	defer t.mu.Unlock()
	ws := make([]*worker, 0, len(t.workers))
	for w := range t.workers {
		ws = append(ws, w)
	}
	return ws
}

// Close asks every worker to finish and exit (Shutdown{Graceful: true}),
// waits for them until ctx ends, kills the rest and waits for those too.
// Workers are reported with Sink.Lost as they go: cause nil for a clean
// exit. When Close returns, every child has been reaped, every goroutine of
// the transport has returned, and no Sink method will be called again. It
// returns ctx.Err() if it had to kill a worker that had not finished (not
// sent Bye).
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil // Start failed, or a second Close
	}
	t.closing = true
	started := t.started
	t.mu.Unlock()
	t.cancel()
	if !started {
		return nil
	}
	t.sup.Stop()

	for _, w := range t.live() {
		w.Close()
	}
	// Supervisors stop promptly (their waits watch the supervisor's ctx);
	// one that was finishing a start stops its new worker itself, since
	// register fails.
	t.sup.Wait()

	ws := t.live()
	var err error
	for _, w := range ws {
		select {
		case <-w.done:
			continue
		case <-ctx.Done():
		}
		reason := fmt.Errorf("aplex: process workers closed: %w", ctx.Err())
		for _, w := range ws {
			select {
			case <-w.done:
				continue
			default:
			}
			// A worker that said Bye has finished every job; if it is slow
			// to exit (a -race binary's exit sleep, a loaded machine),
			// killing it loses nothing and is not worth an error.
			if !w.said.Load() {
				err = ctx.Err()
			}
			w.Kill(reason)
		}
		break
	}
	left := t.awaitReaders(ws)
	// The watchdog ran until now, so that a worker that froze while
	// draining is killed at its timeout rather than at ctx's end.
	close(t.reaped)
	if len(left) > 0 || !t.awaitGoroutines() {
		// A reader runs a callback, and is in t.wg: do not wait for it.
		// Its child was told to leave or killed; the reader reaps it once
		// the callback returns.
		t.sup.Release()
		return errors.Join(err, stuckError(left))
	}
	// Last: the forker thread's exit SIGKILLs any child it started
	// (Pdeathsig), so it must outlive them.
	t.sup.Release()
	return err
}

// awaitReaders waits until the reader of every worker in ws has ended,
// and returns the workers it stopped waiting for. Once its child is closed
// or killed, a reader ends as soon as the stream does, unless it is
// running a completion callback (Future.OnDone) that waits for this Close:
// one that shuts the executor down, which OnDone forbids but must not
// hang. So a reader that has not ended xport.StuckGrace from now while a
// goroutine is in Sink.Done or Sink.Lost is left to end on its own.
func (t *Transport) awaitReaders(ws []*worker) (left []*worker) {
	deadline := time.Now().Add(xport.StuckGrace)
	for _, w := range ws {
		if !t.awaitStuck(w.done, deadline) {
			left = append(left, w)
		}
	}
	return left
}

// stuckLooks is how many looks, xport.StuckGrace/10 apart, must each find a
// goroutine in a callback before Close stops waiting: a report that is
// merely slow (a loaded machine) ends meanwhile.
const stuckLooks = 5

// awaitStuck waits for done to be closed, until deadline and then for as
// long as no goroutine is seen in a callback stuckLooks times in a row;
// false if it gave up.
func (t *Transport) awaitStuck(done <-chan struct{}, deadline time.Time) bool {
	seen := 0
	for !closedWithin(done, time.Until(deadline)) {
		if t.delivering.Load() == 0 {
			seen = 0 // nobody in a callback: the stream is ending
		} else if seen++; seen == stuckLooks {
			return false
		}
		deadline = time.Now().Add(xport.StuckGrace / 10)
	}
	return true
}

// awaitGoroutines waits for t.wg: the readers of workers already gone
// from the live set too, one of which may be reporting its loss (Sink.Lost)
// and running a callback that waits for this Close. False if it gave up
// (awaitStuck).
func (t *Transport) awaitGoroutines() bool {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }() // ends with the last of them
	return t.awaitStuck(done, time.Now().Add(xport.StuckGrace))
}

// closedWithin reports whether ch is closed within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	if d <= 0 {
		return false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}

// stuckError names the workers whose readers Close left running a
// completion callback (none named: a lost worker's).
func stuckError(left []*worker) error {
	who := "a worker's reader"
	if len(left) > 0 {
		names := make([]string, len(left))
		for i, w := range left {
			names[i] = fmt.Sprintf("slot %d (pid %d)", w.slotIdx, w.pid)
		}
		who = "the reader of " + strings.Join(names, ", ")
	}
	return fmt.Errorf("aplex: process workers closed, but %s still runs a completion callback %v later (one that shuts its own executor down, which OnDone forbids, never returns before this does)", who, xport.StuckGrace)
}
