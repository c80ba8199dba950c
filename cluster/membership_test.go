package cluster

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/seal"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// recordSink is an xport.Sink that records the order of the transport's
// calls. While hold is open, Join waits in the middle of the call (after
// telling inJoin), so a test can act on the transport before Join returns.
// It stands in for the core's job table with the jobs a test says it sent
// (sent), which Outstanding returns.
type recordSink struct {
	mu     sync.Mutex
	events []string
	inJoin chan xport.Worker
	hold   chan struct{}
	out    map[xport.Worker][]*wire.Job
}

// sent records jobs as sent to w and not answered, as the core's table
// would.
func (s *recordSink) sent(w xport.Worker, jobs []*wire.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		s.out = map[xport.Worker][]*wire.Job{}
	}
	s.out[w] = append(s.out[w], jobs...)
}

func (s *recordSink) Outstanding(w xport.Worker) ([]*wire.Job, []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.out[w]), nil
}

func newRecordSink(hold bool) *recordSink {
	s := &recordSink{inJoin: make(chan xport.Worker, 4)}
	if hold {
		s.hold = make(chan struct{})
	}
	return s
}

func (s *recordSink) add(e string) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *recordSink) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func (s *recordSink) Join(w xport.Worker) {
	s.add("join")
	s.inJoin <- w
	if s.hold != nil {
		<-s.hold
	}
	s.add("joined")
}

func (s *recordSink) Retire(xport.Worker)              { s.add("retire") }
func (s *recordSink) Done(xport.Worker, []wire.Result) { s.add("done") }
func (s *recordSink) Started(xport.Worker, []uint64)   { s.add("started") }
func (s *recordSink) Lost(_ xport.Worker, cause error) { s.add("lost") }
func (s *recordSink) Broken(error)                     { s.add("broken") }

