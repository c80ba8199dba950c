package host

import (
	"context"
	"fmt"

	"github.com/aplex-go/aplex/internal/wire"
)

// Held jobs (Config.Slots, an executor's WithPrefetch).
//
// With a slot bound, a job that arrives while every slot runs a job is
// held: registered (so a Cancel finds it) but not started. When a running
// job ends, the oldest held job takes its slot, on the goroutine that ran
// the ended one (no hand-off), so a worker with prefetched jobs starts its
// next work without waiting for the executor to hear of the result.
//
// A held job never started, and is answered without running when
//
//   - its ctx ends (a Cancel, CancelAll, its Timeout): CodeCanceled or
//     CodeDeadline, as if the work had returned ctx.Err() at once; one
//     context.AfterFunc per held job watches for it, stopped when the job
//     starts;
//   - the host drains (Drain): CodeShutdown, so the executor sends it to
//     another worker (wire.NeverRan), as a job refused on arrival.
//
// Whichever of these and a start comes first under Host.mu wins: job.held
// is true exactly while the job is in the queue and unclaimed.

// slots counts the started jobs and holds the jobs waiting for one.
// Guarded by Host.mu; used only when Config.Slots > 0.
type slots struct {
	active int      // jobs started and not finished
	held   jobQueue // jobs waiting for a slot, oldest first
}

// jobQueue is a FIFO of held jobs. A job claimed out of order (cancelled,
// drained) stays in the slice with held cleared and is skipped by pop.
type jobQueue struct {
	jobs []*job
	n    int // entries still held
}

func (q *jobQueue) len() int { return q.n }

func (q *jobQueue) push(j *job) {
	j.held = true
	q.jobs = append(q.jobs, j)
	q.n++
}

// pop claims the oldest held job whose ctx has not ended, nil if none. A
// job whose ctx has ended leaves the slice but stays held: its watch is
// about to claim and answer it (a CancelAll ends the running jobs and the
// held ones at once, and those must not start in the freed slots).
func (q *jobQueue) pop() *job {
	for len(q.jobs) > 0 {
		j := q.jobs[0]
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		if j.held && j.ctx.Err() == nil {
			j.held = false
			q.n--
			return j
		}
	}
	return nil
}

// claim takes j out of the queue if it is still held there.
func (q *jobQueue) claim(j *job) bool {
	if !j.held {
		return false
	}
	j.held = false
	q.n--
	return true
}

// admitLocked starts j if a slot is free, or holds it and returns false.
func (h *Host) admitLocked(j *job) bool {
	if h.cfg.Slots <= 0 {
		return true
	}
	if h.slots.active < h.cfg.Slots {
		h.slots.active++
		return true
	}
	h.slots.held.push(j)
	// A goroutine of its own runs this when the ctx ends, so it may take
	// Host.mu, which is held here.
	j.unwatch = context.AfterFunc(j.ctx, func() { h.expireHeld(j) })
	return false
}

// nextLocked frees the slot of a job that ended, or hands it to the oldest
// held job, which the caller must start (startHeld).
func (h *Host) nextLocked() *job {
	if h.cfg.Slots <= 0 {
		return nil
	}
	if j := h.slots.held.pop(); j != nil {
		return j // keeps the slot
	}
	h.slots.active--
	return nil
}

// startHeld readies a job nextLocked took out of the queue for its run.
func startHeld(j *job) {
	// If the watch fired meanwhile it finds the job claimed and does
	// nothing; the work sees its ended ctx as any work would.
	j.unwatch()
}

// expireHeld answers a held job whose ctx ended.
func (h *Host) expireHeld(j *job) {
	h.mu.Lock()
	ok := h.slots.held.claim(j)
	h.mu.Unlock()
	if !ok {
		return // started, or answered by Drain
	}
	// As if the work had returned its ctx's error at once: the same codes
	// (CodeCanceled, CodeDeadline) and sentinels.
	o := h.outcome(j.ctx, nil, fmt.Errorf("aplex: work never started (held for a slot): %w", j.ctx.Err()))
	h.answerHeld(j, o.Err)
}

// takeAllLocked claims every held job in the queue, for Drain (those
// whose ctx ended are left to their watch).
func (s *slots) takeAllLocked() []*job {
	var out []*job
	for j := s.held.pop(); j != nil; j = s.held.pop() {
		out = append(out, j)
	}
	return out
}

// answerHeld emits the result of a claimed held job that never ran, every
// item failing with e, then unregisters it (in that order, as finish does,
// so that an idle host has emitted every result).
func (h *Host) answerHeld(j *job, e *wire.Error) {
	j.unwatch()
	j.cancel()
	h.cfg.Emit(j.key.replyTo, wire.Failed(j.key.id, len(j.args), e))
	h.mu.Lock()
	h.unlinkLocked(j)
	h.doneLocked()
	h.mu.Unlock()
}

// doneLocked counts a registered job out, and wakes whoever waits for the
// host to be idle.
func (h *Host) doneLocked() {
	h.running--
	if h.running == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
}
