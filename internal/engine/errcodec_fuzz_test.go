package engine

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
)

// fuzzTypedError is an error type registered for FuzzDecodeError: its
// exported fields cross the wire, so a worker's bytes decode into it.
type fuzzTypedError struct {
	Code   int
	Detail string
}

func (e *fuzzTypedError) Error() string {
	return fmt.Sprintf("fuzz typed error %d: %s", e.Code, e.Detail)
}

// errFuzzSentinel is a sentinel registered for FuzzDecodeError.
var errFuzzSentinel = RegisterError(errors.New("engine: fuzz sentinel"))

var errFuzzTypeRegistered = RegisterErrorType[*fuzzTypedError]()

// FuzzDecodeError feeds decodeError, the executor's side of the error
// codec, whatever a worker could put in a result's error: any code,
// message, stack, sentinel key and typed value. The error it returns is
// never nil, prints, and answers errors.Is and errors.As without a panic;
// a registered type is rebuilt only from a value that decodes into it, and
// one the worker encoded comes back with its fields (the round trip).
func FuzzDecodeError(f *testing.F) {
	if errFuzzTypeRegistered != nil {
		f.Fatal(errFuzzTypeRegistered)
	}
	// Seeds: what encodeError makes of real errors, and a few malformed ones.
	for _, err := range []error{
		errors.New("plain"),
		fmt.Errorf("wrapped: %w", io.EOF),
		fmt.Errorf("wrapped: %w", errFuzzSentinel),
		&fuzzTypedError{Code: 7, Detail: "quota"},
		fmt.Errorf("both: %w, %w", &fuzzTypedError{Code: -1}, errFuzzSentinel),
		&PanicError{Value: "boom", Stack: "goroutine 1"},
	} {
		e := encodeError(err)
		key, name, value := "", "", []byte(nil)
		if len(e.Sentinels) > 0 {
			key = e.Sentinels[0]
		}
		if len(e.Types) > 0 {
			name, value = e.Types[0].Name, e.Types[0].Value
		}
		f.Add(byte(e.Code), e.Message, e.Stack, e.Panic, key, name, value, int64(7), "quota")
	}
	typeName := errorTypeName(reflect.TypeFor[*fuzzTypedError]())
	f.Add(byte(0), "m", "", false, "", typeName, []byte{0xff, 0x00}, int64(0), "")
	f.Add(byte(wire.CodeShutdown), "shutting down", "", false, "", "", []byte(nil), int64(0), "")
	f.Add(byte(250), "a newer peer's code", "", true, "no such key", "*no/such.Type", []byte{0xa0}, int64(1), "x")

	f.Fuzz(func(t *testing.T, code byte, msg, stack string, panicked bool, key, name string, value []byte, c int64, detail string) {
		e := &wire.Error{Code: wire.ErrCode(code), Message: msg, Stack: stack, Panic: panicked}
		if key != "" {
			e.Sentinels = []string{key}
		}
		if name != "" {
			e.Types = []wire.TypedValue{{Name: name, Value: value}}
		}
		err := decodeError(e)
		if err == nil {
			t.Fatalf("decodeError(%+v) = nil", e)
		}
		_ = err.Error()
		_ = errors.Is(err, io.EOF)
		_ = errors.Is(err, errFuzzSentinel)
		var typed *fuzzTypedError
		if errors.As(err, &typed) {
			if name != typeName {
				t.Fatalf("errors.As found a %T in an error whose typed value is named %q", typed, name)
			}
			var want fuzzTypedError
			if wire.UnmarshalValue(value, &want) != nil {
				t.Fatalf("errors.As found %+v, from a value that does not decode", typed)
			}
		}

		// The round trip: a registered type's fields, and a registered
		// sentinel in its chain, survive encodeError then decodeError.
		orig := fmt.Errorf("%s: %w, %w", msg, &fuzzTypedError{Code: int(c), Detail: detail}, errFuzzSentinel)
		back := decodeError(encodeError(orig))
		var got *fuzzTypedError
		if !errors.As(back, &got) || got.Code != int(c) || got.Detail != detail {
			t.Fatalf("round trip of %+v: errors.As gives %+v (%v)", orig, got, back)
		}
		if !errors.Is(back, errFuzzSentinel) {
			t.Fatalf("round trip of %v: errors.Is(errFuzzSentinel) is false", orig)
		}
	})
}
