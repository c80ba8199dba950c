package engine

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/aplex-go/aplex/internal/wire"
)

// RegisterErrorType registers the error type E so that errors.As keeps
// working across the process boundary, with the value's exported fields:
// when a work in a worker process returns an error whose chain (Unwrap,
// also %w) holds a value of type E, the error its future gets in the caller
// answers errors.As for E with a copy of that value. On goroutine executors
// the future has the work's own error, so the outcome is the same on every
// kind of executor:
//
//	var _ = aplex.RegisterErrorType[*QuotaError]()
//
//	var qe *QuotaError
//	if errors.As(err, &qe) { … qe.Limit … }
//
// E is a pointer type (*QuotaError) or a value type (QuotaError), as the
// work returns it; errors.As targets the same type. The value crosses as
// CBOR, like a work's result: exported fields only, so a field the type
// cannot send (an unexported one, or one holding an interface such as an
// Err error field) must be tagged `cbor:"-"`, or the type must marshal
// itself (MarshalCBOR or MarshalBinary). Errors.Is of a wrapped sentinel
// does not need the field: register the sentinel with RegisterError.
//
// Types are matched by their Go package path and name, so a worker binary
// must register the same types: register from package-level variables,
// like RegisterError. Registering a type twice does nothing. It returns an
// error, and registers nothing, for a type that cannot cross (an interface
// type, an unexported field, a field holding an interface); check it in a
// test, as the blank identifier in the example discards it.
func RegisterErrorType[E error]() error {
	return errorTypes.add(reflect.TypeFor[E]())
}

// Bounds of the typed values one error carries: the error must still fit
// in a result message, and its message and Type matter more than a big
// field; values past the bounds are left out, and errors.As fails for them.
const (
	maxErrorTypes     = 8
	maxErrorTypeBytes = 16 << 10 // all of an error's typed values together
	maxErrorChain     = 64       // errors visited in one chain
)

var errorTypes = &errorTypeRegistry{byType: map[reflect.Type]string{}, byName: map[string]reflect.Type{}}

// errorTypeRegistry maps registered error types to their wire names and back.
type errorTypeRegistry struct {
	mu     sync.RWMutex
	byType map[reflect.Type]string
	byName map[string]reflect.Type
}

// errorTypeName is a type's name on the wire: its package path and name,
// with a * per pointer, e.g. "*example.com/quota.QuotaError".
func errorTypeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return "*" + errorTypeName(t.Elem())
	}
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

func (r *errorTypeRegistry) add(t reflect.Type) error {
	if t.Kind() == reflect.Interface {
		return fmt.Errorf("aplex: RegisterErrorType[%v]: need a concrete error type, not an interface", t)
	}
	if err := checkErrorType(t); err != nil {
		return fmt.Errorf("aplex: RegisterErrorType[%v]: %w", t, err)
	}
	name := errorTypeName(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byType[t] = name
	r.byName[name] = t
	return nil
}

// checkErrorType reports why values of t cannot cross processes: the
// zero value must encode (wire's type check refuses unexported fields) and
// decode back, and no exported field may hold an interface other than any,
// which CBOR can encode but never decode into.
func checkErrorType(t reflect.Type) error {
	base := t
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() == reflect.Struct && !selfMarshaling(base) {
		for i := range base.NumField() {
			f := base.Field(i)
			if !f.IsExported() || f.Tag.Get("cbor") == "-" || (f.Tag.Get("cbor") == "" && f.Tag.Get("json") == "-") {
				continue
			}
			if f.Type.Kind() == reflect.Interface && f.Type.NumMethod() > 0 {
				return fmt.Errorf("field %s holds an interface (%v), which cannot be decoded; tag it `cbor:\"-\"` (a wrapped sentinel still matches errors.Is when registered with RegisterError)", f.Name, f.Type)
			}
		}
	}
	b, err := wire.MarshalValue(reflect.New(base).Interface())
	if err != nil {
		return err
	}
	return wire.UnmarshalValue(b, reflect.New(base).Interface())
}

// selfMarshaling reports whether t encodes itself (see wire.MarshalValue),
// so its fields do not matter.
func selfMarshaling(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(reflect.TypeFor[interface{ MarshalCBOR() ([]byte, error) }]()) ||
		pt.Implements(reflect.TypeFor[interface{ MarshalBinary() ([]byte, error) }]())
}

// encode returns the registered values in err's chain, walked as errors.As
// walks it (Unwrap() error and Unwrap() []error, depth first), the first
// value of each type only: the one errors.As would find.
func (r *errorTypeRegistry) encode(err error) []wire.TypedValue {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.byType) == 0 {
		return nil
	}
	var (
		out     []wire.TypedValue
		size    int
		visited int
	)
	var walk func(err error)
	walk = func(err error) {
		for err != nil && visited < maxErrorChain && len(out) < maxErrorTypes {
			visited++
			if name, ok := r.byType[reflect.TypeOf(err)]; ok && !hasType(out, name) {
				// A value that fails to encode (an unexported field behind
				// an interface) or is too big stays behind: the caller still
				// gets the message and Type.
				if b, encErr := wire.MarshalValue(err); encErr == nil && size+len(b) <= maxErrorTypeBytes {
					out = append(out, wire.TypedValue{Name: name, Value: b})
					size += len(b)
				}
			}
			switch u := err.(type) {
			case interface{ Unwrap() error }:
				err = u.Unwrap()
			case interface{ Unwrap() []error }:
				for _, e := range u.Unwrap() {
					walk(e)
				}
				return
			default:
				return
			}
		}
	}
	walk(err)
	return out
}

func hasType(tvs []wire.TypedValue, name string) bool {
	for _, tv := range tvs {
		if tv.Name == name {
			return true
		}
	}
	return false
}

// decode rebuilds the values of the types this binary registered, as fresh
// values of the registered type (a *T or a T); others are skipped, as are
// values that do not decode (the two binaries disagree on the type).
func (r *errorTypeRegistry) decode(tvs []wire.TypedValue) []error {
	if len(tvs) == 0 {
		return nil
	}
	var errs []error
	for _, tv := range tvs {
		r.mu.RLock()
		t := r.byName[tv.Name]
		r.mu.RUnlock()
		if t == nil {
			continue
		}
		base := t
		if t.Kind() == reflect.Pointer {
			base = t.Elem()
		}
		p := reflect.New(base)
		if wire.UnmarshalValue(tv.Value, p.Interface()) != nil {
			continue
		}
		v := p
		if t.Kind() != reflect.Pointer {
			v = p.Elem()
		}
		if e, ok := v.Interface().(error); ok {
			errs = append(errs, e)
		}
	}
	return errs
}

// asTyped is the As method of errors from other processes: target matches
// a value of a registered error type the original's chain held.
func asTyped(typed []error, target any) bool {
	for _, e := range typed {
		if errors.As(e, target) {
			return true
		}
	}
	return false
}
