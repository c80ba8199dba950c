package wire

import (
	"encoding/binary"
	"math"
)

// Scalar fast paths. Most works take and return an int, a string, a []byte
// or the like, and on those the CBOR library spends more than the rest of
// a process child's handling of a job: reflection, a well-formedness pass,
// and the argument and the result each boxed into an interface (one
// allocation each). DecodeScalar and AppendScalar read and write the plain
// encodings of these types directly. They accept only what the library
// would decode to the same value, and write exactly the bytes it writes;
// everything else (another type, a tag, an indefinite length, a
// non-shortest head, a NaN) is left to UnmarshalValue and MarshalValue,
// which stay the definition. TestScalarMatchesLibrary and FuzzDecodeScalar
// hold them to it.

// DecodeScalar decodes data into *p when T is bool, int, int64, uint64,
// float64, string or []byte and data holds one item of its plain
// encoding, reporting true. Otherwise it leaves *p alone and reports
// false: decode with UnmarshalValue, which then yields the value or the
// error. p does not escape, so a caller's variable stays on its stack.
func DecodeScalar[T any](data []byte, p *T) bool {
	switch q := any(p).(type) {
	case *int:
		n, ok := decodeInt(data)
		if ok && n >= math.MinInt && n <= math.MaxInt {
			*q = int(n)
			return true
		}
	case *int64:
		n, ok := decodeInt(data)
		if ok {
			*q = n
			return true
		}
	case *uint64:
		if u, n, ok := decodeHead(data, 0); ok && n == len(data) {
			*q = u
			return true
		}
	case *bool:
		if len(data) == 1 && (data[0] == cborFalse || data[0] == cborTrue) {
			*q = data[0] == cborTrue
			return true
		}
	case *float64:
		if len(data) == 9 && data[0] == cborFloat64 {
			f := math.Float64frombits(binary.BigEndian.Uint64(data[1:]))
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				*q = f
				return true
			}
		}
	case *string:
		if s, ok := decodeBytes(data, majorText); ok { // any bytes, as the library's mode (mustDecMode)
			*q = string(s)
			return true
		}
	case *[]byte:
		if s, ok := decodeBytes(data, majorBytes); ok {
			*q = append(make([]byte, 0, len(s)), s...) // a copy, as the library's
			return true
		}
	}
	return false
}

// AppendScalar appends the encoding MarshalValue gives *p to b when T is
// one of DecodeScalar's types, reporting true; otherwise it returns b and
// false. p does not escape.
func AppendScalar[T any](b []byte, p *T) ([]byte, bool) {
	switch q := any(p).(type) {
	case *int:
		return appendInt(b, int64(*q)), true
	case *int64:
		return appendInt(b, *q), true
	case *uint64:
		return appendHead(b, majorUint, *q), true
	case *bool:
		if *q {
			return append(b, cborTrue), true
		}
		return append(b, cborFalse), true
	case *float64:
		// The library writes NaN and ±Inf in half precision.
		if math.IsNaN(*q) || math.IsInf(*q, 0) {
			return b, false
		}
		return binary.BigEndian.AppendUint64(append(b, cborFloat64), math.Float64bits(*q)), true
	case *string:
		return append(appendHead(b, majorText, uint64(len(*q))), *q...), true
	case *[]byte:
		if *q == nil {
			return append(b, cborNull), true
		}
		return append(appendHead(b, majorBytes, uint64(len(*q))), *q...), true
	}
	return b, false
}

// CBOR major types and the simple values used here (RFC 8949, 3.1, 3.3).
const (
	majorUint  = 0
	majorNeg   = 1
	majorBytes = 2
	majorText  = 3

	cborFalse   = 0xf4
	cborTrue    = 0xf5
	cborNull    = 0xf6
	cborFloat64 = 0xfb
)

// decodeHead reads an item head of the given major type at the start of
// data: its argument and the head's length. Only the shortest form of the
// argument is accepted (the library writes no other).
func decodeHead(data []byte, major byte) (arg uint64, n int, ok bool) {
	if len(data) == 0 || data[0]>>5 != major {
		return 0, 0, false
	}
	switch info := data[0] & 0x1f; {
	case info < 24:
		return uint64(info), 1, true
	case info == 24 && len(data) >= 2 && data[1] >= 24:
		return uint64(data[1]), 2, true
	case info == 25 && len(data) >= 3:
		u := uint64(binary.BigEndian.Uint16(data[1:]))
		return u, 3, u > math.MaxUint8
	case info == 26 && len(data) >= 5:
		u := uint64(binary.BigEndian.Uint32(data[1:]))
		return u, 5, u > math.MaxUint16
	case info == 27 && len(data) >= 9:
		u := binary.BigEndian.Uint64(data[1:])
		return u, 9, u > math.MaxUint32
	}
	return 0, 0, false
}

// decodeInt reads data as one integer item (major type 0 or 1) that fits
// an int64.
func decodeInt(data []byte) (int64, bool) {
	if len(data) == 0 {
		return 0, false
	}
	major := data[0] >> 5
	if major != majorUint && major != majorNeg {
		return 0, false
	}
	u, n, ok := decodeHead(data, major)
	if !ok || n != len(data) || u > math.MaxInt64 {
		return 0, false
	}
	if major == majorNeg {
		return -1 - int64(u), true
	}
	return int64(u), true
}

// decodeBytes reads data as one definite-length byte or text string item,
// returning its content (aliasing data).
func decodeBytes(data []byte, major byte) ([]byte, bool) {
	u, n, ok := decodeHead(data, major)
	if !ok || u != uint64(len(data)-n) {
		return nil, false
	}
	return data[n:], true
}

// appendInt appends the shortest encoding of the integer v.
func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendHead(b, majorNeg, uint64(-1-v))
	}
	return appendHead(b, majorUint, uint64(v))
}

// appendHead appends the shortest head of the given major type and
// argument.
func appendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(b, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), arg)
}
