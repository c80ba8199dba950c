package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// FuzzServeConnFrames feeds ServeConn a sequence of frames built from the
// fuzz input — Runs whose ids repeat, Cancels of known and unknown ids,
// graceful and abrupt Shutdowns, frames of arbitrary bytes, oversized and
// truncated frames, messages only a worker may send — and checks the
// serve loop as a state machine:
//
//   - it never panics and always returns (bounded by a ctx);
//   - every job it must have admitted (one in a frame before the first
//     Shutdown or bad frame) gets a result, and no job gets more than one:
//     per id, results ≤ jobs sent with that id;
//   - no result names an id never sent, and its items match a job's;
//   - Hello comes first and nothing follows Bye;
//   - it returns an error for a bad frame it read, and nil for a stream of
//     valid frames.
func FuzzServeConnFrames(f *testing.F) {
	// A Run is 0, a reply-to byte, 1+n%3 jobs of: id, name (index in
	// fuzzNames), deadline (0 past, 1 in the next byte's ms, else none),
	// n%4 arguments of: length, bytes.
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 1, 0, 2, 1, 1, 'h'})                               // one echo
	f.Add([]byte{0, 1, 0, 2, 3, 2, 1, 0, 2, 1, 2})                           // a block, then its cancel
	f.Add([]byte{0, 1, 1, 1, 0, 2, 1, 1, 'a', 1, 3, 2, 1, 0, 3, 0})          // the same id twice, graceful shutdown
	f.Add([]byte{0, 1, 0, 1, 3, 2, 1, 0, 3, 1, 0, 1, 0, 2, 0, 2, 1, 1, 'x'}) // a Run after an abrupt shutdown
	f.Add([]byte{0, 1, 0, 1, 2, 2, 1, 0, 4, 1, 5, 1, 2})                     // a panic, then a frame of another version
	f.Add([]byte{0, 1, 0, 3, 0, 2, 3, 1, 'a', 1, 'b', 1, 'c'})               // a chunk of three
	f.Add([]byte{0, 0, 0, 4, 3, 1, 20, 1, 0, 0, 1, 0, 5, 1, 0, 1, 0})        // a block with a deadline; a fail past its deadline
	f.Add([]byte{0, 1, 0, 1, 5, 2, 2, 0, 0, 0, 1, 0, 2, 6, 2, 1, 0})         // unknown work; badarg
	f.Add([]byte{4, 0, 2, 1, 3, 5})                                          // a frame of arbitrary bytes
	f.Add([]byte{5, 9})                                                      // an oversized length
	f.Add([]byte{0, 1, 0, 1, 4, 2, 1, 1, 'a', 6, 7, 3})                      // goexit, then a truncated frame
	f.Add([]byte{7, 0})                                                      // a Hello from the executor
	f.Fuzz(func(t *testing.T, data []byte) {
		// Runs without a slot bound, and with one slot: every job of an
		// executor beyond its first running is held (wire.Run.Slots), so
		// cancels, deadlines, shutdowns and the end of the stream meet
		// held jobs too.
		for _, slots := range []int{0, 1} {
			p := newFrameProgram(data, slots)
			p.check(t, p.serve(t))
		}
	})
}

const fuzzMaxFrame = 8 << 10

var fuzzNames = []string{"echo", "fail", "panic", "block", "goexit", "nosuch", "badarg"}

// fuzzRegistry's works end promptly once their ctx ends, so the serve loop
// never has to wait out its grace; block also ends when quit is closed, so
// a job the host forgot to cancel does not outlive its test.
func fuzzRegistry(quit <-chan struct{}) registry {
	return registry{
		"echo":   func(_ context.Context, arg []byte) ([]byte, error) { return arg, nil },
		"fail":   func(_ context.Context, arg []byte) ([]byte, error) { return nil, &myErr{string(arg)} },
		"panic":  func(context.Context, []byte) ([]byte, error) { panic("boom") },
		"goexit": func(context.Context, []byte) ([]byte, error) { runtime.Goexit(); return nil, nil },
		"block": func(ctx context.Context, _ []byte) ([]byte, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-quit:
				return nil, errors.New("never cancelled")
			}
		},
		"badarg": func(context.Context, []byte) ([]byte, error) { return nil, fmt.Errorf("decoding: %w", errBadArg) },
	}
}

