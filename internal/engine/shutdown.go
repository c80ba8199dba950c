package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
)

// Shutdown stops the executor gracefully: new works are refused with
// ErrClosed, and queued and running works may finish until ctx ends
// (workers lost meanwhile are replaced, so queued works still run). When
// ctx ends, the rest are cancelled: their futures end matching ErrClosed
// and context.Canceled. Every worker then stops, and Shutdown returns once
// no goroutine or child process of the executor is left.
//
// Its bound: the drain, then at most the kill grace (WithKillGrace) once
// ctx has ended or every work left has been cancelled. A process or
// cluster work still running then costs its worker process; an in-process
// work that ignores its ctx cannot be stopped, and Shutdown returns an
// error naming it instead of waiting for it. Shutdown returns ctx.Err()
// when it had to cancel, and nil after a clean drain. It is idempotent and
// safe to call concurrently with itself and Close.
func (ex *Executor) Shutdown(ctx context.Context) error {
	if ex == nil {
		return errors.New("aplex: Shutdown of a nil executor")
	}
	if ex.c == nil {
		return errZeroExecutor
	}
	if ctx == nil {
		return errors.New("aplex: Shutdown: nil context")
	}
	// ex must stay reachable until the drain ends: its runtime cleanup
	// would otherwise close the executor mid-drain.
	defer runtime.KeepAlive(ex)
	return ex.c.shutdown(ctx)
}

// Close stops the executor now: queued works are cancelled and running
// works see their ctx cancelled. Unlike http.Server.Close it waits for them
// to stop, for at most the kill grace (WithKillGrace): process and cluster
// workers still busy then are killed, and in-process works that ignore
// their ctx are named in the error. It is Shutdown with no grace for the
// works, and returns nil when everything stopped in time.
func (ex *Executor) Close() error {
	if ex == nil {
		return errors.New("aplex: Close of a nil executor")
	}
	if ex.c == nil {
		return errZeroExecutor
	}
	defer runtime.KeepAlive(ex)
	return ex.c.Close()
}

func (c *core) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		// Close has no grace to run out of; only report real problems.
		err = c.stopErr
	}
	return err
}

func (c *core) shutdown(ctx context.Context) error {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.stopping.Store(true)
		close(c.closed)
		c.checkIdleLocked()
	}
	c.unlock()
	var err error
	select {
	case <-c.idle:
	default:
		select {
		case <-c.idle:
		case <-c.abandoned:
			// Every work left was cancelled (Future.Cancel, the caller's
			// ctx) and still runs: teardown gives them the kill grace.
		case <-ctx.Done():
			err = ctx.Err()
			c.cancelAll()
		}
	}
	c.stopOnce.Do(c.teardown)
	return errors.Join(err, c.stopErr)
}

// cancelAll cancels every queued and running work (rule 9).
func (c *core) cancelAll() {
	c.mu.Lock()
	tasks := c.queue.all()
	for _, w := range c.allWorkersLocked() {
		tasks = append(tasks, w.runningTasks()...)
	}
	c.unlock()
	for _, t := range tasks {
		t.cancel(errShutdown)
	}
}

// allWorkersLocked returns the live and the retired-but-busy workers.
func (c *core) allWorkersLocked() []*worker {
	ws := slices.Concat(c.workers, c.retiring)
	for _, w := range c.byConn {
		if w.retired {
			ws = append(ws, w)
		}
	}
	return ws
}

// teardown stops the workers once every work has ended or been cancelled.
func (c *core) teardown() {
	defer c.baseCancel()
	c.mu.Lock()
	c.down = true
	c.unlock()
	// One kill grace bounds the rest of the shutdown: the wait for
	// cancelled works and the transport's close share it.
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.killGrace)
	defer cancel()
	drained := false
	select {
	case <-c.idle:
		drained = true
	case <-ctx.Done():
	}
	c.stopErr = c.be.close(ctx, drained)
}

// stubbornError names the in-process works still running a kill grace
// after they were cancelled. Their goroutines cannot be stopped from
// outside; Shutdown reports them rather than wait for ever.
func (c *core) stubbornError() error {
	c.mu.Lock()
	counts := map[string]int{}
	n, callbacks := 0, 0
	for _, w := range c.allWorkersLocked() {
		for _, t := range w.runningTasks() {
			if t.finished() && !t.endedCancelled() {
				// The work returned (a cancelled one may still run, its
				// future ended): its goroutine runs the future's
				// completion callbacks, which hold the slot until they
				// return.
				callbacks++
				continue
			}
			counts[t.r.name()]++
			n++
		}
	}
	c.unlock()
	var errCallbacks error
	if callbacks > 0 {
		errCallbacks = fmt.Errorf("aplex: the completion callbacks (OnDone) of %d works still run %v after the shutdown began: one that shuts its own executor down, which OnDone forbids, never returns before this does", callbacks, c.cfg.killGrace)
	}
	if n == 0 {
		return errCallbacks // nil if they returned just now
	}
	names := make([]string, 0, len(counts))
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		if k := counts[name]; k > 1 {
			name = fmt.Sprintf("%s (×%d)", name, k)
		}
		names = append(names, name)
	}
	return errors.Join(fmt.Errorf("aplex: %d works still running %v after they were cancelled: they ignore their ctx: %s", n, c.cfg.killGrace, strings.Join(names, ", ")), errCallbacks)
}
