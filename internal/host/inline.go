package host

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex/internal/fanout"
	"github.com/aplex-go/aplex/internal/wire"
)

// A process child's round trip is dominated by hand-offs between threads,
// not by work: on a 2-core machine each goroutine hand-off wakes another
// thread (~10-20 µs), where a no-op job takes well under a microsecond.
// So the link's reader runs quick jobs itself, as internal/fanout runs a
// chunk's quick items, and the results it gathers leave in one write of
// its own (link.Writer.Hold and Release): from the pipe to the pipe, one
// thread, as in a raw ping-pong.
//
// The jobs must still run concurrently with what the link reads next (a
// Cancel of a running job, a Shutdown, more jobs), so a job that does not
// return quickly must not hold the reader. Two rules see to it:
//
//   - Only jobs of one item whose work returned within quickLimit last
//     time run in the reader. A work's first job, every job of a work that
//     was slow last time, and every chunk (a Map's: many items pay for one
//     hand-off) get a goroutine as before, which measures them.
//   - A watch checks on the reader every watchPeriod while it runs jobs.
//     Once the same batch has run through a whole period, the jobs not
//     started yet get a goroutine each, and a new goroutine reads in the
//     reader's place; the old one ends when its job returns. A quick work
//     that blocks once holds the link up for at most two periods.
//
// The watch is one timer for the link, not one per batch: arming a timer
// earlier than every other also wakes a thread (to wait for it in the
// network poller), which would cost what running in the reader saves. It
// is re-armed only while the reader keeps running jobs.
const (
	// quickLimit is the time an item must return within for its work to
	// run in the reader next time.
	quickLimit = fanout.Patience
	// watchPeriod is the interval of the watch.
	watchPeriod = time.Millisecond
)

// pace is what a work's last item showed: run it in the reader or not.
type pace struct{ quick atomic.Bool }

// observe records how long an item of the work took.
func (p *pace) observe(d time.Duration) { p.quick.Store(d < quickLimit) }

// Inline runs jobs in the goroutine that reads the link, while they are
// quick (see the comment above quickLimit). Its Run is called by one
// goroutine at a time: the reader of the moment.
type Inline struct {
	h             *Host
	takeover      func()
	hold, release func()
	watch         *time.Timer

	mu    sync.Mutex
	batch *batch // the jobs the reader runs now; nil when it reads
	epoch uint64 // batches begun
	seen  uint64 // epoch when the watch was last armed
	armed bool   // the watch is pending
}

// batch is the jobs of one Run that the reader runs itself: jobs of one
// item, of works that were quick last time.
type batch struct {
	jobs []*job
	one  [1]*job      // jobs of a lone job: saves an allocation
	next atomic.Int32 // the next job to claim
	gone bool         // the watch handed the reading on; guarded by Inline.mu
}

// NewInline returns an Inline for the reader of a link. takeover is
// called in a goroutine of its own when the reader is held up by a job:
// it must go on reading in its place. hold is called before the reader
// runs jobs, release once it has finished them or handed the reading on
// (before takeover): the link holds back their results meanwhile and
// writes them together at release.
func (h *Host) NewInline(takeover, hold, release func()) *Inline {
	h.mu.Lock()
	if h.paces == nil {
		h.paces = make(map[string]*pace)
	}
	h.mu.Unlock()
	in := &Inline{h: h, takeover: takeover, hold: hold, release: release}
	in.watch = time.AfterFunc(time.Hour, in.check)
	in.watch.Stop()
	return in
}

// Run starts the jobs of run like Host.Run, but runs those of quick works
// in the calling goroutine, the link's reader. Every job is registered
// before any runs, so that a Cancel read later finds it. It returns false
// when the watch handed the reading on meanwhile: the caller must not
// read again. If a work calls runtime.Goexit in the caller's goroutine,
// Run hands the reading on before the goroutine ends.
func (in *Inline) Run(run *wire.Run) bool {
	var b *batch
	for i := range run.Jobs {
		j := in.h.start(run, &run.Jobs[i])
		switch {
		case j == nil:
		case len(j.args) > 1 || !j.pace.quick.Load():
			// A chunk gets a goroutine as before: it pays for one hand-off
			// with many items, and its items run in parallel with what
			// the reader does next (measured: a Map of ChunkSize(100)
			// lost 40% of its throughput when its chunks ran here).
			in.h.runners.Go(j)
		case b == nil:
			b = &batch{}
			b.one[0] = j
			b.jobs = b.one[:]
		default:
			b.jobs = append(b.jobs, j)
		}
	}
	if b == nil {
		return true
	}
	in.hold()
	in.mu.Lock()
	in.batch = b
	in.epoch++
	if !in.armed {
		in.armed, in.seen = true, in.epoch
		in.watch.Reset(watchPeriod)
	}
	in.mu.Unlock()

	returned := false
	defer func() {
		if !returned {
			in.abandon(b)
		}
	}()
	b.run()
	returned = true

	in.mu.Lock()
	gone := b.gone
	if in.batch == b {
		in.batch = nil
	}
	in.mu.Unlock()
	if gone {
		return false // the watch released the results
	}
	in.release()
	return true
}

// Stop stops the watch; call it once nobody reads any more.
func (in *Inline) Stop() { in.watch.Stop() }

// run runs the batch's jobs (of one item each) one after another until
// none is left to claim, recording how long each took.
func (b *batch) run() {
	t0 := time.Now()
	for k := b.claim(); k >= 0; k = b.claim() {
		j := b.jobs[k]
		j.runItem(0)
		t1 := time.Now()
		j.pace.observe(t1.Sub(t0))
		t0 = t1
	}
}

// claim returns the next job of b to run, -1 when none is left.
func (b *batch) claim() int {
	if k := int(b.next.Add(1) - 1); k < len(b.jobs) {
		return k
	}
	return -1
}

// fanOut gives every job of b not claimed yet a goroutine of its own.
func (b *batch) fanOut() {
	for k := b.claim(); k >= 0; k = b.claim() {
		j := b.jobs[k]
		j.h.runners.Go(j)
	}
}

// check is the watch: it hands the reading on if the same batch has run
// through a whole period, re-arms itself while the reader runs jobs, and
// stops when it reads.
func (in *Inline) check() {
	in.mu.Lock()
	b := in.batch
	switch {
	case b == nil:
		in.armed = false
		in.mu.Unlock()
		return
	case in.epoch != in.seen:
		in.seen = in.epoch
		in.watch.Reset(watchPeriod)
		in.mu.Unlock()
		return
	}
	b.gone = true
	in.batch = nil
	in.armed = false
	in.mu.Unlock()
	b.fanOut()
	in.release()
	in.takeover() // this goroutine reads from now on
}

// abandon hands the rest of b and the reading on when the reader's
// goroutine ends inside a work (runtime.Goexit), unless the watch did.
func (in *Inline) abandon(b *batch) {
	in.mu.Lock()
	if b.gone {
		in.mu.Unlock()
		return
	}
	b.gone = true
	if in.batch == b {
		in.batch = nil
	}
	in.mu.Unlock()
	b.fanOut()
	in.release()
	go in.takeover()
}
