package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type payload struct {
	Name    string
	Count   int
	Tags    []string
	Blob    []byte
	When    time.Time
	Nested  *payload
	Ratio   float64
	Enabled bool
}

// roundTrip encodes in and decodes into a new value of out's type.
func roundTrip[T any](t *testing.T, in T) T {
	t.Helper()
	b, err := MarshalValue(in)
	if err != nil {
		t.Fatalf("MarshalValue(%#v): %v", in, err)
	}
	var out T
	if err := UnmarshalValue(b, &out); err != nil {
		t.Fatalf("UnmarshalValue(%x) into %T: %v", b, out, err)
	}
	return out
}

func TestValueRoundTrip(t *testing.T) {
	when := time.Date(2030, 6, 7, 8, 9, 10, 123456789, time.UTC)
	t.Run("struct", func(t *testing.T) {
		in := payload{
			Name: "n", Count: -3, Tags: []string{"a", "b"}, Blob: []byte{0, 1, 2},
			When: when, Nested: &payload{Name: "inner"}, Ratio: 0.1, Enabled: true,
		}
		if got := roundTrip(t, in); !reflect.DeepEqual(got, in) {
			t.Fatalf("got %#v, want %#v", got, in)
		}
	})
	t.Run("map", func(t *testing.T) {
		in := map[string]int{"a": 1, "b": -2, "": 0}
		if got := roundTrip(t, in); !reflect.DeepEqual(got, in) {
			t.Fatalf("got %v, want %v", got, in)
		}
	})
	t.Run("int64s", func(t *testing.T) {
		in := []int64{0, -1, 1 << 62, -1 << 63}
		if got := roundTrip(t, in); !reflect.DeepEqual(got, in) {
			t.Fatalf("got %v, want %v", got, in)
		}
	})
	t.Run("string", func(t *testing.T) {
		in := "héllo, wörld"
		if got := roundTrip(t, in); got != in {
			t.Fatalf("got %q, want %q", got, in)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		in := []byte{0xde, 0xad, 0xbe, 0xef}
		if got := roundTrip(t, in); !bytes.Equal(got, in) {
			t.Fatalf("got %x, want %x", got, in)
		}
	})
	t.Run("nil-pointer", func(t *testing.T) {
		var in *payload
		b, err := MarshalValue(in)
		if err != nil {
			t.Fatal(err)
		}
		out := &payload{Name: "stale"}
		if err := UnmarshalValue(b, &out); err != nil {
			t.Fatal(err)
		}
		if out != nil {
			t.Fatalf("got %#v, want nil", out)
		}
	})
	t.Run("pointer", func(t *testing.T) {
		in := &payload{Name: "p", When: when}
		if got := roundTrip(t, in); !reflect.DeepEqual(got, in) {
			t.Fatalf("got %#v, want %#v", got, in)
		}
	})
}

func TestValueTime(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		// sameLoc: the decoded value is DeepEqual, not just Equal.
		sameLoc bool
	}{
		{"zero", time.Time{}, true},
		{"utc-nanos", time.Date(2030, 6, 7, 8, 9, 10, 123456789, time.UTC), true},
		{"utc-1ns", time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC), true},
		{"before-epoch", time.Date(1900, 2, 3, 4, 5, 6, 7, time.UTC), true},
		{"fixed-zone", time.Date(2030, 6, 7, 8, 9, 10, 5, time.FixedZone("", -7*3600)), false},
		{"local", time.Date(2030, 6, 7, 8, 9, 10, 999999999, time.Local), false},
		{"monotonic", time.Now(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := roundTrip(t, tt.in)
			if !got.Equal(tt.in) {
				t.Fatalf("got %v, want the instant %v", got, tt.in)
			}
			if tt.sameLoc && !reflect.DeepEqual(got, tt.in) {
				t.Fatalf("got %#v, want identical %#v", got, tt.in)
			}
			_, off1 := got.Zone()
			_, off2 := tt.in.Zone()
			if off1 != off2 {
				t.Fatalf("offset %d, want %d", off1, off2)
			}
		})
	}

	// Into an interface, a time still decodes as time.Time thanks to the
	// tag.
	in := time.Date(2030, 1, 1, 0, 0, 0, 42, time.UTC)
	b, err := MarshalValue(in)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := UnmarshalValue(b, &out); err != nil {
		t.Fatal(err)
	}
	if got, ok := out.(time.Time); !ok || !got.Equal(in) {
		t.Fatalf("into any: got %#v, want time %v", out, in)
	}
}