// frameProgram is the byte stream built from the fuzz input, with what
// the checks need to know about it.
type frameProgram struct {
	stream []byte
	// per job id: jobs sent before the first Shutdown or bad frame (they
	// must be answered), jobs sent before the first bad frame (the most
	// that may be), and the item counts they had.
	must, may map[uint64]int
	items     map[uint64]map[int]bool
	ahead     map[uint64]int // jobs sent Ahead with items: the most Started ids each may get
	bad       bool           // the stream holds a frame the host must reject
	shutdown  bool           // a Shutdown was sent before any bad frame
}

type fuzzBytes struct {
	b []byte
	i int
}

func (f *fuzzBytes) next() byte {
	if f.i >= len(f.b) {
		return 0
	}
	f.i++
	return f.b[f.i-1]
}

func (f *fuzzBytes) more() bool { return f.i < len(f.b) }

func (f *fuzzBytes) take(n int) []byte {
	out := make([]byte, 0, n)
	for range n {
		out = append(out, f.next())
	}
	return out
}

func newFrameProgram(data []byte, slots int) *frameProgram {
	p := &frameProgram{must: map[uint64]int{}, may: map[uint64]int{}, items: map[uint64]map[int]bool{}, ahead: map[uint64]int{}}
	in := &fuzzBytes{b: data}
	for ops := 0; in.more() && ops < 64 && !p.bad; ops++ {
		switch in.next() % 8 {
		case 0, 1:
			run := &wire.Run{Slots: slots}
			if in.next()%4 == 0 {
				run.ReplyTo = "exec"
			}
			for range 1 + in.next()%3 {
				j := wire.Job{ID: uint64(in.next() % 6), Name: fuzzNames[int(in.next())%len(fuzzNames)]}
				switch in.next() % 4 {
				case 0:
					j.Timeout = -time.Second
				case 1:
					j.Timeout = time.Duration(in.next()) * time.Millisecond
				case 2:
					// No byte of its own, so the corpus keeps its meaning.
					j.Header = map[string]string{"k": j.Name}
				case 3:
					// Sent ahead, its Deadline(d) counted from its start:
					// no byte of its own either.
					j.Ahead, j.Limit = true, time.Duration(j.ID+1)*time.Millisecond
				}
				for range in.next() % 4 {
					j.Args = append(j.Args, in.take(int(in.next()%8)))
				}
				run.Jobs = append(run.Jobs, j)
			}
			p.frame(run)
		case 2:
			c := &wire.Cancel{}
			for range in.next() % 4 {
				c.IDs = append(c.IDs, uint64(in.next()%8)) // some never sent
			}
			p.frame(c)
		case 3:
			p.frame(&wire.Shutdown{Graceful: in.next()%2 == 0})
		case 4: // a frame of arbitrary bytes, behind a valid or an invalid header
			var body []byte
			switch in.next() % 3 {
			case 0:
				body = append([]byte{wire.Version, in.next() % 9}, in.take(int(in.next()%32))...)
			case 1:
				body = append([]byte{wire.Version + 1 + in.next()%10}, in.take(int(in.next()%16))...)
			default:
				body = in.take(int(in.next() % 16))
			}
			p.raw(body)
		case 5: // a length over the limit
			p.stream = binary.BigEndian.AppendUint32(p.stream, uint32(fuzzMaxFrame+1+int(in.next())))
			p.bad = true
		case 6: // a frame cut short by the end of the stream
			n := 1 + int(in.next())
			p.stream = binary.BigEndian.AppendUint32(p.stream, uint32(n))
			p.stream = append(p.stream, in.take(int(in.next())%n)...)
			p.bad = true
		case 7: // what only a worker sends
			switch in.next() % 5 {
			case 4:
				p.frame(&wire.Started{IDs: []uint64{1}})
			case 0:
				p.frame(&wire.Hello{Version: wire.Version})
			case 1:
				p.frame(&wire.Heartbeat{Load: int(in.next())})
			case 2:
				p.frame(&wire.Results{Results: []wire.Result{{ID: 1}}})
			default:
				p.frame(&wire.Bye{})
			}
		}
	}
	return p
}

