package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/aplex-go/aplex/internal/wire"
)

// Propagator carries values of the caller's ctx (a trace context, a request
// id) to works that run in other processes, through a header of string
// pairs sent with each work: the shape of OpenTelemetry's
// TextMapPropagator. Register one with RegisterPropagator.
//
// A work on a goroutine worker needs none: its ctx carries the caller's
// values as they are.
type Propagator interface {
	// Inject writes the values of ctx it carries into carrier. It runs in
	// the caller's goroutine, in Submit and once per Map.
	Inject(ctx context.Context, carrier map[string]string)
	// Extract returns ctx with the values carrier holds. It runs in the
	// worker process, on the work's ctx, before the work starts, and only
	// for works whose header is not empty. carrier must not be modified.
	Extract(ctx context.Context, carrier map[string]string) context.Context
}

// RegisterPropagator adds p to the propagators of this binary. At Submit
// and Map on a process or cluster executor, every registered propagator,
// in registration order, injects the caller's ctx values into the work's
// header; in the worker, each extracts them into the work's ctx in the
// same order. The header counts in the message size: one above 64 KiB, or
// that with the argument exceeds the executor's message limit, makes Submit
// (or Map) fail with ErrTooLarge. A propagator that panics makes Submit (or
// Map) fail, or in a worker the work, with the panic.
//
// Register from a package-level variable or init, so that the re-executed
// worker binary registers it too:
//
//	var _ = aplex.RegisterPropagator(myPropagator{})
//
// Registering nil is an error. With no propagator registered, Submit pays
// nothing for the feature.
func RegisterPropagator(p Propagator) error {
	if p == nil {
		return errors.New("aplex: RegisterPropagator(nil): need a Propagator")
	}
	if v := reflect.ValueOf(p); v.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Errorf("aplex: RegisterPropagator: a nil %T", p)
	}
	propagators.mu.Lock()
	defer propagators.mu.Unlock()
	list := []Propagator{p}
	if old := propagators.list.Load(); old != nil {
		list = append(append(make([]Propagator, 0, len(*old)+1), *old...), p)
	}
	propagators.list.Store(&list)
	return nil
}

// propagators is the registered list, copied on write: Submit reads it with
// one atomic load, and nil means none.
var propagators struct {
	mu   sync.Mutex // serialises registrations
	list atomic.Pointer[[]Propagator]
}

// carriers recycles the maps Inject writes into: when every propagator
// injects nothing (a ctx without a trace), the map goes back here and
// Submit allocates nothing.
var carriers = sync.Pool{New: func() any { return map[string]string{} }}

// header returns the header carrying ctx's values for a remote work, nil
// when no propagator is registered or none injects anything. Its error is
// a panic of a propagator or a header above wire.MaxHeader.
func header(ctx context.Context) (map[string]string, error) {
	list := propagators.list.Load()
	if list == nil {
		return nil, nil
	}
	h := carriers.Get().(map[string]string)
	if err := inject(ctx, *list, h); err != nil {
		clear(h)
		carriers.Put(h)
		return nil, err
	}
	if len(h) == 0 {
		carriers.Put(h)
		return nil, nil
	}
	if n := wire.HeaderBound(h); n > wire.MaxHeader {
		return nil, fmt.Errorf("%w: the header of propagated ctx values is %d bytes; the limit is %d", ErrTooLarge, n, wire.MaxHeader)
	}
	return h, nil
}

// inject runs every propagator's Inject, turning a panic into an error.
func inject(ctx context.Context, list []Propagator, h map[string]string) (err error) {
	var p Propagator
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("aplex: propagator %T panicked in Inject: %v", p, v)
		}
	}()
	for _, p = range list {
		p.Inject(ctx, h)
	}
	return nil
}

// extractHeader is the worker side (host.Config.Extract): every
// propagator's Extract, in registration order. The host turns a panic into
// the job's error.
func extractHeader(ctx context.Context, h map[string]string) context.Context {
	list := propagators.list.Load()
	if list == nil {
		return ctx
	}
	for _, p := range *list {
		if next := p.Extract(ctx, h); next != nil {
			ctx = next
		}
	}
	return ctx
}
