package wire

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"
)

// smallSamples returns the encodings of the samples small enough to be
// useful fuzz seeds; the large ones only slow the fuzzer down.
func smallSamples(tb testing.TB) [][]byte {
	var out [][]byte
	for _, s := range samples() {
		b, err := Marshal(s.msg)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b) <= 4096 {
			out = append(out, b)
		}
	}
	return out
}

// FuzzUnmarshal checks that Unmarshal never panics and that whatever it
// accepts re-encodes to an equivalent message: decoding the re-encoding
// gives a DeepEqual message, and the re-encoding is never longer than the
// input (the encoder writes minimal varints, the decoder accepts padded
// ones).
func FuzzUnmarshal(f *testing.F) {
	for _, b := range smallSamples(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Add([]byte{Version, byte(KindCancel), 0, 0x80, 0x80, 0x80, 0x80, 0x10})
	// Runs of one job each, as replyTo resend slots count | id name
	// timeout limit ahead header args. A job whose header repeats a key,
	// and one with a header and an expired timeout (-1): the fields of
	// protocol version 2.
	f.Add([]byte{Version, byte(KindRun), 0, 0, 0, 1, 1, 0, 0, 0, 0, 2, 1, 'k', 0, 1, 'k', 1, 'x', 0})
	f.Add([]byte{Version, byte(KindRun), 0, 0, 0, 1, 7, 1, 'w', 1, 0, 0, 1, 2, 'i', 'd', 1, '7', 1, 1, 0xf6})
	// A resent job (Run.Resend).
	f.Add([]byte{Version, byte(KindRun), 1, 'r', 1, 0, 1, 3, 1, 'w', 0, 0, 0, 0, 1, 1, 0xf6})
	// Version 4: a job held for a slot with a limit (Slots 2, Limit 1s,
	// Ahead), one with a negative limit, one with ahead 2; Started with a
	// worker id and two ids, and with a count its input cannot hold.
	f.Add([]byte{Version, byte(KindRun), 0, 0, 2, 1, 8, 1, 'w', 0, 0x80, 0xa8, 0xd6, 0xb9, 0x07, 1, 0, 1, 1, 0xf6})
	f.Add([]byte{Version, byte(KindRun), 0, 0, 0, 1, 9, 0, 0, 1, 0, 0, 0})
	f.Add([]byte{Version, byte(KindRun), 0, 0, 0, 1, 9, 0, 0, 0, 2, 0, 0})
	f.Add([]byte{Version, byte(KindStarted), 1, 'w', 2, 5, 0x80, 0x01})
	f.Add([]byte{Version, byte(KindStarted), 0, 0x80, 0x80, 0x10, 1})
	// Version 5: a Heartbeat of a killed worker, and one whose killed
	// byte is not a bool. Version 6: a killed worker's Heartbeat naming
	// the last job it received from two executors, and one naming an
	// executor twice.
	f.Add([]byte{Version, byte(KindHeartbeat), 1, 'w', 2, 4, 1, 1, 0})
	f.Add([]byte{Version, byte(KindHeartbeat), 1, 'w', 2, 4, 1, 3, 0})
	f.Add([]byte{Version, byte(KindHeartbeat), 1, 'w', 2, 4, 1, 1, 2, 1, 'a', 5, 1, 'b', 0x80, 0x01})
	f.Add([]byte{Version, byte(KindHeartbeat), 1, 'w', 2, 4, 1, 1, 2, 1, 'a', 5, 1, 'a', 6})
	// A Bye naming the last job it received from two executors, and one
	// naming an executor twice.
	f.Add([]byte{Version, byte(KindBye), 1, 'w', 2, 1, 'a', 5, 1, 'b', 0x80, 0x01})
	f.Add([]byte{Version, byte(KindBye), 1, 'w', 2, 1, 'a', 5, 1, 'a', 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if m != nil {
				t.Fatalf("non-nil message %v with error %v", m, err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrVersion", err)
			}
			return
		}
		if m.Kind() != Kind(b[1]) {
			t.Fatalf("kind %v from a %v frame", m.Kind(), Kind(b[1]))
		}
		re, err := Marshal(m)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", m, err)
		}
		if n, _ := msgSize(m); n != len(re) {
			t.Fatalf("msgSize %d, encoded %d", n, len(re))
		}
		if len(re) > len(b) {
			t.Fatalf("re-encoding is longer (%d) than the input (%d)", len(re), len(b))
		}
		m2, err := Unmarshal(re)
		if err != nil {
			t.Fatalf("decoding the re-encoding: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-decoded message differs\n1st: %+v\n2nd: %+v", m, m2)
		}
	})
}