// frame appends a valid message.
func (p *frameProgram) frame(m wire.Msg) {
	b, err := frameOf(m, fuzzMaxFrame)
	if err != nil {
		panic(err) // the program's own messages are small
	}
	p.stream = append(p.stream, b...)
	p.account(m)
}

// raw appends a frame of arbitrary bytes; the host reads it as Unmarshal
// decodes it, so that says what it is.
func (p *frameProgram) raw(body []byte) {
	p.stream = binary.BigEndian.AppendUint32(p.stream, uint32(len(body)))
	p.stream = append(p.stream, body...)
	m, err := wire.Unmarshal(body)
	if err != nil {
		p.bad = true
		return
	}
	p.account(m)
}

// account records what a frame the host will read means for the checks.
func (p *frameProgram) account(m wire.Msg) {
	switch m := m.(type) {
	case *wire.Run:
		for _, j := range m.Jobs {
			p.may[j.ID]++
			if !p.shutdown {
				p.must[j.ID]++
			}
			if p.items[j.ID] == nil {
				p.items[j.ID] = map[int]bool{}
			}
			p.items[j.ID][len(j.Args)] = true
			if j.Ahead && len(j.Args) > 0 {
				p.ahead[j.ID]++
			}
		}
	case *wire.Cancel:
	case *wire.Shutdown:
		p.shutdown = true
	default:
		p.bad = true // an unexpected message ends the loop with an error
	}
}

// served is what came back from ServeConn.
type served struct {
	err     error
	results map[uint64]int
	msgs    []wire.Msg
	readErr error
}

// serve runs ServeConn over pipes, writes the program's stream and closes
// it, and collects everything the host writes until it returns.
func (p *frameProgram) serve(t *testing.T) served {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	quit := make(chan struct{})
	defer close(quit)
	cfg := Config{Registry: fuzzRegistry(quit), EncodeError: testEncodeError, MaxFrame: fuzzMaxFrame, WorkerID: "fuzz",
		Extract: func(ctx context.Context, h map[string]string) context.Context {
			return context.WithValue(ctx, headerKey{}, h["k"])
		}}
	done := make(chan error, 1)
	go func() {
		err := ServeConn(ctx, cfg, inR, outW)
		outW.Close()
		done <- err
	}()
	go func() {
		// The host stops reading at a bad frame and closes its end:
		// the rest of the stream is not written then.
		inW.Write(p.stream)
		inW.Close()
	}()
	var s served
	s.results = map[uint64]int{}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		rd := wire.NewReader(outR, fuzzMaxFrame)
		for {
			m, err := rd.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					s.readErr = err
				}
				return
			}
			s.msgs = append(s.msgs, m)
		}
	}()
	select {
	case s.err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("ServeConn did not return; stream %x", p.stream)
	}
	<-readDone // ServeConn closed the output
	if ctx.Err() != nil {
		t.Fatalf("ServeConn only returned when its ctx ended (%v); stream %x", s.err, p.stream)
	}
	return s
}

