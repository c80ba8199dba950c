package engine

import (
	"errors"
	"time"
)

// progressEvery is the least time between two calls of an OnProgress
// function, but for the last one.
const progressEvery = 100 * time.Millisecond

// Progress is how far a Map or MapUnordered is, as OnProgress reports it.
// Counts are of inputs, not chunks.
type Progress struct {
	// Done counts the inputs whose result was yielded without error.
	Done int
	// Failed counts the inputs whose error was yielded: at most one input,
	// or one chunk's inputs when the chunk failed as a whole (its worker
	// was lost), since the first error ends a Map.
	Failed int
	// InFlight counts the inputs submitted to the executor (queued or
	// running) and not yet yielded; 0 in the last report.
	InFlight int
	// Elapsed is the time since the Map began (its first iteration).
	Elapsed time.Duration
}

// OnProgress makes Map and MapUnordered report their progress to fn: at
// most every 100 ms while results are yielded, and once more at the end
// (after the last result or the error, or when the loop breaks), when
// Done+Failed counts every input processed and InFlight is 0. A Map whose
// loop body panics makes no last report.
//
// fn runs on the goroutine ranging over the Map, between two results,
// never concurrently with itself or the loop body, so it may draw on a
// terminal or update state the loop uses; it delays the next result by
// its own run time. Submit and TrySubmit refuse the option.
func OnProgress(fn func(Progress)) CallOption {
	return func(c *callConfig) error {
		if fn == nil {
			return errors.New("aplex: OnProgress(nil): need a function")
		}
		c.progress = fn
		c.mapOnly = "OnProgress"
		return nil
	}
}

// mapProgress is a Map's progress state (OnProgress), on the loop's
// goroutine only.
type mapProgress struct {
	fn          func(Progress)
	start, last time.Time
	submitted   int // inputs submitted
	done        int
	failed      int
}

func newMapProgress(fn func(Progress)) *mapProgress {
	if fn == nil {
		return nil
	}
	now := time.Now()
	return &mapProgress{fn: fn, start: now, last: now}
}

// tick reports the progress if the last report is progressEvery old.
func (p *mapProgress) tick() {
	now := time.Now()
	if now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	p.fn(Progress{Done: p.done, Failed: p.failed, InFlight: p.submitted - p.done - p.failed, Elapsed: now.Sub(p.start)})
}

// final makes the last report.
func (p *mapProgress) final() {
	p.fn(Progress{Done: p.done, Failed: p.failed, Elapsed: time.Since(p.start)})
}
