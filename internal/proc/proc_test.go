//go:build linux

package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/testutil"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

func TestStartJoinsEveryWorker(t *testing.T) {
	tr, s, ws := start(t, Config{Size: 3})
	if got, want := tr.MaxMessage(), wire.DefaultMaxFrame; got != want {
		t.Errorf("MaxMessage = %d, want %d", got, want)
	}
	pids := map[int]bool{}
	for slot, w := range ws {
		info := w.Info()
		if w.Slot() != slot || info.ID != "proc-"+strconv.Itoa(slot) || w.Capacity() != 50 {
			t.Errorf("worker %d: slot %d, info %+v, capacity %d", slot, w.Slot(), info, w.Capacity())
		}
		if info.PID <= 0 || info.PID == os.Getpid() || pids[info.PID] {
			t.Errorf("worker %d: bad or repeated pid %d", slot, info.PID)
		}
		pids[info.PID] = true
		// The child knows its slot, and no longer passes for an unserved
		// worker (programs it starts must not think they are workers).
		j := job("slot")
		w.Send([]*wire.Job{j})
		if got, want := string(s.collect(1)[j.ID].Items[0].Value), fmt.Sprint(slot, true, false); got != want {
			t.Errorf("worker %d: ChildSlot, IsChild = %s, want %s", slot, got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	_, s, ws := start(t, Config{Size: 2})
	// Many jobs in few Sends: they are batched into few frames each way.
	const n = 500
	want := map[uint64]string{}
	for i := 0; i < n; i += 50 {
		batch := make([]*wire.Job, 50)
		for k := range batch {
			v := fmt.Sprint("value ", i+k)
			batch[k] = job("echo", v)
			want[batch[k].ID] = v
		}
		ws[i/50%2].Send(batch)
	}
	for id, r := range s.collect(n) {
		if len(r.Items) != 1 || r.Items[0].Err != nil || string(r.Items[0].Value) != want[id] {
			t.Fatalf("job %d = %+v, want %q", id, r, want[id])
		}
	}
}

func TestChunk(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1})
	j := job("echo", "a", "b", "c", "d", "e")
	ws[0].Send([]*wire.Job{j})
	r := s.collect(1)[j.ID]
	var got []string
	for _, o := range r.Items {
		got = append(got, string(o.Value))
	}
	if strings.Join(got, "") != "abcde" {
		t.Errorf("items = %q", got)
	}
}

func TestCancelReachesChild(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1})
	j := job("sleep", "", "")
	ws[0].Send([]*wire.Job{j})
	ws[0].Cancel([]uint64{j.ID})
	for i, o := range s.collect(1)[j.ID].Items {
		if o.Err == nil || o.Err.Code != wire.CodeCanceled {
			t.Errorf("item %d = %+v, want CodeCanceled", i, o.Err)
		}
	}
}

// TestSendNeverBlocks stops the child so that the pipe fills: Send must
// still return at once, and everything must arrive, in order, once the
// child runs again.
func TestSendNeverBlocks(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1})
	pid := ws[0].Info().PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	const n = 150 // × 30 KiB: well over the 1 MiB pipe
	want := map[uint64]string{}
	begin := time.Now()
	for i := range n {
		v := fmt.Sprintf("%05d", i) + strings.Repeat("x", 30<<10)
		j := job("echo", v)
		want[j.ID] = v
		ws[0].Send([]*wire.Job{j})
		if i == n/2 {
			ws[0].Cancel([]uint64{j.ID}) // queued behind the stuck bytes
		}
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Sends to a stopped child took %v", d)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for id, r := range s.collect(n) {
		if string(r.Items[0].Value) != want[id] {
			t.Fatalf("job %d: got %d bytes, want %.5s…", id, len(r.Items[0].Value), want[id])
		}
	}
}

func TestJobTooLargeFailsLocally(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1, MaxFrame: minFrame})
	big, ok := job("echo", strings.Repeat("x", minFrame)), job("echo", "fine")
	ws[0].Send([]*wire.Job{big, ok})
	got := s.collect(2)
	if e := got[big.ID].Items[0].Err; e == nil || e.Code != wire.CodeTooLarge {
		t.Errorf("oversize job = %+v, want CodeTooLarge", got[big.ID])
	}
	if o := got[ok.ID].Items[0]; string(o.Value) != "fine" {
		t.Errorf("job behind it = %+v", o)
	}
}