// newTestTransport is an executor transport on its own embedded server,
// not started: a test drives its handlers by hand.
func newTestTransport(t *testing.T, sink xport.Sink) *transport {
	t.Helper()
	tr, err := newTransport(xport.Config{}, &execConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tr.sink = sink
	t.Cleanup(func() {
		if err := tr.release(); err != nil {
			t.Error(err)
		}
	})
	return tr
}

// TestLostBeforeJoinWaitsForJoin: a member was put among the members
// before the core was told (Sink.Join), so a drop in between (a Bye, its
// local process exiting, the connection closing for good) reported Lost
// for a worker the core did not know yet, which the core ignores; Join
// then added a worker already gone, and jobs sent to it hung until
// Shutdown. The same held for a draining Heartbeat (Retire) in that
// window. The transport now holds such an event back until Join returned.
func TestLostBeforeJoinWaitsForJoin(t *testing.T) {
	tests := []struct {
		name   string
		during []string // what the sink sees while Join runs
		after  []string // what follows Join's return
		act    func(tr *transport, m *member)
	}{
		{"drop", nil, []string{"lost"}, func(tr *transport, m *member) {
			tr.drop(m, errors.New("local worker process exited: exit status 1"), false)
		}},
		{"bye", nil, []string{"lost"}, func(tr *transport, m *member) { tr.left(m) }},
		{"draining", nil, []string{"retire"}, func(tr *transport, m *member) {
			tr.onHeartbeat(&wire.Heartbeat{WorkerID: m.wid, Draining: true})
		}},
		// The pool is broken again once the member is lost: its Join
		// cleared the first Broken.
		{"connection-closed", []string{"broken"}, []string{"lost", "broken"}, func(tr *transport, m *member) {
			tr.nc.Close()
			tr.checkClosed()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newRecordSink(true)
			tr := newTestTransport(t, sink)
			helloDone := make(chan struct{})
			go func() {
				defer close(helloDone)
				tr.onHello(&wire.Hello{Version: wire.Version, WorkerID: "w1", PID: 42, MaxWorks: 2})
			}()
			w := <-sink.inJoin // the member is in t.members; Join has not returned
			m := tr.member("w1")
			if m == nil || xport.Worker(m) != w {
				close(sink.hold)
				<-helloDone
				t.Fatalf("member %v, Join got %v", m, w)
			}
			tt.act(tr, m)
			early := sink.log()
			close(sink.hold)
			<-helloDone
			if want := append([]string{"join"}, tt.during...); !slices.Equal(early, want) {
				t.Fatalf("while Join ran, the sink saw %q; want %q (nothing about the worker before Join returns)", early, want)
			}
			want := append(append([]string{"join"}, tt.during...), "joined")
			if got, want := sink.log(), append(want, tt.after...); !slices.Equal(got, want) {
				t.Fatalf("sink saw %q, want %q", got, want)
			}
		})
	}
}

// TestResyncMarksResends: after a worker re-announces itself, the jobs
// the executor sends it again travel in Runs marked Resend (the worker
// answers those it cannot place with CodeResultLost instead of running
// them), and new jobs never share such a Run.
func TestResyncMarksResends(t *testing.T) {
	sink := newRecordSink(false)
	tr, err := newTransport(xport.Config{}, &execConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Start(ctx, sink); err != nil {
		t.Fatal(err)
	}
	defer tr.Close(ctx)

	nc, err := nats.Connect(tr.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The test plays worker w1, with the pool key the executor made.
	box, err := seal.New(seal.Config{Keys: [][]byte{tr.cfg.key}, Pool: tr.cfg.pool, ID: "w1", Role: seal.Worker})
	if err != nil {
		t.Fatal(err)
	}
	w1 := newSealConn(nc, box, tr.subj, slog.New(slog.DiscardHandler), "test worker", "w1")
	sub, err := nc.SubscribeSync(tr.subj.worker("w1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	hello, err := wire.Marshal(&wire.Hello{Version: wire.Version, WorkerID: "w1", PID: 42, MaxWorks: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Like a worker, w1 answers discover requests with its Hello: a
	// sealed executor joins on that answer.
	dsub, err := nc.Subscribe(tr.subj.discover(), w1.handler(false, func(msg *nats.Msg, _ string) {
		w1.Publish(msg.Reply, hello)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer dsub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	announce := func() {
		t.Helper()
		if err := w1.Publish(tr.subj.hello(), hello); err != nil {
			t.Fatal(err)
		}
	}
	next := func() *wire.Run {
		t.Helper()
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		plain, _, err := box.Open(msg.Subject, msg.Data, true)
		if err != nil {
			t.Fatal(err)
		}
		m, err := wire.Unmarshal(plain)
		if err != nil {
			t.Fatal(err)
		}
		run, ok := m.(*wire.Run)
		if !ok {
			t.Fatalf("got a %v, want a Run", m.Kind())
		}
		return run
	}
	ids := func(run *wire.Run) []uint64 {
		var out []uint64
		for _, j := range run.Jobs {
			out = append(out, j.ID)
		}
		return out
	}

	announce()
	m := (<-sink.inJoin).(*member)
	job := func(id uint64) *wire.Job { return &wire.Job{ID: id, Name: "w", Args: [][]byte{{0xf6}}} }
	send := func(jobs ...*wire.Job) { sink.sent(m, jobs); m.Send(jobs) } // as the core does
	send(job(1), job(2))
	if run := next(); run.Resend || !slices.Equal(ids(run), []uint64{1, 2}) {
		t.Fatalf("first Run: resend %v, jobs %v; want a normal Run of 1, 2", run.Resend, ids(run))
	}
	announce() // the same process again: as after a reconnect
	if run := next(); !run.Resend || !slices.Equal(ids(run), []uint64{1, 2}) {
		t.Fatalf("after the re-announcement: resend %v, jobs %v; want a Resend Run of 1, 2", run.Resend, ids(run))
	}
	send(job(3))
	if run := next(); run.Resend || !slices.Equal(ids(run), []uint64{3}) {
		t.Fatalf("a new job: resend %v, jobs %v; want a normal Run of 3", run.Resend, ids(run))
	}
}

// TestStartWaitsForTheJoinToReturn: Start waits for WithPoolSize workers
// to join; it used to count a worker as soon as its Hello was taken in,
// before the core's Join returned, so the first works were spread over
// the workers joined so far (TestBalancers, rarely, found a worker that
// got none of 60 works).
func TestStartWaitsForTheJoinToReturn(t *testing.T) {
	sink := newRecordSink(true)
	tr := newTestTransport(t, sink)
	tr.xc.PoolSize = 1
	helloDone := make(chan struct{})
	go func() {
		defer close(helloDone)
		tr.onHello(&wire.Hello{Version: wire.Version, WorkerID: "w1", PID: 42, MaxWorks: 2})
	}()
	<-sink.inJoin // the member is in t.members; Join has not returned
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := tr.waitJoined(ctx)
	cancel()
	if err == nil {
		close(sink.hold)
		<-helloDone
		t.Fatal("waitJoined returned while the worker's Join had not")
	}
	close(sink.hold)
	<-helloDone
	if err := tr.waitJoined(context.Background()); err != nil {
		t.Fatalf("waitJoined once the Join returned: %v", err)
	}
}
