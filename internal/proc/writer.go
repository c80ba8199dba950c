package proc

import (
	"errors"
	"fmt"

	"github.com/aplex-go/aplex/internal/wire"
)

// runOverhead is a Run frame's room for ReplyTo, the job count and slack.
const runOverhead = 4 * wire.MaxVarint

// writeLoop is the worker's writer goroutine. Each round it takes
// everything queued, writes the jobs as few Run frames as fit MaxFrame,
// then the cancels as one Cancel frame, then a pending Shutdown, and it
// flushes only when the queue is empty: a burst of Sends costs one write
// system call, a lone Send goes out at once.
//
// Sends never write themselves (measured: a non-blocking direct write from
// Send did not lower the round trip here and cost a system call per job
// under load, where the writer batches).
func (w *worker) writeLoop() {
	defer close(w.writerDone)
	var (
		jobs    []*wire.Job
		cancels []uint64
		run     wire.Run
	)
	for {
		w.mu.Lock()
		jobs, w.jobs = w.jobs, jobs[:0]
		cancels, w.cancels = w.cancels, cancels[:0]
		shutdown := w.shutdown
		w.shutdown = false
		w.mu.Unlock()

		if len(jobs) == 0 && len(cancels) == 0 && !shutdown {
			if err := w.wr.Flush(); err != nil {
				w.fail(err)
				return
			}
			select {
			case <-w.wake:
				continue
			case <-w.quit:
				return
			}
		}
		// Jobs before cancels: a job sent and cancelled in the same round
		// must exist in the child when its cancel arrives.
		err := w.writeJobs(jobs, &run)
		if err == nil && len(cancels) > 0 {
			err = w.writeCancels(cancels)
		}
		if err == nil && shutdown {
			err = w.wr.Write(&wire.Shutdown{Graceful: true})
		}
		clear(jobs) // the jobs belong to the core: do not pin them
		clear(run.Jobs)
		if err != nil {
			w.fail(err)
			return
		}
	}
}

// errUnwritable marks the Kill reason of a worker whose request pipe
// failed (see fail).
var errUnwritable = errors.New("its request pipe is broken")

// fail stops the queue after a write error and kills the child. Its end
// of the request pipe is closed: it is exiting or dead, or a work closed
// fd 3, which leaves a live worker that can never be given a job again.
// The jobs it holds or was sent would be dropped silently, so it is lost:
// the kill makes the reader see EOF, reap it and report Sink.Lost, and the
// supervisor replaces it. A child that was already exiting cleanly after
// Close is not hurt by the kill (see finish).
func (w *worker) fail(err error) {
	w.mu.Lock()
	w.dead = true
	w.jobs, w.cancels, w.shutdown = nil, nil, false
	w.mu.Unlock()
	w.Kill(fmt.Errorf("%w (%w)", errUnwritable, err))
}

// writeJobs writes jobs in as few Run frames as fit.
func (w *worker) writeJobs(jobs []*wire.Job, run *wire.Run) error {
	budget := w.t.cfg.MaxFrame - runOverhead
	run.Jobs = run.Jobs[:0]
	size := 0
	for _, j := range jobs {
		s := wire.JobBound(j)
		if len(run.Jobs) > 0 && size+s > budget {
			if err := w.writeRun(run.Jobs); err != nil {
				return err
			}
			clear(run.Jobs)
			run.Jobs, size = run.Jobs[:0], 0
		}
		run.Jobs = append(run.Jobs, *j)
		size += s
	}
	if len(run.Jobs) == 0 {
		return nil
	}
	return w.writeRun(run.Jobs)
}

// writeRun writes one Run frame. A single job too large for a frame (the
// core should have refused it) is answered locally with CodeTooLarge
// errors, so it fails instead of vanishing; the rest of the batch goes on.
func (w *worker) writeRun(jobs []wire.Job) error {
	err := w.wr.Write(&wire.Run{Jobs: jobs})
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		return err
	}
	if len(jobs) > 1 {
		half := len(jobs) / 2
		if err := w.writeRun(jobs[:half]); err != nil {
			return err
		}
		return w.writeRun(jobs[half:])
	}
	j := &jobs[0]
	e := &wire.Error{Code: wire.CodeTooLarge, Message: fmt.Sprintf("aplex: job %q of %d items does not fit in a %d-byte frame", j.Name, len(j.Args), w.t.cfg.MaxFrame)}
	w.t.sink.Done(w, []wire.Result{wire.Failed(j.ID, len(j.Args), e)})
	return nil
}

// writeCancels writes ids as Cancel frames (one, unless there are more
// than a frame holds).
func (w *worker) writeCancels(ids []uint64) error {
	per := (w.t.cfg.MaxFrame - runOverhead) / wire.MaxVarint
	for len(ids) > 0 {
		n := min(len(ids), per)
		if err := w.wr.Write(&wire.Cancel{IDs: ids[:n]}); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}