// lostAndReplaced waits for w's loss and for its replacement in the same
// slot, checks the replacement works, and returns the cause.
func lostAndReplaced(t *testing.T, s *fakeSink, w xport.Worker) error {
	t.Helper()
	ev := recv(t, s.lost, "Lost")
	if ev.w != w {
		t.Fatalf("Lost(%v), want Lost(%v)", ev.w.Info(), w.Info())
	}
	nw := recv(t, s.joined, "Join of the replacement")
	if nw.Slot() != w.Slot() || nw.Info().PID == w.Info().PID {
		t.Errorf("replacement: slot %d pid %d; lost slot %d pid %d", nw.Slot(), nw.Info().PID, w.Slot(), w.Info().PID)
	}
	j := job("echo", "after")
	nw.Send([]*wire.Job{j})
	if r := s.collect(1)[j.ID]; string(r.Items[0].Value) != "after" {
		t.Errorf("replacement answered %+v", r)
	}
	return ev.cause
}

func TestExitStatus(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1})
	ws[0].Send([]*wire.Job{job("exit", "3")})
	cause := lostAndReplaced(t, s, ws[0])
	var ee *ExitError
	if !errors.As(cause, &ee) || ee.Status != "exit status 3" || ee.Slot != 0 || ee.PID != ws[0].Info().PID || ee.Reason != "" {
		t.Fatalf("cause = %#v", cause)
	}
	if want := fmt.Sprintf("worker 0 (pid %d): exit status 3", ee.PID); ee.Error() != want {
		t.Errorf("Error() = %q, want %q", ee.Error(), want)
	}
}

func TestKilledFromOutside(t *testing.T) {
	_, s, ws := start(t, Config{Size: 2})
	if err := syscall.Kill(ws[1].Info().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *ExitError
	if cause := lostAndReplaced(t, s, ws[1]); !errors.As(cause, &ee) || ee.Status != "signal: killed" || ee.Slot != 1 {
		t.Errorf("cause = %v", cause)
	}
}

func TestKillReason(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1})
	reason := errors.New("work ignored its cancellation")
	ws[0].Send([]*wire.Job{job("ignore")})
	ws[0].Kill(reason)
	cause := lostAndReplaced(t, s, ws[0])
	var ee *ExitError
	if !errors.Is(cause, reason) || !errors.As(cause, &ee) || ee.Status != "signal: killed" || !strings.Contains(ee.Error(), "killed: work ignored its cancellation") {
		t.Errorf("cause = %v", cause)
	}
}

func TestProtocolError(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1})
	ws[0].Send([]*wire.Job{job("garbage")})
	if cause := lostAndReplaced(t, s, ws[0]); !errors.Is(cause, ErrProtocol) || !errors.Is(cause, wire.ErrMalformed) {
		t.Errorf("cause = %v", cause)
	}
}

func TestOutputIsLabelled(t *testing.T) {
	out := &testutil.Buffer{}
	tr, s, ws := start(t, Config{Size: 1, Output: out})
	j := job("print", "hello from work")
	ws[0].Send([]*wire.Job{j})
	if r := s.collect(1)[j.ID]; string(r.Items[0].Value) != "hello from work" {
		t.Fatalf("printing corrupted the protocol: %+v", r)
	}
	prefix := fmt.Sprintf("[aplex worker 0 pid %d] ", ws[0].Info().PID)
	closeAndCheck(t, tr, s) // flushes the unterminated stderr line
	got := out.String()
	for _, line := range []string{prefix + "hello from work\n", prefix + "unterminated\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("output %q lacks %q", got, line)
		}
	}
}

