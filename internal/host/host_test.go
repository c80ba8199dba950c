package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aplex-go/aplex/internal/testutil"
	"github.com/aplex-go/aplex/internal/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// registry is a map-backed Registry.
type registry map[string]Handler

func (r registry) Lookup(name string) (Handler, bool) { h, ok := r[name]; return h, ok }
func (r registry) Names() []string {
	var names []string
	for n := range r {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// myErr is a work error with its own type.
type myErr struct{ msg string }

func (e *myErr) Error() string { return e.msg }

// errBadArg stands for an argument that does not decode.
var errBadArg = errors.New("bad argument")

// errSentinel stands for a registered sentinel; testEncodeError reports it
// under the key "sentinel".
var errSentinel = errors.New("sentinel")

func testRegistry() registry {
	return registry{
		"echo": func(_ context.Context, arg []byte) ([]byte, error) { return arg, nil },
		"fail": func(_ context.Context, arg []byte) ([]byte, error) { return nil, &myErr{string(arg)} },
		"badarg": func(context.Context, []byte) ([]byte, error) {
			return nil, fmt.Errorf("decoding: %w", errBadArg)
		},
		"panic": func(context.Context, []byte) ([]byte, error) { panic("boom") },
		"panicerr": func(context.Context, []byte) ([]byte, error) {
			panic(fmt.Errorf("wrapped: %w", errSentinel))
		},
		"goexit": func(context.Context, []byte) ([]byte, error) { runtime.Goexit(); return nil, nil },
		// mostly is quick, unless its argument says otherwise: "block"
		// waits for its ctx, "goexit" calls runtime.Goexit. So it is run by
		// a link's reader (Inline) once it has been quick.
		"mostly": func(ctx context.Context, arg []byte) ([]byte, error) {
			switch string(arg) {
			case "block":
				<-ctx.Done()
				return nil, ctx.Err()
			case "goexit":
				runtime.Goexit()
			}
			return arg, nil
		},
		"sleep": func(ctx context.Context, _ []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
		"big": func(_ context.Context, arg []byte) ([]byte, error) {
			var n int
			fmt.Sscan(string(arg), &n)
			return make([]byte, n), nil
		},
		// delay sleeps arg milliseconds, then echoes arg.
		"delay": func(ctx context.Context, arg []byte) ([]byte, error) {
			var ms int
			fmt.Sscan(string(arg), &ms)
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
				return arg, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
}

func testEncodeError(err error) *wire.Error {
	e := &wire.Error{Type: fmt.Sprintf("%T", err), Message: err.Error()}
	if errors.Is(err, errBadArg) {
		e.Code = wire.CodeBadArgument
	}
	if errors.Is(err, errSentinel) {
		e.Sentinels = []string{"sentinel"}
	}
	return e
}

// conn is the executor's end of a ServeConn running over io.Pipe pairs.
type conn struct {
	t      *testing.T
	toHost *io.PipeWriter
	fromW  *io.PipeWriter // the host's output, closed once ServeConn returns
	w      *wire.Writer
	msgs   chan wire.Msg
	served chan error
	cancel context.CancelFunc
}

// serve starts ServeConn with cfg (Registry and EncodeError default to the
// test ones) and consumes its Hello.
func serve(t *testing.T, cfg Config) *conn {
	t.Helper()
	if cfg.Registry == nil {
		cfg.Registry = testRegistry()
	}
	if cfg.EncodeError == nil {
		cfg.EncodeError = testEncodeError
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		t: t, toHost: inW, fromW: outW,
		w:      wire.NewWriter(inW, cfg.MaxFrame),
		msgs:   make(chan wire.Msg, 1024),
		served: make(chan error, 1),
		cancel: cancel,
	}
	go func() {
		err := ServeConn(ctx, cfg, inR, outW)
		outW.Close()
		c.served <- err
	}()
	go func() {
		defer close(c.msgs)
		rd := wire.NewReader(outR, cfg.MaxFrame)
		for {
			m, err := rd.Next()
			if err != nil {
				return
			}
			c.msgs <- m
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		cancel()
		select {
		case <-c.served:
		case <-time.After(5 * time.Second):
			t.Error("ServeConn did not return after EOF")
		}
		for range c.msgs {
		}
	})
	if _, ok := c.next().(*wire.Hello); !ok {
		t.Fatal("first message is not Hello")
	}
	return c
}

func (c *conn) send(m wire.Msg) {
	c.t.Helper()
	if err := c.w.Write(m); err != nil {
		c.t.Fatal(err)
	}
	if err := c.w.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conn) next() wire.Msg {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatal("host output ended")
		}
		return m
	case <-time.After(5 * time.Second):
		c.t.Fatal("timed out waiting for a message")
	}
	return nil
}

// results reads Results frames until it has n results, keyed by id;
// heartbeats are skipped.
func (c *conn) results(n int) map[uint64]wire.Result {
	c.t.Helper()
	got := map[uint64]wire.Result{}
	for len(got) < n {
		switch m := c.next().(type) {
		case *wire.Results:
			for _, r := range m.Results {
				got[r.ID] = r
			}
		case *wire.Heartbeat:
		default:
			c.t.Fatalf("unexpected %T while waiting for results", m)
		}
	}
	return got
}

// run sends one job and returns its result.
func (c *conn) run(j wire.Job) wire.Result {
	c.t.Helper()
	c.send(&wire.Run{Jobs: []wire.Job{j}})
	return c.results(1)[j.ID]
}

func (c *conn) wait() error {
	c.t.Helper()
	select {
	case err := <-c.served:
		c.served <- err // for Cleanup
		return err
	case <-time.After(5 * time.Second):
		c.t.Fatal("ServeConn did not return")
	}
	return nil
}

func TestHello(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeConn(context.Background(), Config{Registry: testRegistry(), MaxWorks: 7, WorkerID: "w1", Labels: map[string]string{"zone": "a"}}, inR, outW)
	}()
	m, err := wire.NewReader(outR, 0).Next()
	if err != nil {
		t.Fatal(err)
	}
	h := m.(*wire.Hello)
	want := testRegistry().Names()
	if h.Version != wire.Version || h.PID != os.Getpid() || h.MaxWorks != 7 || h.WorkerID != "w1" || h.Labels["zone"] != "a" || !slices.Equal(h.Works, want) {
		t.Errorf("Hello = %+v", h)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeConn after EOF = %v, want nil", err)
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name  string
		job   wire.Job
		check func(t *testing.T, o wire.Outcome)
	}{
		{"value", wire.Job{Name: "echo", Args: [][]byte{[]byte("hi")}}, func(t *testing.T, o wire.Outcome) {
			if o.Err != nil || string(o.Value) != "hi" {
				t.Errorf("got %+v", o)
			}
		}},
		{"work error", wire.Job{Name: "fail", Args: [][]byte{[]byte("nope")}}, func(t *testing.T, o wire.Outcome) {
			if o.Err == nil || o.Err.Type != "*host.myErr" || o.Err.Message != "nope" || o.Err.Code != wire.CodeNone || o.Err.Panic {
				t.Errorf("got %+v", o.Err)
			}
		}},
		{"encoded code", wire.Job{Name: "badarg", Args: [][]byte{nil}}, func(t *testing.T, o wire.Outcome) {
			if o.Err == nil || o.Err.Code != wire.CodeBadArgument {
				t.Errorf("got %+v", o.Err)
			}
		}},
		{"unknown work", wire.Job{Name: "nosuch", Args: [][]byte{nil, nil}}, func(t *testing.T, o wire.Outcome) {
			if o.Err == nil || o.Err.Code != wire.CodeUnknownWork || o.Err.Message != `aplex: work "nosuch" is not registered in this worker` {
				t.Errorf("got %+v", o.Err)
			}
		}},
		{"panic", wire.Job{Name: "panic", Args: [][]byte{nil}}, func(t *testing.T, o wire.Outcome) {
			e := o.Err
			if e == nil || !e.Panic || e.Message != "boom" || e.Type != "string" || !strings.Contains(e.Stack, "panic") || e.Sentinels != nil {
				t.Errorf("got %+v", e)
			}
		}},
		// TestPanicWithSentinelKeepsErrorsIs, the host's part: a panic
		// value that is an error carries its sentinels like a returned one.
		{"panic with sentinel", wire.Job{Name: "panicerr", Args: [][]byte{nil}}, func(t *testing.T, o wire.Outcome) {
			e := o.Err
			if e == nil || !e.Panic || e.Message != "wrapped: sentinel" || e.Type != "*fmt.wrapError" || !slices.Equal(e.Sentinels, []string{"sentinel"}) {
				t.Errorf("got %+v", e)
			}
		}},
		{"goexit", wire.Job{Name: "goexit", Args: [][]byte{nil}}, func(t *testing.T, o wire.Outcome) {
			if o.Err == nil || !strings.Contains(o.Err.Message, "Goexit") {
				t.Errorf("got %+v", o.Err)
			}
		}},
		{"deadline", wire.Job{Name: "sleep", Timeout: -time.Second, Args: [][]byte{nil}}, func(t *testing.T, o wire.Outcome) {
			if o.Err == nil || o.Err.Code != wire.CodeDeadline || o.Err.Message != context.DeadlineExceeded.Error() {
				t.Errorf("got %+v", o.Err)
			}
		}},
		{"too large", wire.Job{Name: "big", Args: [][]byte{[]byte("70000")}}, func(t *testing.T, o wire.Outcome) {
			if o.Err == nil || o.Err.Code != wire.CodeTooLarge || o.Value != nil {
				t.Errorf("got %+v", o.Err)
			}
		}},
		{"just fits", wire.Job{Name: "big", Args: [][]byte{[]byte("60000")}}, func(t *testing.T, o wire.Outcome) {
			if o.Err != nil || len(o.Value) != 60000 {
				t.Errorf("got err %+v, %d bytes", o.Err, len(o.Value))
			}
		}},
	}
	c := serve(t, Config{MaxFrame: 64 << 10})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.job.ID = uint64(i + 1)
			r := c.run(tt.job)
			if len(r.Items) != len(tt.job.Args) {
				t.Fatalf("%d items, want %d", len(r.Items), len(tt.job.Args))
			}
			for _, o := range r.Items {
				tt.check(t, o)
			}
		})
	}
	// The host survived all of that.
	if r := c.run(wire.Job{ID: 100, Name: "echo", Args: [][]byte{[]byte("still here")}}); string(r.Items[0].Value) != "still here" {
		t.Errorf("after the table: %+v", r)
	}
}

