package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// frames returns the frames of msgs concatenated, as a Writer writes them.
func frames(t *testing.T, msgs ...Msg) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, 0)
	for _, m := range msgs {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	var msgs []Msg
	for _, s := range samples() {
		msgs = append(msgs, s.msg)
	}
	stream := frames(t, msgs...)

	// Check the header of the first frame by hand.
	first, _ := Marshal(msgs[0])
	if n := binary.BigEndian.Uint32(stream); int(n) != len(first) || !bytes.Equal(stream[HeaderSize:HeaderSize+n], first) {
		t.Fatalf("first frame = %x, want length %d then %x", stream[:HeaderSize+len(first)], len(first), first)
	}

	readers := map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one-byte": iotest.OneByteReader(bytes.NewReader(stream)),
		"half":     iotest.HalfReader(bytes.NewReader(stream)),
	}
	for name, src := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewReader(src, 0)
			for i, want := range msgs {
				got, err := r.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, normalize(want)) {
					t.Fatalf("frame %d: got %+v, want %+v", i, got, want)
				}
			}
			for range 2 { // EOF is sticky
				if m, err := r.Next(); err != io.EOF || m != nil {
					t.Fatalf("after last frame: %v, %v; want nil, io.EOF", m, err)
				}
			}
		})
	}
}

func TestWriterLimit(t *testing.T) {
	m := &Bye{WorkerID: strings.Repeat("w", 100)}
	size, _ := msgSize(m) // 2 + 1 + 100

	var out bytes.Buffer
	w := NewWriter(&out, size)
	if err := w.Write(m); err != nil {
		t.Fatalf("frame of exactly the limit: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != HeaderSize+size {
		t.Fatalf("len = %d, want %d", out.Len(), HeaderSize+size)
	}

	out.Reset()
	w = NewWriter(&out, size-1)
	err := w.Write(m)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(size)) || !strings.Contains(err.Error(), fmt.Sprint(size-1)) {
		t.Fatalf("error %q does not give size %d and limit %d", err, size, size-1)
	}
	if err := w.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("%d bytes written for a rejected frame (%v)", out.Len(), err)
	}
}

func TestWriterDefaultLimit(t *testing.T) {
	big := &Run{Jobs: []Job{{Args: [][]byte{make([]byte, DefaultMaxFrame)}}}}
	for _, max := range []int{0, -1} {
		if err := NewWriter(io.Discard, max).Write(big); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("max %d: err = %v, want ErrFrameTooLarge against DefaultMaxFrame", max, err)
		}
	}
}

func TestReaderTooLarge(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, 101)
	stream := append(hdr, make([]byte, 101)...)
	r := NewReader(bytes.NewReader(stream), 100)
	for i := range 2 { // the error is sticky: the stream is out of sync
		_, err := r.Next()
		if !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), "101") || !strings.Contains(err.Error(), "100") {
			t.Fatalf("call %d: err = %v, want ErrFrameTooLarge naming 101 and 100", i, err)
		}
	}

	// A header announcing 4 GiB must not allocate it.
	r = NewReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := r.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("rejecting a 4 GiB header allocated %d bytes", n)
	}
}

func TestReaderEOF(t *testing.T) {
	full := frames(t, &Bye{WorkerID: "w"})
	tests := []struct {
		name  string
		in    []byte
		msgs  int
		final error
	}{
		{"empty", nil, 0, io.EOF},
		{"header-1", full[:1], 0, io.ErrUnexpectedEOF},
		{"header-3", full[:3], 0, io.ErrUnexpectedEOF},
		{"header-only", full[:HeaderSize], 0, io.ErrUnexpectedEOF},
		{"body-partial", full[:len(full)-1], 0, io.ErrUnexpectedEOF},
		{"one-frame", full, 1, io.EOF},
		{"frame-then-partial-header", append(append([]byte(nil), full...), 0, 0), 1, io.ErrUnexpectedEOF},
		{"frame-then-partial-body", append(append([]byte(nil), full...), full[:len(full)-2]...), 1, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.in), 0)
			for i := range tt.msgs {
				if _, err := r.Next(); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			for range 2 {
				if m, err := r.Next(); err != tt.final || m != nil {
					t.Fatalf("got %v, %v; want nil, %v", m, err, tt.final)
				}
			}
		})
	}
}

