// Package spawn holds what every transport that starts worker processes
// needs: a forker that keeps Pdeathsig reliable, the one supervisor that
// keeps worker slots staffed (restarts with back-off, stop, release), and
// a writer that labels the children's output lines.
package spawn

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// ErrStopped is Fork's error once Stop was called: a process started then
// would miss the stop that the caller broadcasts to its children.
var ErrStopped = errors.New("aplex: workers are stopping")

// SupervisorConfig says what a Supervisor keeps running and how.
type SupervisorConfig struct {
	// Slots is the number of slots Start runs (0..Slots-1), each with one
	// supervising goroutine; AddSlot and RemoveSlot change them later.
	Slots int
	// Run starts slot's next incarnation (a worker process) and returns once
	// the slot needs another: the process exited, or it is retired and
	// drains beside its successor (process workers' RecycleAfter). It
	// returns an error when the incarnation did not start: it could not be
	// forked, or it exited before it could serve (a process worker's
	// handshake, a cluster worker's join); nil once it had started, however
	// soon it ended (killed by its executor for a work past its deadline,
	// say), and the slot is then restarted at once. It must return
	// promptly once ctx ends (Stop), unless it waits for a process that
	// Stop's caller is about to stop.
	Run func(ctx context.Context, slot int) error
	// Failed is told of every failed start (Run returned an error while the
	// supervisor runs), with the wait before the next try; it returns
	// false to give the slot up (its goroutine ends). Nil: always retry.
	Failed func(slot int, err error, retryIn time.Duration) bool
	// What names the workers in the log ("process worker").
	What string
	// Logger receives one warning per failed restart. Nil discards.
	Logger *slog.Logger
}

// Supervisor keeps a fixed number of slots staffed with worker processes,
// and starts every one of them from its Forker (Pdeathsig). Process workers
// (internal/proc) and a cluster executor's local workers use it; what an
// incarnation is, how it is stopped and reaped, is theirs (Run).
//
// Lifecycle:
//
//   - NewSupervisor starts the forker thread; Fork works from then on, so
//     a transport can start its first workers itself (all at once, with a
//     handshake) before Start.
//   - Start runs one goroutine per slot. Each loops: wait out the back-off,
//     Run, and decide the next back-off. A failed start (Run's error)
//     doubles the back-off, from 10ms up to 2s; an incarnation that started
//     resets it to 0, so a worker that dies after it started is replaced at
//     once, and one that cannot start costs little. Failed may give a slot
//     up (a worker that never started).
//   - Stop ends the restarts: Run's ctx ends, back-off waits return, and
//     Fork fails with ErrStopped, so no process starts after the caller has
//     told the running ones to stop (Signal, or its own protocol). It does
//     not wait.
//   - Wait returns once every slot goroutine has returned: for a Run that
//     waits for its process, once that process has exited.
//   - AddSlot runs one more slot, RemoveSlot ends one: its Run's ctx ends
//     and the slot is never restarted (a resized pool).
//   - Release ends the forker thread. Call it last, once every child is
//     reaped: on Linux a child's Pdeathsig fires when the thread that
//     forked it exits, so an earlier Release would SIGKILL a child still
//     finishing its works. (Pdeathsig is also what kills every child
//     should the executor's process die, however it dies.)
type Supervisor struct {
	cfg    SupervisorConfig
	log    *slog.Logger
	fork   *Forker
	ctx    context.Context // ends at Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	stopped  bool
	children map[*exec.Cmd]struct{}     // forked and not reaped (Reaped)
	slots    map[int]context.CancelFunc // running slots; each ends its slot's ctx
}

// NewSupervisor returns a supervisor with its forker running; no slot runs
// until Start.
func NewSupervisor(cfg SupervisorConfig) *Supervisor {
	s := &Supervisor{cfg: cfg, log: cfg.Logger, fork: NewForker(), children: map[*exec.Cmd]struct{}{}, slots: map[int]context.CancelFunc{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Fork starts cmd on the forker thread (see Forker.Start) and counts it
// among the children until Reaped. After Stop it starts nothing and returns
// ErrStopped.
func (s *Supervisor) Fork(cmd *exec.Cmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if err := s.fork.Start(cmd); err != nil {
		return err
	}
	s.children[cmd] = struct{}{}
	return nil
}

// Reaped forgets a child whose cmd.Wait has returned: Signal no longer
// reaches it, so a recycled pid is never signalled.
func (s *Supervisor) Reaped(cmd *exec.Cmd) {
	s.mu.Lock()
	delete(s.children, cmd)
	s.mu.Unlock()
}

// Signal sends sig to every child not yet reaped.
func (s *Supervisor) Signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cmd := range s.children {
		cmd.Process.Signal(sig)
	}
}

// Start runs the slots' goroutines.
func (s *Supervisor) Start() {
	for i := range s.cfg.Slots {
		s.AddSlot(i)
	}
}

// AddSlot runs slot's goroutine, unless it runs already or Stop was called.
func (s *Supervisor) AddSlot(slot int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.slots[slot] != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.slots[slot] = cancel
	s.wg.Go(func() { s.supervise(ctx, slot) })
}

// RemoveSlot ends slot: its Run's ctx ends and it is not restarted. It
// does not wait.
func (s *Supervisor) RemoveSlot(slot int) {
	s.mu.Lock()
	cancel := s.slots[slot]
	delete(s.slots, slot)
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Stop ends the restarts and makes Fork fail; see the type's doc.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
}

// Wait returns once every slot goroutine has returned.
func (s *Supervisor) Wait() { s.wg.Wait() }

// Release ends the forker thread; see the type's doc.
func (s *Supervisor) Release() {
	s.Stop()
	s.fork.Stop()
}

// supervise keeps slot staffed until Stop or RemoveSlot (ctx), or until
// Failed gives it up.
func (s *Supervisor) supervise(ctx context.Context, slot int) {
	var delay time.Duration // 0 until a start fails
	for {
		if delay > 0 && !sleep(ctx, delay) {
			return
		}
		err := s.cfg.Run(ctx, slot)
		if ctx.Err() != nil {
			return
		}
		delay = nextDelay(delay, err != nil)
		if err == nil {
			s.log.Debug("aplex: restarting "+s.cfg.What, "slot", slot, "in", delay)
			continue
		}
		if s.cfg.Failed != nil && !s.cfg.Failed(slot, err, delay) {
			return
		}
		s.log.Warn("aplex: cannot restart "+s.cfg.What, "slot", slot, "retry_in", delay, "err", err)
	}
}

// nextDelay returns the wait before the next start of a slot whose last
// wait was delay and whose last incarnation failed to start, or started:
// the next back-off, or 0.
func nextDelay(delay time.Duration, failed bool) time.Duration {
	if !failed {
		return 0
	}
	return NextBackoff(delay)
}

// sleep waits d, or until ctx ends; it reports whether the slot still
// runs.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