func TestChunkOrder(t *testing.T) {
	c := serve(t, Config{})
	// Items finish in reverse order; the result keeps item order.
	const n = 20
	args := make([][]byte, n)
	for i := range args {
		args[i] = []byte(fmt.Sprint((n - i) * 2))
	}
	start := time.Now()
	r := c.run(wire.Job{ID: 1, Name: "delay", Args: args})
	for i, o := range r.Items {
		if o.Err != nil || string(o.Value) != string(args[i]) {
			t.Fatalf("item %d = %+v, want %s", i, o, args[i])
		}
	}
	// They ran concurrently: ~40ms, not the ~420ms of a sequence.
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("chunk took %v: items did not run concurrently", d)
	}
}

func TestChunkTooLargeTogether(t *testing.T) {
	c := serve(t, Config{MaxFrame: 64 << 10})
	// Each item fits alone; together they do not. The largest go first.
	r := c.run(wire.Job{ID: 1, Name: "big", Args: [][]byte{[]byte("20000"), []byte("30000"), []byte("25000"), []byte("10")}})
	codes := make([]wire.ErrCode, len(r.Items))
	for i, o := range r.Items {
		if o.Err != nil {
			codes[i] = o.Err.Code
		}
	}
	want := []wire.ErrCode{wire.CodeNone, wire.CodeTooLarge, wire.CodeNone, wire.CodeNone}
	if !slices.Equal(codes, want) {
		t.Errorf("codes = %v, want %v", codes, want)
	}
}