// TestReaderBadFrameRecovers checks that a frame that arrives whole but
// does not decode is skipped: the stream stays in sync.
func TestReaderBadFrameRecovers(t *testing.T) {
	good := frames(t, &Shutdown{Graceful: true})
	var stream []byte
	stream = append(stream, 0, 0, 0, 0)                            // empty frame
	stream = append(stream, 0, 0, 0, 3, Version, 99, 0)            // unknown kind
	stream = append(stream, 0, 0, 0, 3, Version+1, 1, 0)           // other version
	stream = append(stream, 0, 0, 0, 3, Version, byte(KindBye), 5) // truncated body
	stream = append(stream, good...)
	r := NewReader(bytes.NewReader(stream), 0)
	for i, want := range []error{ErrMalformed, ErrMalformed, ErrVersion, ErrMalformed} {
		if _, err := r.Next(); !errors.Is(err, want) {
			t.Fatalf("bad frame %d: err = %v, want %v", i, err, want)
		}
	}
	m, err := r.Next()
	if err != nil || !reflect.DeepEqual(m, &Shutdown{Graceful: true}) {
		t.Fatalf("good frame: %v, %v", m, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

func TestReaderIOErrorSticky(t *testing.T) {
	boom := errors.New("boom")
	src := io.MultiReader(bytes.NewReader(frames(t, &Bye{})), iotest.ErrReader(boom))
	r := NewReader(src, 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.Next(); err != boom {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	}
}

func TestReaderPayloadsStayValid(t *testing.T) {
	stream := frames(t,
		&Results{Results: []Result{{ID: 1, Items: []Outcome{{Value: []byte("first")}}}}},
		&Results{Results: []Result{{ID: 2, Items: []Outcome{{Value: []byte("second")}}}}},
	)
	r := NewReader(bytes.NewReader(stream), 0)
	m1, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if v := m1.(*Results).Results[0].Items[0].Value; string(v) != "first" {
		t.Fatalf("first payload overwritten: %q", v)
	}
}

func TestWriterTooLarge(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, 64)
	big := &Bye{WorkerID: strings.Repeat("x", 100)}
	if err := w.Write(big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written for a rejected frame", out.Len())
	}
	// The writer is still usable.
	if err := w.Write(&Bye{WorkerID: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(nil); err == nil {
		t.Fatal("Write(nil) succeeded")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := NewReader(&out, 64).Next()
	if err != nil || !reflect.DeepEqual(m, &Bye{WorkerID: "ok"}) {
		t.Fatalf("got %v, %v", m, err)
	}
}

func TestWriterError(t *testing.T) {
	boom := errors.New("boom")
	w := NewWriter(errWriter{boom}, 0)
	// Big enough to bypass the buffer and hit the writer at once.
	big := &Run{Jobs: []Job{{Args: [][]byte{make([]byte, 2*bufSize)}}}}
	if err := w.Write(big); err != boom {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if err := w.Write(&Bye{}); err != boom {
		t.Fatalf("err after failure = %v, want %v", err, boom)
	}
	if err := w.Flush(); err != boom {
		t.Fatalf("Flush err = %v, want %v", err, boom)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriterAllocs(t *testing.T) {
	w := NewWriter(io.Discard, 0)
	m := &Run{Jobs: []Job{{ID: 1, Name: "sum", Args: [][]byte{[]byte("0123456789abcdef")}}}}
	if n := testing.AllocsPerRun(1000, func() { _ = w.Write(m) }); n != 0 {
		t.Fatalf("Write of a small frame: %v allocations, want 0", n)
	}
}

// TestPipe streams many frames of varied sizes, some larger than the
// buffer, through an io.Pipe from a concurrent writer, flushing at
// irregular points.
func TestPipe(t *testing.T) {
	const n = 3000
	msg := func(i int) Msg {
		switch i % 4 {
		case 0:
			return &Run{ReplyTo: "r", Jobs: []Job{{ID: uint64(i), Name: "w", Args: [][]byte{bytes.Repeat([]byte{byte(i)}, i%300)}}}}
		case 1:
			return &Results{WorkerID: "w", Results: []Result{{ID: uint64(i), Items: []Outcome{{Value: []byte{byte(i)}}, {Err: &Error{Message: fmt.Sprint(i)}}}}}}
		case 2:
			if i%200 == 2 {
				// Larger than the 64 KiB buffer: takes the scratch path.
				return &Run{Jobs: []Job{{ID: uint64(i), Args: [][]byte{bytes.Repeat([]byte{7}, 100_000+i)}}}}
			}
			return &Cancel{IDs: []uint64{uint64(i)}}
		default:
			return &Heartbeat{WorkerID: "w", Load: i}
		}
	}

	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	var werr error
	go func() {
		defer wg.Done()
		w := NewWriter(pw, 0)
		for i := range n {
			if werr = w.Write(msg(i)); werr != nil {
				break
			}
			if i%37 == 0 {
				if werr = w.Flush(); werr != nil {
					break
				}
			}
		}
		if werr == nil {
			werr = w.Flush()
		}
		pw.CloseWithError(werr) // nil: the reader sees io.EOF
	}()
	defer func() {
		pr.Close() // unblock the writer if the reader stops early
		wg.Wait()
		if werr != nil {
			t.Errorf("writer: %v", werr)
		}
	}()

	r := NewReader(pr, 0)
	for i := range n {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want := normalize(msg(i)); !reflect.DeepEqual(got, want) {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after %d frames: %v, want io.EOF", n, err)
	}
}

// deadlineReader yields its parts in turn; a nil part is a read deadline
// error, as an *os.File returns when a deadline passes mid-stream.
type deadlineReader struct{ parts [][]byte }

func (d *deadlineReader) Read(p []byte) (int, error) {
	if len(d.parts) == 0 {
		return 0, io.EOF
	}
	if d.parts[0] == nil {
		d.parts = d.parts[1:]
		return 0, fmt.Errorf("read fd: %w", os.ErrDeadlineExceeded)
	}
	n := copy(p, d.parts[0])
	if d.parts[0] = d.parts[0][n:]; len(d.parts[0]) == 0 {
		d.parts = d.parts[1:]
	}
	return n, nil
}

// TestReaderResumesAfterReadDeadline cuts a stream of two frames at every
// byte with a read deadline: Next reports the deadline, not stickily, and
// the frames then arrive whole and in order.
func TestReaderResumesAfterReadDeadline(t *testing.T) {
	first, second := &Bye{WorkerID: "first"}, &Shutdown{Graceful: true}
	stream := frames(t, first, second)
	for cut := 1; cut < len(stream); cut++ {
		src := &deadlineReader{parts: [][]byte{slices.Clone(stream[:cut]), nil, slices.Clone(stream[cut:])}}
		r := NewReader(src, 0)
		var got []Msg
		deadlines := 0
		for {
			m, err := r.Next()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				deadlines++
				continue
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			got = append(got, m)
		}
		if deadlines != 1 || !reflect.DeepEqual(got, []Msg{first, second}) {
			t.Fatalf("cut %d: %d deadlines, frames %v; want 1 and both", cut, deadlines, got)
		}
	}
}
