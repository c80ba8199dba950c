package engine

import (
	"context"

	"github.com/aplex-go/aplex/internal/xport"
)

// backend is where dispatched works run: goroutines of this process
// (thread executors) or remote workers behind a transport (process and
// cluster executors). Everything else in the core (capacity, the queue,
// the balancer, futures, cancellation, shutdown) is the same for every
// kind; the differences are these methods.
type backend interface {
	// startLocked starts t, just dispatched to w, under core.mu. With keep
	// set the caller may run an in-process work itself; startLocked then
	// returns true and the caller must (see drainLocked).
	startLocked(w *worker, t *task, keep bool) (runHere bool)
	// stop cancels the running work t wherever it runs; its slot stays
	// taken until it has really stopped. Called without core.mu.
	stop(t *task, err error)
	// abandonedLocked reports whether every work still running is
	// cancelled and can only be waited for the kill grace (see
	// core.abandonedLocked).
	abandonedLocked() bool
	// wire reports whether works cross a process boundary: arguments are
	// encoded at Submit (so encoding errors and sizes are reported there)
	// and only registered works can run.
	wire() bool
	// close ends the backend at teardown, once every work has ended
	// (drained) or the kill grace (ctx) has passed; its error is
	// Shutdown's. Called without core.mu.
	close(ctx context.Context, drained bool) error

	// addSlot gives the new slot a worker and returns once it serves
	// (Resize). Called without core.mu.
	addSlot(ctx context.Context, slot int) error
	// removeSlot stops keeping slot staffed: its worker, which the core
	// retired, is not replaced (Resize). Called without core.mu.
	removeSlot(slot int)
	// ownsSlot reports whether the backend keeps slot staffed, so Resize
	// counts it: not a remote cluster worker's slot.
	ownsSlot(slot int) bool
	// resizable returns nil if Resize applies, else an error saying why.
	resizable() error
}

// goroutines runs works on goroutines of this process.
type goroutines struct{ c *core }

func (b goroutines) startLocked(_ *worker, t *task, keep bool) bool {
	if keep {
		return true
	}
	b.c.runners.Go(t.r)
	return false
}

func (goroutines) stop(t *task, err error) { t.workContext().cancel(err) }

func (b goroutines) abandonedLocked() bool { return b.c.localAbandonedLocked() }

func (goroutines) wire() bool { return false }

// close reports the works that still run after the kill grace: their
// goroutines cannot be stopped from outside.
func (b goroutines) close(_ context.Context, drained bool) error {
	b.c.runners.Close()
	if drained {
		return nil
	}
	err := b.c.stubbornError()
	// Logged as well as returned: a deferred Close, or the cleanup of a
	// dropped executor, discards the error.
	if err != nil && b.c.cfg.logger != nil {
		b.c.cfg.logger.Warn("aplex: Shutdown leaves works running", "err", err)
	}
	return err
}

// remote runs works on the workers of a transport (process, cluster).
type remote struct {
	c  *core
	tr xport.Transport
}

func (b *remote) startLocked(w *worker, t *task, _ bool) bool {
	b.c.sendLocked(w, t)
	return false
}

func (b *remote) stop(t *task, err error) { b.c.cancelRemote(t, err) }

// abandonedLocked is false: a cancelled remote work that ignores its ctx
// costs its worker process after the kill grace (armKill), so the drain
// never needs to give up on it.
func (*remote) abandonedLocked() bool { return false }

func (*remote) wire() bool { return true }

// close closes the transport, then fails the jobs nothing can answer now.
func (b *remote) close(ctx context.Context, _ bool) error {
	err := b.tr.Close(ctx)
	c := b.c
	c.mu.Lock()
	var left []*task
	for _, w := range c.allWorkersLocked() {
		for _, t := range w.runningTasks() {
			c.stopTimers(t) // as for a lost worker's (sink.go)
			c.notAheadLocked(t.rjob())
			c.releaseLocked(w, t)
			left = append(left, t)
		}
	}
	clear(c.jobs)
	c.unlock()
	for _, t := range left {
		t.r.fail(t, errShutdown)
	}
	return err
}
