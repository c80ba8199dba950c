package host

import (
	"context"
	"fmt"

	"github.com/aplex-go/aplex/internal/wire"
)

// Held jobs (wire.Run.Slots, an executor's WithPrefetch).
//
// A Run whose Slots is positive bounds the jobs of its executor (ReplyTo)
// that run at once, to Slots or the host's own MaxWorks, whichever is
// smaller; every executor has a bound of its own, as a cluster worker
// serves several. A job that arrives while every slot of its executor
// runs a job is held: registered (so a Cancel finds it) but not started.
// When a running job ends, the oldest held job of that executor takes its
// slot, on the goroutine that ran the ended one (no hand-off), so a worker
// with prefetched jobs starts its next work without waiting for the
// executor to hear of the result. A Run with Slots 0 sets no bound: the
// executor sends no more than the worker runs.
//
// A held job never started, and is answered without running when
//
//   - it is cancelled (Cancel, CancelAll): CodeCanceled, as if the work had
//     returned ctx.Err() at once;
//   - its ctx ends otherwise: its deadline passes (its Timeout), or a base
//     ctx or one a propagator's Extract made ends: CodeDeadline or
//     CodeCanceled, the same way. A context.AfterFunc watches the ctx of
//     a held job that can end so (job.endsAlone), so that it is answered
//     before the executor's kill timer (deadline plus kill grace) could
//     fire for it; the watch is stopped when the job starts;
//   - the host drains (Drain): CodeShutdown, so the executor sends it to
//     another worker (wire.NeverRan), as a job refused on arrival.
//
// A held job whose ctx only the host can end has no watch: Cancel and
// CancelAll claim it themselves (a watch on every held job was 8 % of a
// worker process's CPU in the bench suite's fan-out).
//
// Whichever of these and a start comes first under Host.mu wins: job.held
// is true exactly while the job is in its queue and unclaimed.

// slots is one executor's bound: the jobs started, and those waiting for
// one. Guarded by Host.mu.
type slots struct {
	replyTo string
	active  int      // jobs started and not finished
	held    jobQueue // jobs waiting for a slot, oldest first
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

// pop claims the oldest held job, nil if none.
func (q *jobQueue) pop() *job {
	for len(q.jobs) > 0 {
		j := q.jobs[0]
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		if j.held {
			j.held = false
			q.n--
			return j
		}
	}
	return nil
}

// claim takes j out of the queue if it is still held there. Its entry
// stays until pop passes it, unless claimed entries come to outnumber the
// held ones: then the slice is compacted, so that held jobs cancelled one
// after another while every slot stays busy do not pile up.
func (q *jobQueue) claim(j *job) bool {
	if !j.held {
		return false
	}
	j.held = false
	q.n--
	if len(q.jobs) > 2*q.n+16 {
		kept := q.jobs[:0]
		for _, k := range q.jobs {
			if k.held {
				kept = append(kept, k)
			}
		}
		clear(q.jobs[len(kept):])
		q.jobs = kept
	}
	return true
}

// admitLocked starts j if its executor has a free slot or sets no bound
// (bound, the Run's Slots), or holds it and returns false.
func (h *Host) admitLocked(j *job, bound int) bool {
	if bound <= 0 {
		return true
	}
	if h.cfg.MaxWorks > 0 && bound > h.cfg.MaxWorks {
		bound = h.cfg.MaxWorks // the capacity the executor took from Hello
	}
	s := h.slots[j.key.replyTo]
	if s == nil {
		if h.slots == nil {
			h.slots = make(map[string]*slots)
		}
		s = &slots{replyTo: j.key.replyTo}
		h.slots[s.replyTo] = s
	}
	j.slot = s
	if s.active < bound {
		s.active++
		return true
	}
	s.held.push(j)
	if j.endsAlone {
		// A goroutine of its own runs this when the ctx ends, so it may
		// take Host.mu, which is held here.
		j.unwatch = context.AfterFunc(j.ctx, func() { h.expireHeld(j) })
	}
	return false
}

// claimLocked takes j out of its executor's queue if it is still held
// there, and returns whether it was.
func (h *Host) claimLocked(j *job) bool {
	if j.slot == nil || !j.slot.held.claim(j) {
		return false
	}
	h.forgetLocked(j.slot)
	return true
}

// cancelLocked cancels j's ctx, or claims j if it is held and adds it to
// held, for answerCancelled.
func (h *Host) cancelLocked(j *job, held []*job) []*job {
	if h.claimLocked(j) {
		return append(held, j)
	}
	j.cancel()
	return held
}

// answerCancelled answers held jobs claimed by a cancel.
func (h *Host) answerCancelled(held []*job) {
	for _, j := range held {
		j.cancel()
		h.answerEnded(j)
	}
}

// nextLocked frees the slot of j, which ended, or hands it to the oldest
// held job of j's executor, which the caller must start (startHeld). A held
// job whose ctx has ended never starts, even if its watch has not run yet:
// it is claimed and returned in ended, for the caller to answer
// (answerEnded) once it has let Host.mu go.
func (h *Host) nextLocked(j *job) (next *job, ended []*job) {
	s := j.slot
	if s == nil {
		return nil, nil
	}
	for n := s.held.pop(); n != nil; n = s.held.pop() {
		if n.endsAlone && n.ctx.Err() != nil {
			ended = append(ended, n)
			continue
		}
		return n, ended // keeps the slot
	}
	s.active--
	h.forgetLocked(s)
	return nil, ended
}

// heldLocked counts the jobs held for a slot, of every executor.
func (h *Host) heldLocked() int {
	n := 0
	for _, s := range h.slots {
		n += s.held.len()
	}
	return n
}

// forgetLocked drops an executor's bound once it has no job, so that the
// host keeps nothing for an executor gone (a cluster worker outlives many).
func (h *Host) forgetLocked(s *slots) {
	if s.active == 0 && s.held.len() == 0 && h.slots[s.replyTo] == s {
		delete(h.slots, s.replyTo)
	}
}

// startHeld readies a job nextLocked took out of the queue for its run.
func startHeld(j *job) {
	// If the watch fired meanwhile it finds the job claimed and does
	// nothing; the work sees its ended ctx as any work would.
	if j.unwatch != nil {
		j.unwatch()
	}
	j.began()
}

// expireHeld answers a held job whose ctx ended (its watch).
func (h *Host) expireHeld(j *job) {
	h.mu.Lock()
	ok := h.claimLocked(j)
	h.mu.Unlock()
	if ok { // else started, or answered by a cancel or Drain
		h.answerEnded(j)
	}
}

// answerEnded answers a claimed held job whose ctx ended, as if its work
// had returned the ctx's error at once: the same codes (CodeCanceled,
// CodeDeadline) and sentinels.
func (h *Host) answerEnded(j *job) {
	o := h.outcome(j.ctx, nil, fmt.Errorf("aplex: work never started (held for a slot): %w", j.ctx.Err()))
	h.answerHeld(j, o.Err)
}

// takeHeldLocked claims every held job in the queues, for Drain.
func (h *Host) takeHeldLocked() []*job {
	var out []*job
	for _, s := range h.slots {
		for j := s.held.pop(); j != nil; j = s.held.pop() {
			out = append(out, j)
		}
		h.forgetLocked(s)
	}
	return out
}

// answerHeld emits the result of a claimed held job that never ran, every
// item failing with e, then unregisters it (in that order, as finish does,
// so that an idle host has emitted every result).
func (h *Host) answerHeld(j *job, e *wire.Error) {
	if j.unwatch != nil {
		j.unwatch()
	}
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