func TestCancel(t *testing.T) {
	c := serve(t, Config{})
	c.send(&wire.Run{Jobs: []wire.Job{
		{ID: 1, Name: "sleep", Args: [][]byte{nil, nil, nil}},
		{ID: 2, Name: "delay", Args: [][]byte{[]byte("50")}},
	}})
	c.send(&wire.Cancel{IDs: []uint64{99, 1}}) // 99 is unknown: ignored
	got := c.results(2)
	for i, o := range got[1].Items {
		if o.Err == nil || o.Err.Code != wire.CodeCanceled {
			t.Errorf("job 1 item %d = %+v, want CodeCanceled", i, o.Err)
		}
	}
	if o := got[2].Items[0]; o.Err != nil || string(o.Value) != "50" {
		t.Errorf("job 2 = %+v, want untouched", o)
	}
}

func TestShutdownGraceful(t *testing.T) {
	c := serve(t, Config{})
	c.send(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "delay", Args: [][]byte{[]byte("100")}}, {ID: 2, Name: "sleep", Args: [][]byte{nil}}}})
	c.send(&wire.Shutdown{Graceful: true})
	// New work is refused; cancels still work; running work finishes.
	c.send(&wire.Run{Jobs: []wire.Job{{ID: 3, Name: "echo", Args: [][]byte{nil}}}})
	got := c.results(1)
	if e := got[3].Items[0].Err; e == nil || e.Code != wire.CodeShutdown {
		t.Fatalf("job after Shutdown = %+v, want CodeShutdown", got[3])
	}
	c.send(&wire.Cancel{IDs: []uint64{2}})
	got = c.results(2)
	if o := got[1].Items[0]; o.Err != nil || string(o.Value) != "100" {
		t.Errorf("running job = %+v, want its value", o)
	}
	if e := got[2].Items[0].Err; e == nil || e.Code != wire.CodeCanceled {
		t.Errorf("cancelled job = %+v", e)
	}
	if _, ok := c.next().(*wire.Bye); !ok {
		t.Error("no Bye after the last result")
	}
	if err := c.wait(); err != nil {
		t.Errorf("ServeConn = %v", err)
	}
}

