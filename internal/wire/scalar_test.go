package wire

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
)

// scalarCases holds values of every type the scalar fast paths know,
// around each boundary of the head's length.
var scalarCases = []any{
	0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
	-1, -24, -25, -256, -257, -65536, -65537, -math.MaxUint32 - 1, -math.MaxUint32 - 2, math.MinInt64,
	int64(0), int64(-1), int64(1 << 40), int64(math.MinInt64), int64(math.MaxInt64),
	uint64(0), uint64(23), uint64(24), uint64(1 << 40), uint64(math.MaxUint64),
	false, true,
	0.0, math.Copysign(0, -1), 1.5, -2.25, math.MaxFloat64, math.SmallestNonzeroFloat64, 1e300,
	"", "a", strings.Repeat("x", 23), strings.Repeat("x", 24), strings.Repeat("x", 256), "héllo, 世界", "caf\xe9 \xff",
	[]byte(nil), []byte{}, []byte{0}, bytes.Repeat([]byte{7}, 24), bytes.Repeat([]byte{9}, 70000),
}

// TestScalarMatchesLibrary: for each case, AppendScalar writes the bytes
// MarshalValue writes, DecodeScalar reads them back to the value, and
// UnmarshalValue agrees.
func TestScalarMatchesLibrary(t *testing.T) {
	for _, v := range scalarCases {
		switch v := v.(type) {
		case int:
			checkScalarCase(t, v)
		case int64:
			checkScalarCase(t, v)
		case uint64:
			checkScalarCase(t, v)
		case bool:
			checkScalarCase(t, v)
		case float64:
			checkScalarCase(t, v)
		case string:
			checkScalarCase(t, v)
		case []byte:
			checkScalarCase(t, v)
		default:
			t.Fatalf("no check for %T", v)
		}
	}
}

func checkScalarCase[T any](t *testing.T, v T) {
	t.Helper()
	want, err := MarshalValue(v)
	if err != nil {
		t.Fatalf("MarshalValue(%#v): %v", v, err)
	}
	if got, ok := AppendScalar([]byte("prefix"), &v); !ok || !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Errorf("AppendScalar(%T %.40v) = %x, %v; MarshalValue wrote %x", v, v, got, ok, want)
	}
	var lib T
	if err := UnmarshalValue(want, &lib); err != nil {
		t.Fatalf("UnmarshalValue[%T](%x): %v", v, want, err)
	}
	var fast T
	if !DecodeScalar(want, &fast) {
		// CBOR null, a nil []byte's encoding, is not a byte string: the
		// fast path writes it but leaves reading it to the library.
		if b, ok := any(v).([]byte); !ok || b != nil {
			t.Fatalf("DecodeScalar[%T](%x) refused the library's encoding", v, want)
		}
		fast = v
	}
	if !reflect.DeepEqual(fast, v) || !reflect.DeepEqual(lib, v) {
		t.Errorf("%T %.40v: DecodeScalar read %.40v, UnmarshalValue %.40v", v, v, fast, lib)
	}
	if f, ok := any(v).(float64); ok && math.Signbit(f) != math.Signbit(any(fast).(float64)) {
		t.Errorf("%v: DecodeScalar lost the sign", f)
	}
}

