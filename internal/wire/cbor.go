package wire

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// Payload codec. Work arguments and results cross the boundary as CBOR,
// encoded and decoded with the modes below. They are built once because
// building a mode validates options and allocates, and modes are safe for
// concurrent use.

var (
	encMode = mustEncMode()
	// decMode decodes a map under an interface as map[string]any;
	// decModeAnyKeys as map[any]any, for a value whose maps under an
	// interface do not all have string keys (UnmarshalValue).
	decMode        = mustDecMode(reflect.TypeFor[map[string]any]())
	decModeAnyKeys = mustDecMode(nil)
)

func mustEncMode() cbor.UserBufferEncMode {
	m, err := cbor.EncOptions{
		Time:    cbor.TimeRFC3339Nano,
		TimeTag: cbor.EncTagRequired,
	}.UserBufferEncMode()
	if err != nil {
		panic("wire: building CBOR encode mode: " + err.Error())
	}
	return m
}

// Decoding limits. Payloads come from other processes or machines, so the
// decoder must not let a small input demand deep recursion or huge
// containers. The library already checks declared lengths against the
// actual input before allocating; these limits additionally cap the
// structure. They are well above what reasonable arguments need.
const (
	cborMaxArrayElements = 1 << 20
	cborMaxMapPairs      = 1 << 20
	cborMaxNestedLevels  = 64
)

// A text string decodes to its bytes whether or not they are valid UTF-8
// (UTF8DecodeInvalid): a Go string holds any bytes (a Linux file name need
// not be UTF-8), the encoder writes them as they are, and a goroutine
// executor hands them to the work unchanged, so a process or cluster
// worker must too (TestStringsThatAreNotUTF8CrossTheWire). A map under an
// interface decodes as mapType (nil: map[any]any).
func mustDecMode(mapType reflect.Type) cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxArrayElements: cborMaxArrayElements,
		MaxMapPairs:      cborMaxMapPairs,
		MaxNestedLevels:  cborMaxNestedLevels,
		UTF8:             cbor.UTF8DecodeInvalid,
		DefaultMapType:   mapType,
	}.DecMode()
	if err != nil {
		panic("wire: building CBOR decode mode: " + err.Error())
	}
	return m
}

// MarshalValue encodes a work argument or result as CBOR.
//
// A time.Time is encoded as tag 0 (RFC 3339 text) with nanosecond precision
// and the value's UTC offset. That is the only time encoding of the CBOR
// library that keeps the instant exact (the numeric ones round to
// microseconds or seconds), and the tag makes it decode as time.Time even
// into an interface. The *time.Location is not kept: UTC stays UTC, but a
// named zone (time.Local included) comes back as a fixed zone with the same
// offset, so compare decoded times with Time.Equal. Years outside 0000–9999
// cannot be encoded. The zero time encodes as CBOR null and decodes back to
// the zero time.
//
// A value nesting deeper than the decoder accepts (cborMaxNestedLevels
// arrays and maps), which includes every cyclic value, is refused with an
// error wrapping ErrNesting instead of crashing the encoder. A type's own
// MarshalCBOR or MarshalBinary that panics is an error too (codecPanic).
func MarshalValue(v any) (b []byte, err error) {
	if err := checkNesting(v); err != nil {
		return nil, err
	}
	defer codecPanic("encoding", v, &err)
	return encMode.Marshal(v)
}

// codecPanic, deferred around the library's encoding or decoding of v,
// turns a panic into *err: it comes from a type's own methods
// (MarshalCBOR, UnmarshalCBOR, their Binary kin), whose code runs in
// whatever goroutine encodes or decodes, a Submit's or the executor's
// reading a worker's replies, and one bad value must fail its own work,
// not end the program.
func codecPanic(what string, v any, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("wire: %s %T panicked: %v", what, v, p)
	}
}

// EncodeValue encodes *p as MarshalValue encodes the value: the common
// scalar types directly (AppendScalar), the others through the library.
func EncodeValue[T any](p *T) ([]byte, error) {
	if b, ok := AppendScalar(nil, p); ok {
		return b, nil
	}
	return MarshalValue(valueRef(p))
}

// EncodeValueTo is EncodeValue appending to buf: a Map chunk's arguments
// share one buffer instead of an allocation each. On error, buf may hold
// part of the encoding.
func EncodeValueTo[T any](buf *bytes.Buffer, p *T) error {
	if b, ok := AppendScalar(buf.AvailableBuffer(), p); ok {
		buf.Write(b) // b is buf's own spare room: Write only advances
		return nil
	}
	return marshalValueTo(buf, valueRef(p))
}

// DecodeValue decodes data into *p as UnmarshalValue does: the common
// scalar types directly (DecodeScalar), the others through the library.
func DecodeValue[T any](data []byte, p *T) error {
	if DecodeScalar(data, p) {
		return nil
	}
	return UnmarshalValue(data, p)
}

// valueRef returns what to hand the library to encode *p, for the values
// AppendScalar does not write: p itself for the common types that still
// reach it (a NaN or infinite float64, []int, []string: checkNesting
// passes them without a lookup), which CBOR encodes exactly as the value
// it points to, so that the value is not copied into an interface of its
// own (an allocation); *p for the others, whose encoding may depend on the
// method set of the value rather than of its pointer.
func valueRef[T any](p *T) any {
	switch any(p).(type) {
	case *float64, *[]int, *[]string:
		return p
	}
	return *p
}

// marshalValueTo encodes v as MarshalValue does, appending the bytes to
// buf. On error, buf may hold part of v's encoding.
func marshalValueTo(buf *bytes.Buffer, v any) (err error) {
	if err := checkNesting(v); err != nil {
		return err
	}
	defer codecPanic("encoding", v, &err)
	return encMode.MarshalToBuffer(v, buf)
}

// UnmarshalValue decodes CBOR data into v, which must be a non-nil pointer.
// The input is treated as untrusted: nesting, array and map sizes are
// limited, and data must hold exactly one CBOR item (trailing bytes are an
// error). Decoded byte slices are copies and do not alias data.
//
// A map under an interface (an any field, a map[string]any's values)
// decodes as map[string]any, as encoding/json would give it and as the
// sender most likely had it (a JSON-like payload; map[any]any, the CBOR
// library's default, is not even something encoding/json can marshal).
// If one such map has a key that is not a string, the whole value decodes
// again, into a zeroed *v, with every map under an interface as
// map[any]any. A number under an interface decodes as uint64 (positive),
// int64 (negative) or float64: the sender's Go type does not cross.
//
// A type's own UnmarshalCBOR or UnmarshalBinary that panics is an error
// (codecPanic): the bytes come from another process.
func UnmarshalValue(data []byte, v any) (err error) {
	defer codecPanic("decoding into", v, &err)
	err = decMode.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var te *cbor.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	// A non-string key in a map under an interface is a type error; so is
	// a mismatch the second mode meets too, and then reports.
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return err
	}
	rv.Elem().SetZero()
	return decModeAnyKeys.Unmarshal(data, v)
}
