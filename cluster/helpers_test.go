package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/wire"
)

// The membership settings of the failure tests: workers beat every 100ms
// and are dropped after 800ms of silence, which keeps the tests quick yet
// leaves a healthy worker eight beats of slack on a loaded machine.
const (
	testTimeout   = 800 * time.Millisecond
	testHeartbeat = 100 * time.Millisecond
)

// startServer starts a NATS server for one test on 127.0.0.1 (port 0: a
// random one); edit adjusts its options. It is shut down when the test
// ends.
func startServer(t testing.TB, port int, edit func(*server.Options)) *server.Server {
	t.Helper()
	s := newServer(t, port, edit)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// newServer is startServer without the clean-up.
func newServer(t testing.TB, port int, edit func(*server.Options)) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true}
	if edit != nil {
		edit(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return s
}

// restartableServer is a NATS server for one test on a port of its own,
// which the test can stop (an outage begins) and start again on the same
// port. Its latest incarnation is shut down when the test ends, after the
// clean-ups registered later: executors and workers leave through it.
type restartableServer struct {
	t    testing.TB
	port int
	url  string // the same across restarts
	mu   sync.Mutex
	srv  *server.Server // nil while stopped
}

func newRestartableServer(t testing.TB) *restartableServer {
	t.Helper()
	r := &restartableServer{t: t, port: freePort(t)}
	r.srv = newServer(t, r.port, nil)
	r.url = r.srv.ClientURL()
	t.Cleanup(r.stop)
	return r
}

// stop shuts the server down: its clients lose their connections.
func (r *restartableServer) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// start starts the server again on its port. It may be called from any
// goroutine: a failure is reported with t.Error.
func (r *restartableServer) start() {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: r.port, NoLog: true, NoSigs: true})
	if err != nil {
		r.t.Error(err)
		return
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		r.t.Error("NATS server not ready after its restart")
	}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testLog forwards output to the test log, line by line (exec copies a
// child's output from its own goroutine).
type testLog struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
	buf  []byte
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{t: t}
	t.Cleanup(func() { l.mu.Lock(); l.done = true; l.mu.Unlock() })
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.t.Log(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// proc is a worker process a test started by hand, as a user would on
// another machine: this binary with APLEX_WORKER_ROLE=cluster.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// spawnWorker starts a worker process against url serving pool, with
// heartbeats every testHeartbeat unless env says otherwise. It is stopped
// (SIGTERM, then SIGKILL) and reaped when the test ends.
func spawnWorker(t testing.TB, url, pool, id string, env ...string) *proc {
	t.Helper()
	return spawnWorkerTo(t, newTestLog(t), url, pool, id, env...)
}

// spawnWorkerTo is spawnWorker with the worker's output going to out.
func spawnWorkerTo(t testing.TB, out io.Writer, url, pool, id string, env ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		"APLEX_WORKER_ROLE=cluster",
		"APLEX_CLUSTER_URL="+url,
		"APLEX_CLUSTER_POOL="+pool,
		"APLEX_CLUSTER_HEARTBEAT="+testHeartbeat.String(),
	)
	if id != "" {
		cmd.Env = append(cmd.Env, "APLEX_CLUSTER_WORKER_ID="+id)
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited waits up to d for the process to end.
func (p *proc) exited(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// newExecutor builds a cluster executor that is shut down (and checked)
// when the test ends.
func newExecutor(t testing.TB, opts ...aplex.Option) *aplex.Executor {
	t.Helper()
	ex, err := cluster.NewExecutor(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ex.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return ex
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get waits for f with a bound, so a hanging future fails the test.
func get[R any](t testing.TB, f *aplex.Future[R]) (R, error) {
	t.Helper()
	select {
	case <-f.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("future did not end within 20s")
	}
	return f.Get(context.Background())
}

func itoa(i int) string { return strconv.Itoa(i) }

// submit submits w(a) with a background ctx and fails the test if Submit
// does: a test never ignores a Submit error.
func submit[A, R any](t testing.TB, ex *aplex.Executor, w *aplex.Work[A, R], a A, opts ...aplex.CallOption) *aplex.Future[R] {
	t.Helper()
	f, err := aplex.Submit(context.Background(), ex, w, a, opts...)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return f
}

// startedIn returns a condition for waitFor: the block work of key runs
// in ex's (single) worker.
func startedIn(t testing.TB, ex *aplex.Executor, key string) func() bool {
	return func() bool {
		ok, err := get(t, submit(t, ex, hasStarted, key))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
}

// dispatched returns a condition for waitFor: n works are held by ex's
// workers (sent to them, whether or not they started yet).
func dispatched(ex *aplex.Executor, n int) func() bool {
	return func() bool { return ex.Stats().Running == n }
}

// shutDownOnDone makes f's completion callback shut ex down, and returns
// a function that waits for that Shutdown: it must return, with an error
// naming the callback it left running, whose text the function returns.
func shutDownOnDone[R any](t *testing.T, ex *aplex.Executor, f *aplex.Future[R]) (wait func() (msg string)) {
	returned := make(chan error, 1)
	f.OnDone(func(R, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		returned <- ex.Shutdown(ctx)
	})
	return func() string {
		t.Helper()
		select {
		case err := <-returned:
			if err == nil || !strings.Contains(err.Error(), "completion callback") {
				t.Errorf("Shutdown in OnDone: %v; want an error naming the callback it left running", err)
				return fmt.Sprint(err)
			}
			return err.Error()
		case <-time.After(30 * time.Second):
			t.Fatal("Shutdown called in OnDone hangs")
			return ""
		}
	}
}

// recordLog is a slog.Handler that keeps the records at level or above
// whose message contains match, and signals each on arrived: the tests'
// handshake on what the executor or a worker logs.
type recordLog struct {
	match   string
	level   slog.Level
	arrived chan struct{} // capacity 1
	mu      sync.Mutex
	recs    []slog.Record
}

func newRecordLog(level slog.Level, match string) *recordLog {
	return &recordLog{match: match, level: level, arrived: make(chan struct{}, 1)}
}

func (h *recordLog) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordLog) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recordLog) WithGroup(string) slog.Handler                { return h }
func (h *recordLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, h.match) {
		return nil
	}
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	select {
	case h.arrived <- struct{}{}:
	default:
	}
	return nil
}

// records returns the records kept so far.
func (h *recordLog) records() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.recs...)
}

// attrOf returns the value of r's attribute key (the zero Value if none).
func attrOf(r slog.Record, key string) (v slog.Value) {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// rawExecutor plays an executor on raw NATS against one real worker of an
// unsealed pool: it sends the worker messages and reads its replies and its
// heartbeats, as the protocol tests need to see them.
type rawExecutor struct {
	t       testing.TB
	nc      *nats.Conn
	prefix  string // "aplex.<pool>"
	wid     string
	inbox   string // the ReplyTo of its Runs
	replies *nats.Subscription
	beats   *nats.Subscription // the worker's Heartbeats and Bye
	worker  *proc
}

// newRawExecutor starts a server, subscribes as an executor of pool, and
// starts worker wid, returning once it announced itself.
func newRawExecutor(t testing.TB, pool, wid string) *rawExecutor {
	t.Helper()
	srv := startServer(t, 0, nil)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	x := &rawExecutor{t: t, nc: nc, prefix: "aplex." + pool, wid: wid}
	x.inbox = x.prefix + ".x.fake"
	subscribe := func(subject string) *nats.Subscription {
		sub, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	hellos := subscribe(x.prefix + ".hello")
	x.replies = subscribe(x.inbox + "." + wid)
	x.beats = subscribe(x.prefix + ".hb." + wid)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	x.worker = spawnWorker(t, srv.ClientURL(), pool, wid)
	if _, err := hellos.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("no Hello from the worker: %v", err)
	}
	return x
}

// send publishes m to the worker.
func (x *rawExecutor) send(m wire.Msg) {
	x.t.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		x.t.Fatal(err)
	}
	if err := x.nc.Publish(x.prefix+".w."+x.wid, b); err != nil {
		x.t.Fatal(err)
	}
}

// next returns the next message on sub (replies or beats).
func (x *rawExecutor) next(sub *nats.Subscription) wire.Msg {
	x.t.Helper()
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		x.t.Fatalf("nothing more from the worker on %s: %v", sub.Subject, err)
	}
	m, err := wire.Unmarshal(msg.Data)
	if err != nil {
		x.t.Fatal(err)
	}
	return m
}

// arg encodes v as a job's only argument.
func arg(t testing.TB, v any) [][]byte {
	t.Helper()
	b, err := wire.MarshalValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{b}
}