func (p *frameProgram) check(t *testing.T, s served) {
	if s.readErr != nil {
		t.Fatalf("the host wrote an unreadable stream: %v", s.readErr)
	}
	if len(s.msgs) == 0 {
		t.Fatal("no Hello")
	}
	if _, ok := s.msgs[0].(*wire.Hello); !ok {
		t.Fatalf("first message %T, want Hello", s.msgs[0])
	}
	bye := false
	started := map[uint64]int{}
	for _, m := range s.msgs[1:] {
		if bye {
			t.Fatalf("%T after Bye", m)
		}
		switch m := m.(type) {
		case *wire.Results:
			for _, r := range m.Results {
				s.results[r.ID]++
				if !p.items[r.ID][len(r.Items)] {
					t.Fatalf("result for id %d with %d items: no such job was sent (sent: %v)", r.ID, len(r.Items), p.items[r.ID])
				}
			}
		case *wire.Started:
			for _, id := range m.IDs {
				started[id]++
				if started[id] > p.ahead[id] {
					t.Fatalf("Started names id %d %d times, for %d jobs sent ahead", id, started[id], p.ahead[id])
				}
			}
		case *wire.Bye:
			bye = true
		case *wire.Heartbeat:
		default:
			t.Fatalf("the host sent a %T", m)
		}
	}
	for id, n := range s.results {
		if n > p.may[id] {
			t.Fatalf("id %d: %d results for %d jobs sent", id, n, p.may[id])
		}
	}
	for id, n := range p.must {
		if s.results[id] < n {
			t.Fatalf("id %d: %d results for %d jobs the host must have admitted; stream %x", id, s.results[id], n, p.stream)
		}
	}
	// After a Shutdown the loop may end before it reads a later bad frame.
	switch {
	case !p.bad && s.err != nil:
		t.Fatalf("ServeConn returned %v for a stream of valid frames", s.err)
	case p.bad && !p.shutdown && s.err == nil:
		t.Fatalf("ServeConn returned nil for a stream with a bad frame: %x", p.stream)
	}
}

// TestHelloPrecedesResults: ServeConn's first frame is Hello, even when a
// Run arrives before its writer goroutine has written anything. Found by
// FuzzServeConnFrames: the outbox writes queued results before queued
// control messages, so a result refused at once (an unknown work) could
// overtake the Hello.
func TestHelloPrecedesResults(t *testing.T) {
	run, err := frameOf(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "nosuch", Args: [][]byte{nil}}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := ServeConn(context.Background(), Config{Registry: fuzzRegistry(nil)}, inR, outW)
			outW.Close()
			done <- err
		}()
		go func() {
			inW.Write(run) // before anything is read from the host
			inW.Close()
		}()
		rd := wire.NewReader(outR, 0)
		var kinds []wire.Kind
		for {
			m, err := rd.Next()
			if err != nil {
				break
			}
			kinds = append(kinds, m.Kind())
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(kinds) == 0 || kinds[0] != wire.KindHello {
			t.Fatalf("round %d: the host wrote %v: Hello must come first", i, kinds)
		}
	}
}

// TestDuplicateJobIDStaysCancellable: a Run whose id repeats that of a job
// still running (a protocol violation, or a resend) must not make the
// first job unreachable. Found by FuzzServeConnFrames: the second job
// replaces the first in the host's job table, so Cancel, CancelAll and the
// end of the stream no longer reach the first one; it runs on, its result
// is dropped after the grace and its goroutine leaks.
func TestDuplicateJobIDStaysCancellable(t *testing.T) {
	release := make(chan struct{})
	reg := fuzzRegistry(nil)
	reg["wait"] = func(ctx context.Context, _ []byte) ([]byte, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-release: // the test's end, so that a failure leaks nothing
			return nil, errors.New("released by the test, never cancelled")
		}
	}
	c := serve(t, Config{Registry: reg})
	t.Cleanup(func() { close(release) })
	c.send(&wire.Run{Jobs: []wire.Job{{ID: 7, Name: "wait", Args: [][]byte{nil}}}})
	if r := c.run(wire.Job{ID: 7, Name: "echo", Args: [][]byte{[]byte("dup")}}); string(r.Items[0].Value) != "dup" {
		t.Fatalf("the duplicate: %+v", r)
	}
	c.send(&wire.Cancel{IDs: []uint64{7}})
	r := c.results(1)[7]
	if len(r.Items) != 1 || r.Items[0].Err == nil || r.Items[0].Err.Code != wire.CodeCanceled {
		t.Fatalf("the first job after Cancel: %+v", r)
	}
}