func TestValueDecodeErrors(t *testing.T) {
	deep := bytes.Repeat([]byte{0x81}, cborMaxNestedLevels+1) // [[[[...
	deep = append(deep, 0x00)
	// A well-formed array one element over the limit.
	long := binary.BigEndian.AppendUint32([]byte{0x9a}, cborMaxArrayElements+1)
	long = append(long, make([]byte, cborMaxArrayElements+1)...)
	tests := []struct {
		name string
		in   []byte
		dst  any
		want string
	}{
		{"empty", nil, new(int), "EOF"},
		{"trailing", []byte{0x01, 0x02}, new(int), "extraneous"},
		{"truncated", []byte{0x63, 'a'}, new(string), "EOF"},
		{"type", []byte{0x63, 'a', 'b', 'c'}, new(int), "cannot unmarshal"},
		{"too-deep", deep, new(any), "exceeded max nested level"},
		// An array header claiming 2^32 elements in a handful of bytes.
		{"huge-array", []byte{0x9b, 0, 0, 0, 1, 0, 0, 0, 0}, new([]int), ""},
		{"array-limit", long, new([]int), "exceeded max number of elements"},
		{"huge-map", []byte{0xbb, 0, 0, 0, 1, 0, 0, 0, 0}, new(map[string]int), ""},
		{"not-pointer", []byte{0x01}, 0, ""},
		{"nil-dst", []byte{0x01}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := UnmarshalValue(tt.in, tt.dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestValueBytesDoNotAlias(t *testing.T) {
	b, err := MarshalValue([]byte("abc"))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	if err := UnmarshalValue(b, &out); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if string(out) != "abc" {
		t.Fatalf("decoded bytes changed with the input: %q", out)
	}
}

// TestMarshalValueToAppends checks that values appended to one buffer
// encode as MarshalValue encodes each alone, and that its checks apply.
func TestMarshalValueToAppends(t *testing.T) {
	var buf bytes.Buffer
	values := []any{1, "two", []int{3}, map[string]int{"four": 4}, nil}
	var want []byte
	for _, v := range values {
		if err := marshalValueTo(&buf, v); err != nil {
			t.Fatal(err)
		}
		b, err := MarshalValue(v)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("appended %x, want %x", buf.Bytes(), want)
	}
	type hidden struct{ x int }
	if err := marshalValueTo(&buf, hidden{1}); !errors.Is(err, ErrUnexportedField) {
		t.Fatalf("a value with an unexported field: %v, want ErrUnexportedField", err)
	}
}

// ptrMarshaler encodes itself only through its pointer: EncodeValue must
// not hand its pointer to the encoder (valueRef), or the value would be
// encoded differently from the one the caller passed.
type ptrMarshaler struct{ N int }

func (p *ptrMarshaler) MarshalCBOR() ([]byte, error) { return MarshalValue("by pointer") }

// TestEncodeValueMatchesMarshalValue: EncodeValue and EncodeValueTo write
// what MarshalValue writes for the value, whichever way they take (the
// scalar fast path, the library through the value's pointer, the library
// through a copy), appending after what the buffer holds; a pointer-receiver
// marshaler is encoded as the value, not its pointer (valueRef hands the
// library a copy); DecodeValue reads back as UnmarshalValue.
func TestEncodeValueMatchesMarshalValue(t *testing.T) {
	type plain struct {
		A int
		B string
	}
	i, i64, u64, f, s, b := 70000, int64(-5), uint64(1<<40), 2.5, "text", true
	nan, inf := math.NaN(), math.Inf(-1)
	bs, is, ss := []byte{1, 2}, []int{3, 4}, []string{"a"}
	var nilBytes []byte
	st, pm := plain{1, "b"}, ptrMarshaler{N: 1}
	for _, c := range []struct {
		name string
		enc  func(*bytes.Buffer) ([]byte, error, error)
		val  any
	}{
		{"int", encodeBoth(&i), i},
		{"int64", encodeBoth(&i64), i64},
		{"uint64", encodeBoth(&u64), u64},
		{"float64", encodeBoth(&f), f},
		{"NaN", encodeBoth(&nan), nan},
		{"-Inf", encodeBoth(&inf), inf},
		{"string", encodeBoth(&s), s},
		{"bool", encodeBoth(&b), b},
		{"[]byte", encodeBoth(&bs), bs},
		{"nil []byte", encodeBoth(&nilBytes), nilBytes},
		{"[]int", encodeBoth(&is), is},
		{"[]string", encodeBoth(&ss), ss},
		{"struct", encodeBoth(&st), st},
		{"pointer-receiver marshaler", encodeBoth(&pm), pm},
	} {
		var buf bytes.Buffer
		buf.WriteString("head")
		enc, err1, err2 := c.enc(&buf)
		want, err := MarshalValue(c.val)
		if err != nil || err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v, %v", c.name, err, err1, err2)
		}
		if !bytes.Equal(enc, want) || !bytes.Equal(buf.Bytes(), append([]byte("head"), want...)) {
			t.Errorf("%s: EncodeValue %x, EncodeValueTo %x; MarshalValue %x", c.name, enc, buf.Bytes(), want)
		}
	}
	if _, ok := valueRef(&pm).(ptrMarshaler); !ok {
		t.Errorf("valueRef handed the encoder a %T for a type whose pointer marshals itself", valueRef(&pm))
	}
	if _, ok := valueRef(&is).(*[]int); !ok {
		t.Errorf("valueRef copied a []int (%T) that the library reads through its pointer", valueRef(&is))
	}
	enc, err := EncodeValue(&st)
	if err != nil {
		t.Fatal(err)
	}
	var back plain
	if err := DecodeValue(enc, &back); err != nil || back != st {
		t.Errorf("DecodeValue of a struct: %+v, %v", back, err)
	}
	var x int
	if err := DecodeValue([]byte{0x61, 'a'}, &x); err == nil || x != 0 {
		t.Errorf("DecodeValue of text into an int: %d, %v; want the library's error", x, err)
	}
}

func encodeBoth[T any](p *T) func(*bytes.Buffer) ([]byte, error, error) {
	return func(buf *bytes.Buffer) ([]byte, error, error) {
		b, err1 := EncodeValue(p)
		err2 := EncodeValueTo(buf, p)
		return b, err1, err2
	}
}

// TestStringsThatAreNotUTF8CrossTheWire: a Go string holds any bytes (a
// Linux file name need not be UTF-8), and a goroutine executor hands such
// a string to its work as it is; the decoder refused one as CBOR text, so
// the same Submit failed with ErrEncoding on a process or cluster worker.
// Every string the encoder writes decodes back to the same bytes: alone
// (the scalar fast path and the library), in a struct, a slice, a map key
// and an interface.
func TestStringsThatAreNotUTF8CrossTheWire(t *testing.T) {
	bad := "caf\xe9/\xff\xfe.txt" // Latin-1 and stray bytes
	if s := roundTrip(t, bad); s != bad {
		t.Errorf("string: got %q, want %q", s, bad)
	}
	var viaDecode string
	b, err := EncodeValue(&bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeValue(b, &viaDecode); err != nil || viaDecode != bad {
		t.Errorf("DecodeValue: %q, %v; want %q", viaDecode, err, bad)
	}
	if p := roundTrip(t, payload{Name: bad, Tags: []string{bad}}); p.Name != bad || len(p.Tags) != 1 || p.Tags[0] != bad {
		t.Errorf("struct: got %+v", p)
	}
	if m := roundTrip(t, map[string]int{bad: 1}); m[bad] != 1 {
		t.Errorf("map key: got %v", m)
	}
	if v := roundTrip[any](t, bad); v != bad {
		t.Errorf("interface: got %#v", v)
	}
}

// TestMapsUnderAnInterfaceKeepStringKeys: a map[string]any payload (what
// encoding/json gives, a webhook's body) reaches a goroutine worker as it
// is, but a process or cluster worker got its nested maps as
// map[interface{}]interface{}, which encoding/json cannot even marshal. A
// map under an interface decodes as map[string]any when its keys are
// strings; a value holding a map with other keys still decodes (as
// map[any]any, all of it), rather than failing.
func TestMapsUnderAnInterfaceKeepStringKeys(t *testing.T) {
	in := map[string]any{
		"user": map[string]any{"name": "ada", "tags": []any{"x", map[string]any{"k": "v"}}},
	}
	out := roundTrip(t, in)
	user, ok := out["user"].(map[string]any)
	if !ok {
		t.Fatalf("nested map: got %T, want map[string]any", out["user"])
	}
	tags, _ := user["tags"].([]any)
	if len(tags) != 2 {
		t.Fatalf("tags: got %#v", user["tags"])
	}
	if _, ok := tags[1].(map[string]any); !ok {
		t.Errorf("map in a slice: got %T, want map[string]any", tags[1])
	}
	if v, ok := roundTrip[any](t, in).(map[string]any); !ok || v["user"] == nil {
		t.Errorf("into an any: got %#v", v)
	}

	// Keys that are not strings: today's map[any]any, no error.
	mixed := map[string]any{"byID": map[int]string{1: "one"}, "name": map[string]any{"a": "b"}}
	got := roundTrip(t, mixed)
	if byID, ok := got["byID"].(map[any]any); !ok || byID[uint64(1)] != "one" {
		t.Errorf("int keys: got %#v", got["byID"])
	}
}

// panickyValue's CBOR methods panic, as a user type's may.
type panickyValue struct{ N int }

func (panickyValue) MarshalCBOR() ([]byte, error) { panic("marshal boom") }
func (*panickyValue) UnmarshalCBOR([]byte) error  { panic("unmarshal boom") }

// TestAPanickingCodecMethodIsAnError: a type's own MarshalCBOR or
// UnmarshalCBOR that panics made the codec panic in whatever goroutine
// ran it: a Submit's, or the executor's reading a worker's replies, which
// ended the program for one bad result. Both are errors naming the panic.
func TestAPanickingCodecMethodIsAnError(t *testing.T) {
	if _, err := MarshalValue(panickyValue{}); err == nil || !strings.Contains(err.Error(), "marshal boom") {
		t.Errorf("MarshalValue: %v; want an error naming the panic", err)
	}
	var buf bytes.Buffer
	if err := EncodeValueTo(&buf, &panickyValue{}); err == nil || !strings.Contains(err.Error(), "marshal boom") {
		t.Errorf("EncodeValueTo: %v; want an error naming the panic", err)
	}
	var v panickyValue
	if err := UnmarshalValue([]byte{0x01}, &v); err == nil || !strings.Contains(err.Error(), "unmarshal boom") {
		t.Errorf("UnmarshalValue: %v; want an error naming the panic", err)
	}
	if err := DecodeValue([]byte{0x01}, &v); err == nil || !strings.Contains(err.Error(), "unmarshal boom") {
		t.Errorf("DecodeValue: %v; want an error naming the panic", err)
	}
}
