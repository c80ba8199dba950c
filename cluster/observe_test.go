package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/obstest"
	"github.com/aplex-go/aplex/internal/testutil"
)

// TestObserverOnClusterExecutor: a cluster executor reports its worker
// joining, each work started on it and finished, and the worker lost when
// it is killed; the executor's logger gets the loss with worker, pid and
// reason.
func TestObserverOnClusterExecutor(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	p := spawnWorker(t, url, "observe", "obs-1")
	rec := &obstest.Recorder{}
	var logs testutil.Buffer
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("observe"), aplex.WithPoolSize(1),
		aplex.WithHeartbeatTimeout(testTimeout), aplex.WithObserver(rec),
		aplex.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	f, err := aplex.Submit(context.Background(), ex, whoami, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if who, err := get(t, f); err != nil || worker(who) != "obs-1" {
		t.Fatalf("whoami = %q, %v", who, err)
	}
	fin := rec.Works(aplex.WorkFinished)
	if len(fin) != 1 || fin[0].Executor != "cluster" || fin[0].Worker != "obs-1" || fin[0].PID != p.pid() || fin[0].Outcome != aplex.OutcomeOK || fin[0].Attempt != 1 {
		t.Fatalf("finished: %+v", rec.Works(0))
	}
	if j := rec.Workers(aplex.WorkerJoined); len(j) != 1 || j[0].Worker != "obs-1" || j[0].PID != p.pid() {
		t.Fatalf("joined: %+v", rec.Workers(0))
	}
	if err := kill(p.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !rec.Await(ctx, func(r *obstest.Recorder) bool { return len(r.Workers(aplex.WorkerLost)) > 0 }) {
		t.Fatal("no WorkerLost")
	}
	lost := rec.Workers(aplex.WorkerLost)[0]
	if lost.Worker != "obs-1" || lost.PID != p.pid() || !strings.Contains(lost.Reason, "lost heartbeat") {
		t.Fatalf("lost: %+v", lost)
	}
	want := fmt.Sprintf(`msg="aplex: worker lost" executor=cluster worker=obs-1 slot=0 pid=%d reason="lost heartbeat`, p.pid())
	waitFor(t, 5*time.Second, "the loss logged", func() bool { return strings.Contains(logs.String(), want) })
}

// jsonWatch collects a worker's output and signals the first line that
// holds want.
type jsonWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan string
}

func (w *jsonWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for _, line := range strings.Split(w.buf.String(), "\n") {
		if strings.Contains(line, w.want) {
			select {
			case w.seen <- line:
			default:
			}
		}
	}
	return len(p), nil
}

// TestEnvWorkerLogSwitch: APLEX_LOG and APLEX_LOG_FORMAT set the level and
// format of an environment-role worker's log lines on stderr; a bad value
// stops it at once with a message naming the variable.
func TestEnvWorkerLogSwitch(t *testing.T) {
	// No server on the port: the worker logs its connection retries.
	url := "nats://127.0.0.1:" + itoa(freePort(t))
	out := &jsonWatch{want: `"msg":"aplex cluster worker: NATS not reachable yet, retrying"`, seen: make(chan string, 1)}
	p := spawnWorkerTo(t, out, url, "logs", "log-1", "APLEX_LOG=debug", "APLEX_LOG_FORMAT=json")
	select {
	case line := <-out.seen:
		if !strings.HasPrefix(line, `{"time":`) || !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, `"attempt":1`) {
			t.Fatalf("not a JSON log line: %s", line)
		}
	case <-p.done:
		t.Fatalf("the worker exited: %v", p.cmd.ProcessState)
	case <-time.After(10 * time.Second):
		t.Fatal("no JSON line saying the worker retries")
	}

	for _, env := range []string{"APLEX_LOG=loud", "APLEX_LOG_FORMAT=xml"} {
		var buf testutil.Buffer
		bad := spawnWorkerTo(t, &buf, url, "logs", "", env)
		if !bad.exited(10 * time.Second) {
			t.Fatalf("%s: the worker did not exit", env)
		}
		name, _, _ := strings.Cut(env, "=")
		if code := bad.cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(buf.String(), name) {
			t.Fatalf("%s: exit %d, output %q", env, code, buf.String())
		}
	}
}