// FuzzReader feeds arbitrary bytes to a Reader with a small limit. It must
// end with io.EOF, io.ErrUnexpectedEOF or ErrFrameTooLarge after at most
// one call per header's worth of input, never panic, and never return a
// message larger than the limit.
func FuzzReader(f *testing.F) {
	const max = 512
	var all []byte
	for _, b := range smallSamples(f) {
		if len(b) > max {
			continue
		}
		fr := append(binaryLen(len(b)), b...)
		f.Add(fr)
		all = append(all, fr...)
	}
	f.Add(all)
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), max)
		for calls := 1; ; calls++ {
			if calls > len(b)/HeaderSize+1 {
				t.Fatalf("%d calls for %d bytes", calls, len(b))
			}
			m, err := r.Next()
			switch {
			case err == nil:
				re, err := Marshal(m)
				if err != nil {
					t.Fatalf("re-encoding %+v: %v", m, err)
				}
				if len(re) > max {
					t.Fatalf("message of %d bytes through a %d-byte limit", len(re), max)
				}
			case err == io.EOF, err == io.ErrUnexpectedEOF, errors.Is(err, ErrFrameTooLarge):
				// Terminal and sticky.
				if _, err2 := r.Next(); err2 != err {
					t.Fatalf("terminal error %v, then %v", err, err2)
				}
				return
			case errors.Is(err, ErrMalformed), errors.Is(err, ErrVersion):
				// The frame was skipped; carry on.
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}

func binaryLen(n int) []byte {
	return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// addEncodedSeeds adds each value's encoding to f's seed corpus.
func addEncodedSeeds(f *testing.F, values []any) {
	for _, v := range values {
		b, err := MarshalValue(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzUnmarshalValue decodes arbitrary bytes into typical payload types:
// it must not panic, and what decodes must encode again without panicking.
func FuzzUnmarshalValue(f *testing.F) {
	seeds := []any{
		payload{Name: "n", Count: 3, Tags: []string{"a"}, Blob: []byte{1}, When: time.Unix(1, 2).UTC(), Nested: &payload{}},
		map[string]int{"a": 1},
		[]int64{1, -1, 1 << 40},
		"string",
		[]byte{1, 2, 3},
		time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)),
		(*payload)(nil),
		map[string]any{"x": []any{1.5, "y", nil, true}},
		map[string]any{"ids": map[int]string{1: "a"}, "s": map[string]any{"k": "v"}}, // the second decode
	}
	addEncodedSeeds(f, seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		dsts := []any{
			new(payload), new(*payload), new(map[string]int), new([]int64),
			new(string), new([]byte), new(time.Time), new(any),
		}
		for _, dst := range dsts {
			if err := UnmarshalValue(b, dst); err == nil {
				// Encoding may fail (e.g. a time outside years 0–9999 read
				// from an integer), but it must not panic.
				_, _ = MarshalValue(reflect.ValueOf(dst).Elem().Interface())
			}
		}
	})
}

// FuzzReaderDeadlines cuts a stream with read deadlines at positions the
// fuzzer picks: Next must yield the same frames and errors as without the
// cuts, each deadline reported at most once and never sticky.
func FuzzReaderDeadlines(f *testing.F) {
	const max = 512
	for _, b := range smallSamples(f) {
		if len(b) <= max {
			f.Add(append(binaryLen(len(b)), b...), []byte{1, 3, 7})
		}
	}
	f.Add([]byte{0, 0, 0, 2, Version, 99, 0, 0}, []byte{0, 2, 5})
	f.Fuzz(func(t *testing.T, b, cuts []byte) {
		if len(cuts) > 64 {
			cuts = cuts[:64]
		}
		want, deadlines := readOutcomes(t, NewReader(bytes.NewReader(b), max))
		if deadlines != 0 {
			t.Fatal("a deadline without one")
		}
		var parts [][]byte
		pos := 0
		for _, c := range cuts {
			n := int(c) % (len(b) - pos + 1)
			parts = append(parts, append([]byte{}, b[pos:pos+n]...), nil)
			pos += n
		}
		parts = append(parts, append([]byte{}, b[pos:]...))
		got, deadlines := readOutcomes(t, NewReader(&deadlineReader{parts: parts}, max))
		if deadlines > len(cuts) { // fewer: the stream ended before a cut
			t.Fatalf("%d deadlines reported, %d set", deadlines, len(cuts))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("with deadlines:\n%q\nwithout:\n%q", got, want)
		}
	})
}

// readOutcomes reads r to its terminal error and returns each frame's
// encoding or error, and how many read deadlines it met on the way.
func readOutcomes(t *testing.T, r *Reader) (outcomes []string, deadlines int) {
	for range 10_000 {
		m, err := r.Next()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			deadlines++
		case err == nil:
			re, err := Marshal(m)
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", m, err)
			}
			outcomes = append(outcomes, string(re))
		case err == io.EOF, err == io.ErrUnexpectedEOF, errors.Is(err, ErrFrameTooLarge):
			return append(outcomes, err.Error()), deadlines
		default:
			outcomes = append(outcomes, err.Error())
		}
	}
	t.Fatal("no end after 10,000 calls")
	return nil, 0
}