func TestShutdownNow(t *testing.T) {
	c := serve(t, Config{})
	c.send(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "sleep", Args: [][]byte{nil}}}})
	c.send(&wire.Shutdown{Graceful: false})
	if e := c.results(1)[1].Items[0].Err; e == nil || e.Code != wire.CodeCanceled {
		t.Errorf("job = %+v, want CodeCanceled", e)
	}
	if _, ok := c.next().(*wire.Bye); !ok {
		t.Error("no Bye")
	}
	if err := c.wait(); err != nil {
		t.Errorf("ServeConn = %v", err)
	}
}

func TestEOF(t *testing.T) {
	started := make(chan struct{})
	stopped := make(chan error, 1)
	reg := testRegistry()
	reg["watch"] = func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	}
	c := serve(t, Config{Registry: reg})
	c.send(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "watch", Args: [][]byte{nil}}}})
	<-started
	c.toHost.Close()
	if err := c.wait(); err != nil {
		t.Errorf("ServeConn after EOF = %v, want nil", err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("job ctx: %v", err)
		}
	default:
		t.Error("job still running after ServeConn returned")
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"bad kind", []byte{0, 0, 0, 2, wire.Version, 99}, wire.ErrMalformed},
		{"bad version", []byte{0, 0, 0, 2, wire.Version + 1, byte(wire.KindShutdown)}, wire.ErrVersion},
		{"too large", []byte{0xff, 0xff, 0xff, 0xff}, wire.ErrFrameTooLarge},
		{"truncated", []byte{0, 0, 0, 9, wire.Version}, io.ErrUnexpectedEOF},
		{"wrong direction", mustFrame(t, &wire.Hello{Version: wire.Version}), wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, Config{})
			go func() {
				c.toHost.Write(tt.frame)
				c.toHost.Close()
			}()
			if err := c.wait(); !errors.Is(err, tt.want) {
				t.Errorf("ServeConn = %v, want %v", err, tt.want)
			}
		})
	}
}

func mustFrame(t *testing.T, m wire.Msg) []byte {
	b, err := frameOf(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frameOf encodes m as one frame of at most max bytes, as a process pipe
// carries it.
func frameOf(m wire.Msg, max int) ([]byte, error) {
	var out bytes.Buffer
	w := wire.NewWriter(&out, max)
	if err := w.Write(m); err != nil {
		return nil, err
	}
	err := w.Flush()
	return out.Bytes(), err
}

func TestHeartbeat(t *testing.T) {
	c := serve(t, Config{Heartbeat: 5 * time.Millisecond, MaxWorks: 3, WorkerID: "hb"})
	c.send(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "sleep", Args: [][]byte{nil}}}})
	for {
		hb, ok := c.next().(*wire.Heartbeat)
		if ok && hb.Load == 1 {
			if hb.MaxWorks != 3 || hb.WorkerID != "hb" || hb.Draining {
				t.Errorf("heartbeat = %+v", hb)
			}
			break
		}
	}
	c.send(&wire.Cancel{IDs: []uint64{1}})
}