// TestScalarLeavesTheRestToTheLibrary: encodings the fast path does not
// read (another major type, a tag, a non-shortest head, an indefinite
// length, trailing bytes, NaN, an int too large) are
// refused, *p untouched, and types it does not know are never encoded.
func TestScalarLeavesTheRestToTheLibrary(t *testing.T) {
	refuse := []struct {
		name string
		data []byte
		try  func([]byte) (ok, touched bool)
	}{
		{"empty", nil, tryDecode[int]},
		{"text into int", []byte{0x61, 'a'}, tryDecode[int]},
		{"non-shortest int", []byte{0x18, 0x05}, tryDecode[int]},
		{"non-shortest 16-bit", []byte{0x19, 0x00, 0x05}, tryDecode[int64]},
		{"trailing byte", []byte{0x01, 0x00}, tryDecode[int]},
		{"tagged int", []byte{0xc1, 0x01}, tryDecode[int]},
		{"int64 overflow", []byte{0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0}, tryDecode[int64]},
		{"negative into uint64", []byte{0x20}, tryDecode[uint64]},
		{"float into int", []byte{0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, tryDecode[int]},
		{"half float", []byte{0xf9, 0x3c, 0x00}, tryDecode[float64]},
		{"NaN", []byte{0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, tryDecode[float64]},
		{"null into bool", []byte{0xf6}, tryDecode[bool]},
		{"short string", []byte{0x62, 'a'}, tryDecode[string]},
		{"indefinite string", []byte{0x7f, 0x61, 'a', 0xff}, tryDecode[string]},
		{"bytes into string", []byte{0x41, 'a'}, tryDecode[string]},
		{"null into []byte", []byte{0xf6}, tryDecode[[]byte]},
		{"unknown type", []byte{0x01}, tryDecode[int32]},
	}
	for _, c := range refuse {
		if ok, touched := c.try(c.data); ok || touched {
			t.Errorf("%s: DecodeScalar(%x) = %v, wrote *p: %v", c.name, c.data, ok, touched)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if b, ok := AppendScalar(nil, &f); ok {
			t.Errorf("AppendScalar(%v) = %x: the library writes it in half precision", f, b)
		}
	}
	type celsius float64
	c := celsius(1)
	if b, ok := AppendScalar(nil, &c); ok {
		t.Errorf("AppendScalar of a named type = %x: its encoding may have a method", b)
	}
}

// tryDecode runs DecodeScalar into a zero T: did it accept, did it write.
func tryDecode[T any](data []byte) (ok, touched bool) {
	var v, zero T
	ok = DecodeScalar(data, &v)
	return ok, !reflect.DeepEqual(v, zero)
}

// TestScalarAllocations: decoding an int into a local and encoding one
// into a buffer with room allocate nothing.
func TestScalarAllocations(t *testing.T) {
	data := []byte{0x19, 0x12, 0x34}
	buf := make([]byte, 0, 16)
	allocs := testing.AllocsPerRun(100, func() {
		var n int
		if !DecodeScalar(data, &n) || n != 0x1234 {
			t.Fatal("DecodeScalar failed")
		}
		if b, ok := AppendScalar(buf[:0], &n); !ok || !bytes.Equal(b, data) {
			t.Fatal("AppendScalar failed")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

// FuzzDecodeScalar: whatever DecodeScalar accepts, UnmarshalValue decodes
// to the same value, and AppendScalar writes back the same bytes.
func FuzzDecodeScalar(f *testing.F) {
	addEncodedSeeds(f, scalarCases)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScalar[int](t, b)
		checkScalar[int64](t, b)
		checkScalar[uint64](t, b)
		checkScalar[bool](t, b)
		checkScalar[float64](t, b)
		checkScalar[string](t, b)
		checkScalar[[]byte](t, b)
	})
}

func checkScalar[T any](t *testing.T, b []byte) {
	var fast T
	if !DecodeScalar(b, &fast) {
		return
	}
	var lib T
	if err := UnmarshalValue(b, &lib); err != nil {
		t.Fatalf("DecodeScalar[%T](%x) accepted what UnmarshalValue refuses: %v", fast, b, err)
	}
	if !reflect.DeepEqual(fast, lib) {
		t.Fatalf("DecodeScalar[%T](%x) = %v, UnmarshalValue %v", fast, b, fast, lib)
	}
	if again, ok := AppendScalar(nil, &fast); !ok || !bytes.Equal(again, b) {
		t.Fatalf("AppendScalar[%T](%v) = %x, %v; read from %x", fast, fast, again, ok, b)
	}
}
