// Package obstest holds a recording aplex.Observer for the tests of the
// root and cluster packages.
package obstest

import (
	"context"
	"slices"
	"sync"

	"github.com/aplex-go/aplex"
)

// Key is the ctx key under which a Recorder's queued ctx carries Value.
type Key struct{}

// Recorder is an aplex.Observer that keeps every event. When Value is set,
// the ctx it returns for a queued work carries it under Key, so that tests
// can see the observer's ctx reach the work.
type Recorder struct {
	Value any

	mu      sync.Mutex
	works   []aplex.WorkEvent
	workers []aplex.WorkerEvent
	changed chan struct{} // closed and replaced at each event
}

// ObserveWork records e (aplex.Observer).
func (r *Recorder) ObserveWork(ctx context.Context, e aplex.WorkEvent) context.Context {
	r.mu.Lock()
	r.works = append(r.works, e)
	r.notifyLocked()
	r.mu.Unlock()
	if e.Kind == aplex.WorkQueued && r.Value != nil {
		return context.WithValue(ctx, Key{}, r.Value)
	}
	return ctx
}

// ObserveWorker records e (aplex.Observer).
func (r *Recorder) ObserveWorker(e aplex.WorkerEvent) {
	r.mu.Lock()
	r.workers = append(r.workers, e)
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *Recorder) notifyLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Works returns the work events so far, optionally of one kind only.
func (r *Recorder) Works(kind aplex.WorkEventKind) []aplex.WorkEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind == 0 {
		return slices.Clone(r.works)
	}
	var out []aplex.WorkEvent
	for _, e := range r.works {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// WorksOf returns the work events so far of one kind and one work name.
func (r *Recorder) WorksOf(kind aplex.WorkEventKind, work string) []aplex.WorkEvent {
	var out []aplex.WorkEvent
	for _, e := range r.Works(kind) {
		if e.Work == work {
			out = append(out, e)
		}
	}
	return out
}

// Workers returns the worker events so far, optionally of one kind only.
func (r *Recorder) Workers(kind aplex.WorkerEventKind) []aplex.WorkerEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind == 0 {
		return slices.Clone(r.workers)
	}
	var out []aplex.WorkerEvent
	for _, e := range r.workers {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Await waits until cond holds of the recorder or ctx ends (false): a
// handshake on the events, no polling.
func (r *Recorder) Await(ctx context.Context, cond func(*Recorder) bool) bool {
	for {
		r.mu.Lock()
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		if cond(r) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}