func TestContextCancel(t *testing.T) {
	started := make(chan struct{})
	reg := testRegistry()
	reg["watch"] = func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c := serve(t, Config{Registry: reg})
	c.send(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "watch", Args: [][]byte{nil}}}})
	<-started
	c.cancel()
	if e := c.results(1)[1].Items[0].Err; e == nil || e.Code != wire.CodeCanceled {
		t.Errorf("job = %+v", e)
	}
	if _, ok := c.next().(*wire.Bye); !ok {
		t.Error("no Bye")
	}
	if err := c.wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("ServeConn = %v, want context.Canceled", err)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("pipe gone") }

func TestWriteError(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	err := ServeConn(context.Background(), Config{}, inR, failWriter{})
	if err == nil || !strings.Contains(err.Error(), "pipe gone") {
		t.Errorf("ServeConn = %v", err)
	}
}

// TestHostDirect drives a Host without a stream, as a cluster worker does.
func TestHostDirect(t *testing.T) {
	var mu sync.Mutex
	got := map[string]wire.Result{}
	emitted := make(chan struct{}, 10)
	h := New(Config{Registry: testRegistry(), Emit: func(replyTo string, r wire.Result) {
		mu.Lock()
		got[fmt.Sprint(replyTo, r.ID)] = r
		mu.Unlock()
		emitted <- struct{}{}
	}})
	defer h.Close()
	// The same id from two executors: ReplyTo keeps them apart.
	h.Run(&wire.Run{ReplyTo: "a", Jobs: []wire.Job{{ID: 1, Name: "sleep", Args: [][]byte{nil}}}})
	h.Run(&wire.Run{ReplyTo: "b", Jobs: []wire.Job{{ID: 1, Name: "sleep", Args: [][]byte{nil}}}})
	if n := h.Load(); n != 2 {
		t.Errorf("Load = %d, want 2", n)
	}
	h.Cancel(&wire.Cancel{ReplyTo: "a", IDs: []uint64{1}})
	<-emitted
	mu.Lock()
	if _, ok := got["a1"]; !ok || len(got) != 1 {
		t.Errorf("after cancelling a/1: %v", got)
	}
	mu.Unlock()
	select {
	case <-h.idleChan():
		t.Error("idle with a job running")
	default:
	}
	h.CancelAll()
	<-h.idleChan()
	<-emitted
	if h.Load() != 0 {
		t.Errorf("Load = %d once idle", h.Load())
	}
	h.Drain()
	h.Run(&wire.Run{Jobs: []wire.Job{{ID: 2, Name: "echo", Args: [][]byte{nil}}}})
	<-emitted
	mu.Lock()
	if e := got["2"].Items[0].Err; e == nil || e.Code != wire.CodeShutdown {
		t.Errorf("after Drain: %+v", got["2"])
	}
	mu.Unlock()
}

type headerKey struct{}

// ctxRegistry's works report what their ctx holds.
func ctxRegistry() registry {
	return registry{
		"deadline": func(ctx context.Context, _ []byte) ([]byte, error) {
			d, ok := ctx.Deadline()
			if !ok {
				return nil, nil
			}
			return []byte(d.Format(time.RFC3339Nano)), nil
		},
		"header": func(ctx context.Context, _ []byte) ([]byte, error) {
			v, _ := ctx.Value(headerKey{}).(string)
			return []byte(v), nil
		},
	}
}

// TestJobTimeoutIsTimeLeft checks that a job's ctx deadline is its Timeout
// counted from its arrival: no instant, so no clock, crosses the wire.
func TestJobTimeoutIsTimeLeft(t *testing.T) {
	c := serve(t, Config{Registry: ctxRegistry()})
	if r := c.run(wire.Job{ID: 1, Name: "deadline", Args: [][]byte{nil}}); r.Items[0].Value != nil {
		t.Fatalf("a job without a Timeout has the deadline %s", r.Items[0].Value)
	}
	const d = time.Hour
	before := time.Now()
	r := c.run(wire.Job{ID: 2, Name: "deadline", Timeout: d, Args: [][]byte{nil}})
	after := time.Now()
	got, err := time.Parse(time.RFC3339Nano, string(r.Items[0].Value))
	if err != nil {
		t.Fatalf("deadline %q: %v", r.Items[0].Value, err)
	}
	if got.Before(before.Add(d).Round(0)) || got.After(after.Add(d).Round(0)) {
		t.Fatalf("deadline %v, want within [%v, %v]", got, before.Add(d), after.Add(d))
	}
}