func TestRecycle(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1, RecycleAfter: 2})
	old := ws[0]
	j1, j2 := job("echo", "1"), job("echo", "2")
	old.Send([]*wire.Job{j1})
	old.Send([]*wire.Job{j2})
	if w := recv(t, s.retired, "Retire"); w != old {
		t.Fatalf("retired %v", w.Info())
	}
	nw := recv(t, s.joined, "Join of the successor")
	if nw.Slot() != 0 || nw.Info().PID == old.Info().PID {
		t.Errorf("successor slot %d pid %d", nw.Slot(), nw.Info().PID)
	}
	s.collect(2) // the old worker finishes what it has...
	old.Close()  // ...and the core closes it once idle.
	if ev := recv(t, s.lost, "Lost of the retired worker"); ev.w != old || ev.cause != nil {
		t.Errorf("Lost(%v, %v), want the old worker with nil cause", ev.w.Info(), ev.cause)
	}
	j3 := job("echo", "3")
	nw.Send([]*wire.Job{j3})
	if r := s.collect(1)[j3.ID]; string(r.Items[0].Value) != "3" {
		t.Errorf("successor answered %+v", r)
	}
}

func TestMemoryLimit(t *testing.T) {
	const limit = 64 << 20
	_, s, ws := start(t, Config{Size: 1, MemoryLimit: limit})
	ws[0].Send([]*wire.Job{job("alloc", "200")})
	cause := lostAndReplaced(t, s, ws[0])
	var me *MemoryLimitError
	var ee *ExitError
	if !errors.As(cause, &me) || me.Limit != limit || me.RSS <= limit || !errors.As(cause, &ee) || ee.Status != "signal: killed" {
		t.Fatalf("cause = %v", cause)
	}
	if !strings.Contains(cause.Error(), "killed: memory limit 64 MiB exceeded (RSS ") {
		t.Errorf("message = %q", cause.Error())
	}
}

func TestHandshakeFailures(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		timeout time.Duration
		want    []string
		is      error
	}{
		{"exits", "/bin/true", waitFor, []string{"exited before the handshake (exit status 0)", "aplex.Main()", "/bin/true"}, ErrHandshake},
		{"silent", script("silent", "exec sleep 30"), 200 * time.Millisecond, []string{"no handshake within 200ms", "aplex.Main()"}, ErrHandshake},
		{"version", script("version", `printf '\000\000\000\002\011\001' >&4; exec sleep 30`), waitFor, []string{"protocol version", "rebuild"}, ErrHandshake},
		{"garbage", script("garbage", `printf 'garbage!' >&4; exec sleep 30`), waitFor, []string{"bad handshake", "aplex.Main()"}, ErrHandshake},
		{"missing", filepath.Join(dir, "nosuch"), waitFor, []string{"nosuch", "no such file"}, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := New(Config{Size: 2, Path: tt.path, StartTimeout: tt.timeout, Output: &testutil.Buffer{}})
			if err != nil {
				t.Fatal(err)
			}
			s := newSink(t)
			begin := time.Now()
			err = tr.Start(context.Background(), s)
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if d := time.Since(begin); d > 2*time.Second {
				t.Errorf("Start took %v", d)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if len(s.joined) != 0 {
				t.Error("Join called by a failed Start")
			}
			if err := tr.Close(context.Background()); err != nil {
				t.Errorf("Close after a failed Start: %v", err)
			}
		})
	}
}

func TestBrokenThenRecovers(t *testing.T) {
	fail := filepath.Join(t.TempDir(), "fail")
	_, s, ws := start(t, Config{Size: 1, Env: []string{failFileEnv + "=" + fail}})
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(ws[0].Info().PID, syscall.SIGKILL)
	recv(t, s.lost, "Lost")
	err := recv(t, s.broken, "Broken")
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "exit status 7") {
		t.Errorf("Broken(%v)", err)
	}
	os.Remove(fail)
	if w := recv(t, s.joined, "Join after recovery"); w.Slot() != 0 {
		t.Errorf("recovered in slot %d", w.Slot())
	}
}

func TestCloseIsClean(t *testing.T) {
	tr, s, ws := start(t, Config{Size: 3})
	for _, w := range ws {
		w.Send([]*wire.Job{job("echo", "x")})
	}
	s.collect(3)
	closeAndCheck(t, tr, s)
	for range ws {
		select {
		case ev := <-s.lost:
			if ev.cause != nil {
				t.Errorf("Lost(%v, %v) at Close, want nil cause", ev.w.Info(), ev.cause)
			}
		default:
			t.Fatal("Close returned before every worker was reported lost")
		}
	}
}

