package engine

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
)

// TestEncodeArgsSharesOneBuffer checks a chunk's arguments: each encodes
// as it would alone, each slice ends at its own end (appending to one
// cannot overwrite the next), and 100 ints cost a handful of allocations,
// not one or two each.
func TestEncodeArgsSharesOneBuffer(t *testing.T) {
	c := &core{maxMsg: 1 << 20}
	args := make([]int, 100)
	for i := range args {
		args[i] = i * 1000
	}
	enc, err := encodeArgs(c, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range enc {
		want, err := wire.MarshalValue(args[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("argument %d encoded as %x, alone as %x", i, b, want)
		}
		if cap(b) != len(b) {
			t.Fatalf("argument %d: capacity %d beyond its length %d", i, cap(b), len(b))
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := encodeArgs(c, args, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 6 {
		t.Errorf("encoding a chunk of 100 ints took %.0f allocations", allocs)
	}
}

// TestEncodeArgsChecksEachSize checks that the size rule holds per
// argument in a shared buffer, with and without the header of propagated
// values, and that an encoding error names the argument's type.
func TestEncodeArgsChecksEachSize(t *testing.T) {
	c := &core{maxMsg: 64}
	small, big := strings.Repeat("s", 10), strings.Repeat("b", 70)
	if _, err := encodeArgs(c, []string{small, small, small, small, small, small, small}, nil); err != nil {
		t.Fatalf("arguments each under the limit, together over it: %v", err)
	}
	if _, err := encodeArgs(c, []string{small, big}, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an argument over the limit: %v, want ErrTooLarge", err)
	}
	h := map[string]string{"k": strings.Repeat("v", 40)}
	if _, err := encodeArgs(c, []string{small, strings.Repeat("m", 30)}, h); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "header") {
		t.Fatalf("an argument over the limit with the header: %v", err)
	}
	type bad struct{ C chan int }
	_, err := encodeArgs(c, []bad{{}}, nil)
	if !errors.Is(err, ErrEncoding) || !strings.Contains(err.Error(), "engine.bad") {
		t.Fatalf("an argument that cannot be encoded: %v", err)
	}
}

// TestDecodeOutcomeIntoAllocatesNothing checks that a result decodes in
// place: an int result costs no allocation, and a value that does not
// decode leaves the zero value and an ErrEncoding.
func TestDecodeOutcomeIntoAllocatesNothing(t *testing.T) {
	b, err := wire.MarshalValue(123456)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]int, 1)
	allocs := testing.AllocsPerRun(50, func() {
		if err := decodeOutcomeInto(wire.Outcome{Value: b}, &vals[0]); err != nil {
			t.Fatal(err)
		}
	})
	if vals[0] != 123456 || allocs != 0 {
		t.Fatalf("decoded %d with %.0f allocations, want 123456 with none", vals[0], allocs)
	}
	s, err := wire.MarshalValue("not an int")
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeOutcomeInto(wire.Outcome{Value: s}, &vals[0]); !errors.Is(err, ErrEncoding) || vals[0] != 0 {
		t.Fatalf("a string into an int: %v, value %d", err, vals[0])
	}
}

// TestRemoteHandlerScalarsOnTheStack checks a worker's handler of an int
// work: it answers what the library would encode, allocating only the
// result's bytes; a struct work still decodes and encodes through the
// library, and an argument that does not decode is an ErrEncoding.
func TestRemoteHandlerScalarsOnTheStack(t *testing.T) {
	double := remoteHandler(func(_ context.Context, x int) (int, error) { return 2 * x, nil })
	arg, err := wire.MarshalValue(70000)
	if err != nil {
		t.Fatal(err)
	}
	want, err := wire.MarshalValue(140000)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	allocs := testing.AllocsPerRun(50, func() {
		if got, err = double(context.Background(), arg); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got, want) || allocs > 1 {
		t.Fatalf("answered %x with %.0f allocations, want %x with 1 (its bytes)", got, allocs, want)
	}
	if _, err := double(context.Background(), []byte{0x61, 'a'}); !errors.Is(err, ErrEncoding) {
		t.Fatalf("a string argument for an int work: %v, want ErrEncoding", err)
	}

	type point struct{ X, Y int }
	swap := remoteHandler(func(_ context.Context, p point) (point, error) { return point{p.Y, p.X}, nil })
	arg, err = wire.MarshalValue(point{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if want, err = wire.MarshalValue(point{2, 1}); err != nil {
		t.Fatal(err)
	}
	if got, err := swap(context.Background(), arg); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("a struct work answered %x, %v; want %x", got, err, want)
	}
}

// TestRemoteChunkCarriesItsJob: a Map chunk made for remote workers
// carries its job (and a lone argument's slice) in its own allocation, as
// Submit's call does; a chunk for goroutine workers carries none.
func TestRemoteChunkCarriesItsJob(t *testing.T) {
	w := Fn(func(_ context.Context, x int) (int, error) { return x, nil })
	var ch *chunk[int, int]
	allocs := testing.AllocsPerRun(50, func() { ch = newChunk(w, 1, 1, true) })
	if allocs != 1 || ch.t.rjob() == nil {
		t.Fatalf("a remote chunk of one: %.0f allocations, job %p; want 1 with its job", allocs, ch.t.rjob())
	}
	if local := newChunk(w, 1, 1, false); local.t.rjob() != nil {
		t.Fatal("a chunk for goroutine workers carries a remote job")
	}
}