// TestExtractHeader checks that Config.Extract puts a job's header in its
// ctx, runs only for jobs that carry one, and fails the job (not the host)
// when it panics.
func TestExtractHeader(t *testing.T) {
	var calls sync.Map // job's header value → true
	c := serve(t, Config{Registry: ctxRegistry(), Extract: func(ctx context.Context, h map[string]string) context.Context {
		calls.Store(h["id"], true)
		if h["id"] == "panic" {
			panic("bad header")
		}
		if h["id"] == "nil" {
			return nil // keeps the job's ctx
		}
		return context.WithValue(ctx, headerKey{}, h["id"])
	}})
	if r := c.run(wire.Job{ID: 1, Name: "header", Header: map[string]string{"id": "req-1"}, Args: [][]byte{nil}}); string(r.Items[0].Value) != "req-1" {
		t.Fatalf("the work saw %q, want req-1", r.Items[0].Value)
	}
	if r := c.run(wire.Job{ID: 2, Name: "header", Args: [][]byte{nil}}); len(r.Items[0].Value) != 0 {
		t.Fatalf("a job without a header saw %q", r.Items[0].Value)
	}
	if _, ok := calls.Load(""); ok {
		t.Fatal("Extract ran for a job without a header")
	}
	r := c.run(wire.Job{ID: 3, Name: "header", Header: map[string]string{"id": "panic"}, Args: [][]byte{nil, nil}})
	for _, o := range r.Items {
		if o.Err == nil || !o.Err.Panic || !strings.Contains(o.Err.Message, "bad header") {
			t.Fatalf("a panicking Extract: %+v", o.Err)
		}
	}
	if r := c.run(wire.Job{ID: 4, Name: "header", Header: map[string]string{"id": "nil"}, Args: [][]byte{nil}}); r.Items[0].Err != nil {
		t.Fatalf("Extract returning nil: %+v", r.Items[0].Err)
	}
	if r := c.run(wire.Job{ID: 5, Name: "header", Header: map[string]string{"id": "req-5"}, Args: [][]byte{nil}}); string(r.Items[0].Value) != "req-5" {
		t.Fatalf("after a panicking Extract the work saw %q", r.Items[0].Value)
	}
}

// TestBlockedReaderHandsTheReadingOn: a quick work runs in the link's
// reader; when one of its jobs blocks, the reader must not stay deaf: the
// jobs behind it in the same Run still run, and a Cancel sent after it is
// read and reaches the blocked job.
func TestBlockedReaderHandsTheReadingOn(t *testing.T) {
	c := serve(t, Config{})
	// Quick once, measured in a goroutine: from now on run by the reader.
	if r := c.run(wire.Job{ID: 1, Name: "mostly", Args: [][]byte{[]byte("quick")}}); r.Items[0].Err != nil {
		t.Fatalf("quick: %+v", r)
	}
	c.send(&wire.Run{Jobs: []wire.Job{
		{ID: 2, Name: "mostly", Args: [][]byte{[]byte("block")}},
		{ID: 3, Name: "mostly", Args: [][]byte{[]byte("behind")}},
	}})
	if r := c.results(1)[3]; r.Items == nil || string(r.Items[0].Value) != "behind" {
		t.Fatalf("the job behind the blocked one: %+v", r)
	}
	c.send(&wire.Cancel{IDs: []uint64{2}})
	if r := c.results(1)[2]; r.Items == nil || r.Items[0].Err == nil || r.Items[0].Err.Code != wire.CodeCanceled {
		t.Fatalf("blocked job after Cancel: %+v", r)
	}
	// The reader that blocked has ended; the one that took over serves.
	if r := c.run(wire.Job{ID: 4, Name: "mostly", Args: [][]byte{[]byte("again")}}); string(r.Items[0].Value) != "again" {
		t.Fatalf("after the hand-over: %+v", r)
	}
}

