package cluster

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
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
	done   []wire.Result // what Done delivered
	causes []error       // what Lost reported
	lost   chan struct{} // a token per Lost, for the tests that wait for one
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
	s := &recordSink{inJoin: make(chan xport.Worker, 4), lost: make(chan struct{}, 8)}
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

func (s *recordSink) Retire(xport.Worker) { s.add("retire") }
func (s *recordSink) Done(w xport.Worker, rs []wire.Result) {
	s.mu.Lock()
	s.done = append(s.done, rs...)
	if s.out != nil { // answered: no longer outstanding
		s.out[w] = slices.DeleteFunc(s.out[w], func(j *wire.Job) bool {
			return slices.ContainsFunc(rs, func(r wire.Result) bool { return r.ID == j.ID })
		})
	}
	s.mu.Unlock()
	s.add("done")
}
func (s *recordSink) Started(xport.Worker, []uint64) { s.add("started") }
func (s *recordSink) Lost(_ xport.Worker, cause error) {
	s.mu.Lock()
	s.causes = append(s.causes, cause)
	s.mu.Unlock()
	s.add("lost")
	select {
	case s.lost <- struct{}{}:
	default:
	}
}
func (s *recordSink) Broken(error) { s.add("broken") }

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
		{"bye", nil, []string{"lost"}, func(tr *transport, m *member) { tr.left(m, false) }},
		{"killed elsewhere", nil, []string{"lost"}, func(tr *transport, m *member) { tr.left(m, true) }},
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
	tr := startTestTransport(t, sink)
	w1 := newFakeWorker(t, tr, "w1", 42)
	next := func() *wire.Run {
		t.Helper()
		m := w1.next()
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
	announce := w1.announce

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

// startTestTransport starts an executor transport on its own embedded
// server (sealed, with the key it made), closed when the test ends.
func startTestTransport(t *testing.T, sink xport.Sink, configure ...func(*xport.Config)) *transport {
	t.Helper()
	var xc xport.Config
	for _, f := range configure {
		f(&xc)
	}
	tr, err := newTransport(xc, &execConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Start(ctx, sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr.Close(ctx)
	})
	return tr
}

// fakeWorker is a test playing a worker of tr's pool on raw NATS, with the
// pool key tr made: it announces itself and reads what executors send it.
type fakeWorker struct {
	t     *testing.T
	tr    *transport
	box   *seal.Box
	conn  *sealConn
	sub   *nats.Subscription
	hello []byte
}

// newFakeWorker connects worker wid of process pid; like a worker, it
// answers discover requests with its Hello (a sealed executor joins on
// that answer). It announces nothing yet.
func newFakeWorker(t *testing.T, tr *transport, wid string, pid int) *fakeWorker {
	t.Helper()
	nc, err := nats.Connect(tr.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	box, err := seal.New(seal.Config{Keys: [][]byte{tr.cfg.key}, Pool: tr.cfg.pool, ID: wid, Role: seal.Worker})
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWorker{t: t, tr: tr, box: box, conn: newSealConn(nc, box, tr.subj, slog.New(slog.DiscardHandler), "test worker", wid)}
	if w.sub, err = nc.SubscribeSync(tr.subj.worker(wid)); err != nil {
		t.Fatal(err)
	}
	if w.hello, err = wire.Marshal(&wire.Hello{Version: wire.Version, WorkerID: wid, PID: pid, MaxWorks: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(tr.subj.discover(), w.conn.handler(false, func(msg *nats.Msg, _ string) {
		w.conn.Publish(msg.Reply, w.hello)
	})); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// announce publishes the worker's Hello, as at its start and after each
// reconnect.
func (w *fakeWorker) announce() {
	w.t.Helper()
	if err := w.conn.Publish(w.tr.subj.hello(), w.hello); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next message an executor sent the worker.
func (w *fakeWorker) next() wire.Msg {
	w.t.Helper()
	msg, err := w.sub.NextMsg(5 * time.Second)
	if err != nil {
		w.t.Fatal(err)
	}
	plain, _, err := w.box.Open(msg.Subject, msg.Data, true)
	if err != nil {
		w.t.Fatal(err)
	}
	m, err := wire.Unmarshal(plain)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

// TestKillLostInAnOutageIsSentAgain: an executor that killed a worker
// (a work past its deadline and the kill grace) ignored the worker's
// later Hellos until its kill arrived; a kill lost in a NATS outage never
// did, so the worker lived on, ignored, and a local worker's slot was
// never restarted: the stress mix with a NATS restart stalled with works
// queued and no worker. The executor now sends the kill again to a killed
// worker that announces itself, and does not take it back.
func TestKillLostInAnOutageIsSentAgain(t *testing.T) {
	sink := newRecordSink(false)
	tr := startTestTransport(t, sink)
	w1 := newFakeWorker(t, tr, "w1", 42)
	wantKill := func(when string) {
		t.Helper()
		m, ok := w1.next().(*wire.Shutdown)
		if !ok || m.Graceful {
			t.Fatalf("%s: got %+v, want Shutdown{Graceful: false}", when, m)
		}
	}
	w1.announce()
	m := (<-sink.inJoin).(*member)
	m.Kill(errors.New("test: a work ran past its deadline"))
	wantKill("the kill") // lost on the way, say
	w1.announce()        // the same process, after its reconnect
	wantKill("after the worker announced itself again")
	w1.announce()
	wantKill("after another announcement")
	joins := 0
	for _, e := range sink.log() {
		if e == "join" {
			joins++
		}
	}
	if joins != 1 {
		t.Fatalf("the worker joined %d times, want once: a killed worker is not taken back", joins)
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

// TestWorkerHeardAgainIsReachableOnlyOnceResynchronised: a kill-grace
// timer asks the member whether it can be reached before it kills the
// worker (Unreachable). A worker heard again after a silence, or after
// this executor's own reconnect, was reachable at once, although what was
// lost meanwhile (a work's answer, above all) comes back only with the
// resend that follows its Hello: a work that had honoured its deadline in
// an outage was killed in that window, with its worker (the stress mix's
// two executors sharing two workers through a NATS restart). The member
// now stays unreachable until it has resynchronised (a heartbeat after a
// silence asks for its Hello) and the resend's answers have had time to
// come.
func TestWorkerHeardAgainIsReachableOnlyOnceResynchronised(t *testing.T) {
	tests := []struct {
		name    string
		silence func(tr *transport, m *member) // then the worker is heard again
	}{
		{"a silence of the worker's", func(tr *transport, m *member) {
			m.seen.Store(int64(tr.now() - tr.xc.HeartbeatTimeout*6/10))
			tr.onHeartbeat(&wire.Heartbeat{WorkerID: m.wid, Load: 1, MaxWorks: 4})
		}},
		{"this executor's reconnect", func(tr *transport, m *member) {
			seen := ^uint64(0) // not the connection's count: as after a reconnect
			tr.checkReconnect(&seen)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newRecordSink(false)
			tr := startTestTransport(t, sink)
			w1, m, _, _ := joinedWithAJob(t, tr, sink, "w")
			// Reachable (once the answers to a resync its repeated Hellos
			// may have caused have had time to come).
			waitReachable := func(when string) {
				t.Helper()
				for deadline := time.Now().Add(5 * time.Second); m.Unreachable(nil) != 0; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: still unreachable after 5s", when)
					}
				}
			}
			waitReachable("joined")
			tt.silence(tr, m)
			if d := m.Unreachable(nil); d == 0 {
				t.Fatal("heard again, not resynchronised: Unreachable = 0, so a kill timer would kill a worker whose answers the resend would bring")
			}
			// Asked for its Hello, the worker answers (the fake answers
			// discover requests), and the executor resends what it awaits.
			if run, ok := w1.next().(*wire.Run); !ok || !run.Resend {
				t.Fatalf("after the silence: %+v, want a Resend Run", run)
			}
			waitReachable("resynchronised") // once the resend's answers have had time
			// A member heard for a whole heartbeat timeout without
			// resynchronising (a draining worker answers no discover) is
			// reachable: its stubborn works are killed as they would be.
			m.unsyncedAt.Store(int64(tr.now() - tr.xc.HeartbeatTimeout - time.Millisecond))
			if d := m.Unreachable(nil); d != 0 {
				t.Fatalf("unsynced for a whole heartbeat timeout while heard: Unreachable = %v, want 0", d)
			}
		})
	}
}

// TestStubbornWorkOfAWorkerDroppedForSilenceIsSettledOnItsReturn: a work
// whose kill came due while its worker could not be reached waited
// (Unreachable); when the heartbeat timeout then dropped the worker, the
// kill was forgotten, so a work that ignored its cancel ran on, holding a
// slot, once the worker came back. The executor now asks the returned
// worker again for each such work (a resend, after the cancel): one it
// answers had ended, and costs nothing; one it does not answer within the
// kill grace still runs, and costs its worker, as rule 8 says.
func TestStubbornWorkOfAWorkerDroppedForSilenceIsSettledOnItsReturn(t *testing.T) {
	for _, ended := range []bool{false, true} {
		name := "the work still runs"
		if ended {
			name = "the work had ended"
		}
		t.Run(name, func(t *testing.T) {
			sink := newRecordSink(false)
			tr := startTestTransport(t, sink, func(xc *xport.Config) { xc.KillGrace = 200 * time.Millisecond })
			w1, m, job, run := joinedWithAJob(t, tr, sink, "stubborn")
			// Its deadline and the kill grace pass while the worker is
			// silent: the kill waits.
			m.seen.Store(int64(tr.now() - tr.xc.HeartbeatTimeout*6/10))
			if m.Unreachable(job) == 0 {
				t.Fatal("a silent worker: Unreachable = 0")
			}
			// The heartbeat timeout drops it (the core fails the work).
			tr.drop(m, errors.New("lost heartbeat"), false)
			if c, ok := w1.next().(*wire.Cancel); !ok || !slices.Equal(c.IDs, []uint64{1}) {
				t.Fatalf("at the drop: %+v, want the Cancel of job 1", c)
			}
			w1.announce() // back, the same process
			m2 := (<-sink.inJoin).(*member)
			// Its cancel again, and job 1 resent, to ask whether it still
			// runs (in either order: the worker skips a resent job it runs).
			var cancelled, resent bool
			for range 2 {
				switch m := w1.next().(type) {
				case *wire.Cancel:
					cancelled = slices.Equal(m.IDs, []uint64{1})
				case *wire.Run:
					resent = m.Resend && len(m.Jobs) == 1 && m.Jobs[0].ID == 1
				default:
					t.Fatalf("at the return: a %v", m.Kind())
				}
			}
			if !cancelled || !resent {
				t.Fatalf("at the return: cancelled %v, resent %v; want job 1's Cancel and its resend", cancelled, resent)
			}
			if !ended {
				if s, ok := w1.next().(*wire.Shutdown); !ok || s.Graceful {
					t.Fatalf("the work still runs past the kill grace: %+v, want Shutdown{Graceful: false}", s)
				}
				return
			}
			b, err := wire.Marshal(&wire.Results{WorkerID: "w1", Results: []wire.Result{wire.Failed(1, 1, &wire.Error{Code: wire.CodeCanceled, Message: "context canceled"})}})
			if err != nil {
				t.Fatal(err)
			}
			if err := w1.conn.Publish(run.ReplyTo, b); err != nil {
				t.Fatal(err)
			}
			// The kill grace passes, and more: nothing comes.
			if msg, err := w1.sub.NextMsg(4 * tr.xc.KillGrace); err == nil {
				t.Fatalf("the work had ended, yet the worker got a message: %s", msg.Data)
			}
			if tr.member("w1") != m2 {
				t.Fatal("the worker is no longer a member")
			}
		})
	}
}

// joinedWithAJob has fake worker w1 (pid 42) join tr, and sends it job 1,
// of work name, as the core would; it returns the worker, its member, the
// job and the Run that brought it.
func joinedWithAJob(t *testing.T, tr *transport, sink *recordSink, name string) (*fakeWorker, *member, *wire.Job, *wire.Run) {
	t.Helper()
	w1 := newFakeWorker(t, tr, "w1", 42)
	w1.announce()
	m := (<-sink.inJoin).(*member)
	job := &wire.Job{ID: 1, Name: name, Args: [][]byte{{0xf6}}}
	sink.sent(m, []*wire.Job{job})
	m.Send([]*wire.Job{job})
	run, ok := w1.next().(*wire.Run)
	if !ok || run.Resend {
		t.Fatalf("first message: %+v, want the job's Run", run)
	}
	return w1, m, job, run
}

// TestJobsSentAsAWorkerLeftRunElsewhere: a job sent to a worker just as it
// left (a local worker told to leave has no accept window) never reached
// it; its executor failed it at the Bye with a *WorkerError ("worker left
// without answering"). The Bye now names the last job the worker received
// from each executor: the jobs above it go back to the queue (answered as
// refused before they ran, which uses up no retry), and only those it may
// have received fail.
func TestJobsSentAsAWorkerLeftRunElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name     string
		killed   bool              // told by a Killed heartbeat rather than a Bye
		seen     map[string]uint64 // the Bye's or heartbeat's, with "" standing for this executor's inbox
		requeued []uint64
		cause    string // of the Lost, "" for none
	}{
		{"job 2 never arrived", false, map[string]uint64{"": 1}, []uint64{2}, "left without answering 1 works"},
		{"neither arrived", false, map[string]uint64{"": 0}, []uint64{1, 2}, ""},
		{"both arrived", false, map[string]uint64{"": 2}, nil, "left without answering 2 works"},
		{"no word of this executor", false, map[string]uint64{"aplex.other.x.inbox": 9}, nil, "left without answering 2 works"},
		// Killed by another executor of the pool: the same, told by the
		// heartbeat that says so (wire version 6), before its Bye.
		{"killed: job 2 never arrived", true, map[string]uint64{"": 1}, []uint64{2}, "killed by another executor of the pool: 1 works"},
		{"killed: both arrived", true, map[string]uint64{"": 2}, nil, "killed by another executor of the pool: 2 works"},
		{"killed: no word of this executor", true, nil, nil, "killed by another executor of the pool: 2 works"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newRecordSink(false)
			tr := startTestTransport(t, sink)
			_, m, _, _ := joinedWithAJob(t, tr, sink, "work")
			job2 := &wire.Job{ID: 2, Name: "work", Args: [][]byte{{0xf6}}}
			sink.sent(m, []*wire.Job{job2})
			seen := map[string]uint64{}
			for k, v := range tc.seen {
				if k == "" {
					k = tr.inbox
				}
				seen[k] = v
			}
			if tc.killed {
				tr.onHeartbeat(&wire.Heartbeat{WorkerID: "w1", MaxWorks: 2, Draining: true, Killed: true, Seen: seen})
			} else {
				tr.onBye(&wire.Bye{WorkerID: "w1", Seen: seen})
			}
			// The drop runs once the subscriptions have handed over what
			// came before the Bye or heartbeat (a NATS barrier).
			select {
			case <-sink.lost:
			case <-time.After(5 * time.Second):
				t.Fatalf("the member was not dropped: %v", sink.log())
			}
			sink.mu.Lock()
			defer sink.mu.Unlock()
			var requeued []uint64
			for _, r := range sink.done {
				if !wire.NeverRan(r.Items) {
					t.Errorf("job %d answered %+v, want it refused before it ran", r.ID, r.Items)
				}
				requeued = append(requeued, r.ID)
			}
			if !slices.Equal(requeued, tc.requeued) {
				t.Errorf("requeued %v, want %v", requeued, tc.requeued)
			}
			switch cause := sink.causes[0]; {
			case tc.cause == "" && cause != nil:
				t.Errorf("Lost(%v), want a clean leave: nothing left unanswered", cause)
			case tc.cause != "" && (cause == nil || !strings.Contains(cause.Error(), tc.cause)):
				t.Errorf("Lost(%v), want %q", cause, tc.cause)
			}
		})
	}
}
