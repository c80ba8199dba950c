package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"sync"

	"github.com/aplex-go/aplex/internal/wire"
)

// Work is a function an executor can run: func(ctx, A) (R, error). Make one
// with Register (named: runs on every kind of executor) or Fn (unnamed:
// in-process executors only). A *Work is immutable and safe to share.
type Work[A, R any] struct {
	name string
	fn   func(context.Context, A) (R, error)
	err  error // a registration problem, reported by Submit and Map
}

// Name returns the registered name ("" for an Fn work).
func (w *Work[A, R]) Name() string { return w.name }

// describe names the work: its registered name, or for an Fn work its
// function's name.
func (w *Work[A, R]) describe() string {
	if w.name != "" {
		return w.name
	}
	if f := runtime.FuncForPC(reflect.ValueOf(w.fn).Pointer()); f != nil {
		return f.Name()
	}
	return "an aplex.Fn work"
}

// check reports why w cannot run on ex.
func (w *Work[A, R]) check(ex *Executor) error {
	if w == nil {
		return errors.New("aplex: nil work")
	}
	if w.err != nil {
		return w.err
	}
	if ex == nil {
		return errors.New("aplex: nil executor")
	}
	if ex.c == nil {
		return errZeroExecutor
	}
	if ex.c.be.wire() && w.name == "" {
		return fmt.Errorf("%w: aplex.Fn works run in-process only; use aplex.Register to run on a %s executor", ErrNotRegistered, ex.c.cfg.kind)
	}
	return nil
}

// Fn wraps a function as an unnamed work for in-process (thread) executors.
func Fn[A, R any](fn func(context.Context, A) (R, error)) *Work[A, R] {
	w := &Work[A, R]{fn: fn}
	if fn == nil {
		w.err = errors.New("aplex: Fn(nil): need a function")
	}
	return w
}

// Register names a work so that every kind of executor can run it: a worker
// process finds it by name. Register from package-level variables or init,
// so a re-executed worker binary registers the same works:
//
//	var Fetch = aplex.Register("fetch", fetch)
//
// Arguments and results cross process boundaries as CBOR: use types that
// round-trip (exported struct fields, maps, slices, strings, numbers,
// time.Time). A bad registration (empty or duplicate name, nil function)
// is reported by every Submit or Map of the work.
func Register[A, R any](name string, fn func(context.Context, A) (R, error)) *Work[A, R] {
	w := &Work[A, R]{name: name, fn: fn}
	switch {
	case name == "":
		w.err = errors.New("aplex: Register: empty work name")
	case fn == nil:
		w.err = fmt.Errorf("aplex: Register(%q, nil): need a function", name)
	default:
		if err := registry.add(name, remoteHandler(fn)); err != nil {
			w.err = err
		}
	}
	return w
}

// handler runs one encoded item in a worker process: it decodes the
// argument into A, runs the work and encodes R.
type handler func(ctx context.Context, arg []byte) ([]byte, error)

// codecError marks argument and result encoding failures so that the worker
// reports them with their own codes.
type codecError struct {
	what string // "argument" or "result"
	err  error
}

func (e *codecError) Error() string {
	return fmt.Sprintf("aplex: cannot %s: %v", e.what, e.err)
}
func (e *codecError) Unwrap() []error { return []error{ErrEncoding, e.err} }

func remoteHandler[A, R any](fn func(context.Context, A) (R, error)) handler {
	return func(ctx context.Context, arg []byte) ([]byte, error) {
		// The common types take the scalar fast paths with a and r on
		// this goroutine's stack; the others go through the library, and
		// only they pay for a copy of a on the heap and r in an interface.
		var a A
		if !wire.DecodeScalar(arg, &a) {
			p := new(A)
			if err := wire.UnmarshalValue(arg, p); err != nil {
				return nil, &codecError{what: "decode argument", err: err}
			}
			a = *p
		}
		r, err := fn(ctx, a)
		if err != nil {
			return nil, err
		}
		if b, ok := wire.AppendScalar(nil, &r); ok {
			return b, nil
		}
		b, err := wire.MarshalValue(r)
		if err != nil {
			return nil, &codecError{what: "encode result", err: err}
		}
		return b, nil
	}
}

// registry holds the named works of this binary.
var registry = &workRegistry{works: map[string]handler{}}

type workRegistry struct {
	mu    sync.RWMutex
	works map[string]handler
}

func (r *workRegistry) add(name string, h handler) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.works[name]; dup {
		return fmt.Errorf("aplex: Register(%q): name already registered", name)
	}
	r.works[name] = h
	return nil
}

func (r *workRegistry) lookup(name string) (handler, bool) {
	r.mu.RLock()
	h, ok := r.works[name]
	r.mu.RUnlock()
	return h, ok
}

func (r *workRegistry) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.works))
}