// TestGoexitInReaderKeepsReading: a work that calls runtime.Goexit while
// the link's reader runs it ends that goroutine; its job fails, the jobs
// behind it in the same Run still run, and the link keeps being read.
func TestGoexitInReaderKeepsReading(t *testing.T) {
	c := serve(t, Config{})
	if r := c.run(wire.Job{ID: 1, Name: "mostly", Args: [][]byte{[]byte("quick")}}); r.Items[0].Err != nil {
		t.Fatalf("quick: %+v", r)
	}
	c.send(&wire.Run{Jobs: []wire.Job{
		{ID: 2, Name: "mostly", Args: [][]byte{[]byte("goexit")}},
		{ID: 3, Name: "mostly", Args: [][]byte{[]byte("behind"), []byte("chunk")}},
	}})
	got := c.results(2)
	if o := got[2].Items; len(o) != 1 || o[0].Err == nil || !strings.Contains(o[0].Err.Message, "Goexit") {
		t.Errorf("goexit job: %+v", got[2])
	}
	if o := got[3].Items; len(o) != 2 || string(o[0].Value) != "behind" || string(o[1].Value) != "chunk" {
		t.Errorf("job behind: %+v", got[3])
	}
	if r := c.run(wire.Job{ID: 4, Name: "mostly", Args: [][]byte{[]byte("again")}}); string(r.Items[0].Value) != "again" {
		t.Fatalf("after the Goexit: %+v", r)
	}
}

// TestJobsRunWithTheirCtxPprofLabels: a job runs with the pprof labels of
// its ctx (the worker's base ctx, plus what Extract adds), as a CPU profile
// shows them, on whichever goroutine runs it: the link's reader, a reused
// runner, a chunk's. A job used to run with the labels its goroutine had
// (none, or those the last job on it set and left).
func TestJobsRunWithTheirCtxPprofLabels(t *testing.T) {
	reg := registry{"labels": func(ctx context.Context, arg []byte) ([]byte, error) {
		got := testutil.GoroutineLabels()
		if string(arg) == "set" { // labels its goroutine and leaves them
			pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("set", "by-work")))
		}
		keys := slices.Sorted(maps.Keys(got))
		for i, k := range keys {
			keys[i] = k + "=" + got[k]
		}
		return []byte(strings.Join(keys, ",")), nil
	}}
	base := pprof.WithLabels(context.Background(), pprof.Labels("worker", "base"))
	c := serve(t, Config{Registry: reg, BaseContext: base, Extract: func(ctx context.Context, h map[string]string) context.Context {
		return pprof.WithLabels(ctx, pprof.Labels("caller", h["caller"]))
	}})
	for i, step := range []struct {
		name   string
		args   []string
		header map[string]string
		want   string
	}{
		{"first, measured on a runner; sets labels", []string{"set"}, nil, "worker=base"},
		{"quick now: in the reader", []string{""}, nil, "worker=base"},
		{"in the reader; sets labels", []string{"set"}, nil, "worker=base"},
		{"in the reader after a job that set labels", []string{""}, nil, "worker=base"},
		{"a chunk, on runners", []string{"set", ""}, nil, "worker=base"},
		{"a header through Extract", []string{""}, map[string]string{"caller": "x"}, "caller=x,worker=base"},
	} {
		j := wire.Job{ID: uint64(i + 1), Name: "labels", Header: step.header}
		for _, a := range step.args {
			j.Args = append(j.Args, []byte(a))
		}
		for k, o := range c.run(j).Items {
			if o.Err != nil || string(o.Value) != step.want {
				t.Errorf("%s, item %d: labels %q (err %v), want %q", step.name, k, o.Value, o.Err, step.want)
			}
		}
	}
}

// TestSameIDOfTwoExecutors: a cluster worker serves several executors,
// each numbering its own jobs, so their ids meet. A Cancel reaches only
// its executor's job, and each job's end unlinks only itself.
func TestSameIDOfTwoExecutors(t *testing.T) {
	quit := make(chan struct{})
	defer close(quit)
	type ended struct {
		replyTo string
		code    wire.ErrCode
	}
	results := make(chan ended, 4)
	h := New(Config{Registry: fuzzRegistry(quit), Emit: func(replyTo string, r wire.Result) {
		code := wire.CodeNone
		if e := r.Items[0].Err; e != nil {
			code = e.Code
		}
		results <- ended{replyTo, code}
	}})
	defer h.Close()
	for _, exec := range []string{"a", "b", "c"} {
		h.Run(&wire.Run{ReplyTo: exec, Jobs: []wire.Job{{ID: 1, Name: "block", Args: [][]byte{nil}}}})
	}
	for _, exec := range []string{"b", "a", "c"} {
		h.Cancel(&wire.Cancel{ReplyTo: exec, IDs: []uint64{1}})
		if got := <-results; got != (ended{exec, wire.CodeCanceled}) {
			t.Fatalf("cancelling %s's job 1 ended %+v", exec, got)
		}
	}
	<-h.idleChan()
	h.mu.Lock()
	left := len(h.jobs)
	h.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d ids left in the job table once every job ended", left)
	}
}