func TestCloseKillsStuckWorkers(t *testing.T) {
	tr, s, ws := start(t, Config{Size: 2})
	ws[0].Send([]*wire.Job{job("ignore")})
	// Long enough for the idle worker to exit cleanly on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	begin := time.Now()
	if err := tr.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	for range 2 {
		ev := recv(t, s.lost, "Lost")
		var ee *ExitError
		switch {
		case ev.w == ws[1] && ev.cause != nil:
			t.Errorf("idle worker: Lost cause %v, want nil", ev.cause)
		case ev.w == ws[0] && (!errors.As(ev.cause, &ee) || !errors.Is(ev.cause, context.DeadlineExceeded)):
			t.Errorf("stuck worker: Lost cause %v", ev.cause)
		}
	}
	closeAndCheck(t, tr, s)
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{Size: 0},
		{Size: 1, RecycleAfter: -1},
		{Size: 1, MemoryLimit: -1},
		{Size: 1, StartTimeout: -1},
		{Size: 1, HeartbeatTimeout: -1},
		{Size: 1, HeartbeatTimeout: time.Millisecond},
		{Size: 1, MaxFrame: 100},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	t.Setenv(EnvRole, roleProcess)
	if _, err := New(Config{Size: 1}); err == nil || !strings.Contains(err.Error(), "aplex.Main()") {
		t.Errorf("New in a worker = %v", err)
	}
}

// TestFrozenWorkerIsKilledAtHeartbeatTimeout: a stopped child sends no
// heartbeat; the transport kills it with a HeartbeatError and replaces it.
func TestFrozenWorkerIsKilledAtHeartbeatTimeout(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1, HeartbeatTimeout: 200 * time.Millisecond})
	ws[0].Send([]*wire.Job{job("sleep")})
	if err := syscall.Kill(ws[0].Info().PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cause := lostAndReplaced(t, s, ws[0])
	var he *HeartbeatError
	var ee *ExitError
	if !errors.As(cause, &he) || !errors.As(cause, &ee) || ee.WorkerReason() != "killed: no heartbeat for 200ms (signal: killed)" {
		t.Errorf("cause = %v", cause)
	}
}

// TestIdleWorkerBeats: a worker with nothing to do is not taken for frozen.
func TestIdleWorkerBeats(t *testing.T) {
	// Generous: a loaded machine (CI, -race) may not schedule the child's
	// beat for tens of milliseconds.
	_, s, ws := start(t, Config{Size: 1, HeartbeatTimeout: 300 * time.Millisecond})
	select {
	case ev := <-s.lost:
		t.Fatalf("idle worker lost: %v", ev.cause)
	case <-time.After(1200 * time.Millisecond): // four timeouts of idleness
	}
	j := job("echo", "alive")
	ws[0].Send([]*wire.Job{j})
	if r := s.collect(1)[j.ID]; string(r.Items[0].Value) != "alive" {
		t.Fatalf("after idling: %+v", r)
	}
}

// TestUnwritableWorkerIsLost: a child that closed its request pipe (fd 3)
// is killed and reported lost as soon as a write to it fails.
func TestUnwritableWorkerIsLost(t *testing.T) {
	_, s, ws := start(t, Config{Size: 1})
	ws[0].Send([]*wire.Job{job("closein")})
	if r := <-s.results; r.Items[0].Err != nil {
		t.Fatalf("closein: %v", r.Items[0].Err)
	}
	ws[0].Send([]*wire.Job{job("noop")})
	cause := lostAndReplaced(t, s, ws[0])
	var ee *ExitError
	if !errors.Is(cause, errUnwritable) || !errors.As(cause, &ee) || !strings.Contains(ee.WorkerReason(), "request pipe is broken") {
		t.Errorf("cause = %v", cause)
	}
}

// TestUnreadCountsPipeBytes: the watchdog does not take a worker whose
// replies wait unread for silent.
func TestUnreadCountsPipeBytes(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if n := unread(r); n != 0 {
		t.Fatalf("empty pipe: %d", n)
	}
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if n := unread(r); n != 5 {
		t.Fatalf("unread = %d, want 5", n)
	}
}
