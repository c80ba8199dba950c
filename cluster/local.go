package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aplex-go/aplex/internal/proc"
	"github.com/aplex-go/aplex/internal/spawn"
)

// Restart pacing of local workers.
const (
	// steadyRun resets the back-off: a worker that ran this long did not
	// crash at start-up.
	steadyRun = 10 * time.Second
)

// localWorkers runs SpawnLocalWorkers' processes: this binary re-executed
// as a cluster worker of the executor's pool, one supervisor goroutine per
// worker. Local worker i has the id "<executor id>-<i>" in every
// incarnation, so a restarted worker keeps its balancer slot.
type localWorkers struct {
	t    *transport
	n    int
	path string
	env  []string
	// labels[i] is worker i's APLEX_CLUSTER_LABELS setting
	// (LocalWorkerLabels); nil: none of its own.
	labels []string
	out    io.Writer
	outM   sync.Mutex // keeps output lines whole
	fork   *spawn.Forker

	failed chan error // a worker could not start or exited before joining
	wg     sync.WaitGroup

	mu       sync.Mutex
	stopping bool
	stopCh   chan struct{}
	procs    map[*exec.Cmd]struct{} // started and not reaped
}

func newLocalWorkers(t *transport, n int, url string) (*localWorkers, error) {
	if os.Getenv(proc.EnvRole) == roleCluster {
		// This process was started as a worker, yet runs executor code:
		// its main does not call aplex.Main first. Spawning here would
		// fork without end.
		return nil, fmt.Errorf("aplex: this process is a cluster worker (%s=%s) but its main did not call aplex.Main() first thing; refusing to spawn local workers", proc.EnvRole, roleCluster)
	}
	path, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("aplex: cluster: cannot find this executable for local workers: %w", err)
	}
	l := &localWorkers{
		t:      t,
		n:      n,
		path:   path,
		out:    t.xc.Output,
		failed: make(chan error, n),
		stopCh: make(chan struct{}),
		procs:  map[*exec.Cmd]struct{}{},
	}
	if l.out == nil {
		l.out = os.Stderr
	}
	hb := max(t.xc.HeartbeatTimeout/3, 10*time.Millisecond)
	l.env = append(os.Environ(),
		proc.EnvRole+"="+roleCluster,
		envURL+"="+url,
		envPool+"="+t.cfg.pool,
		envHeartbeat+"="+hb.String(),
		envMaxWorks+"="+strconv.Itoa(max(t.xc.MaxWorksPerWorker, 1)),
		envParent+"="+strconv.Itoa(os.Getpid()),
	)
	l.env = append(l.env, credentialEnv(t.cfg.natsOpts)...)
	// Secrets travel in the environment, which only this user (and root)
	// can read (/proc/<pid>/environ), never on the command line.
	if t.token != "" {
		l.env = append(l.env, envToken+"="+t.token)
	}
	if t.cfg.key != nil {
		l.env = append(l.env, envKey+"="+formatKeys(t.cfg.key, t.cfg.accepted))
	}
	l.env = append(l.env, t.xc.Env...)
	if f := t.cfg.localLabels; f != nil {
		l.labels = make([]string, n)
		for i := range n {
			v, err := labelsEnv(f(i))
			if err != nil {
				return nil, fmt.Errorf("aplex: cluster.LocalWorkerLabels for worker %d: %w", i, err)
			}
			l.labels[i] = envLabels + "=" + v // an empty value clears a WithWorkerEnv one
		}
	}
	return l, nil
}

// wid is local worker i's id.
func (l *localWorkers) wid(i int) string { return l.t.exid + "-" + strconv.Itoa(i) }

// start launches the supervisors; Start waits for the joins.
func (l *localWorkers) start() {
	l.fork = spawn.NewForker()
	for i := range l.n {
		l.wg.Go(func() { l.supervise(i) })
	}
}

// supervise keeps local worker i running until stop.
func (l *localWorkers) supervise(i int) {
	wid := l.wid(i)
	var backoff time.Duration // 0 until a restart fails or the worker dies young
	for {
		cmd, label, err := l.spawn(i, wid)
		if err != nil {
			if !l.t.everJoined(wid) {
				l.failed <- err
				return
			}
			l.t.log.Warn("aplex cluster: cannot restart local worker", "worker", wid, "err", err)
		} else {
			began := time.Now()
			cmd.Wait()
			label.Flush()
			l.forget(cmd)
			status := cmd.ProcessState.String()
			l.t.localExited(wid, cmd.Process.Pid, status)
			if l.isStopping() {
				return
			}
			if !l.t.everJoined(wid) {
				l.failed <- fmt.Errorf("aplex: cluster: local worker %d (%s, pid %d) exited before joining (%s); does its main call aplex.Main() first thing?", i, l.path, cmd.Process.Pid, status)
				return
			}
			if time.Since(began) > steadyRun {
				backoff = 0
			}
		}
		backoff = spawn.NextBackoff(backoff)
		select {
		case <-l.stopCh:
			return
		case <-time.After(backoff):
		}
	}
}

// spawn starts one worker process. While stopping it starts nothing.
func (l *localWorkers) spawn(i int, wid string) (*exec.Cmd, *spawn.LineWriter, error) {
	// Labelled with i, which is also its slot in Stats (slotTable).
	label := spawn.NewLineWriter(l.out, &l.outM, "aplex cluster worker", i)
	cmd := exec.Command(l.path)
	cmd.Env = append(l.env[:len(l.env):len(l.env)], // a copy per process
		envWorkerID+"="+wid, envIndex+"="+strconv.Itoa(i))
	if l.labels != nil {
		cmd.Env = append(cmd.Env, l.labels[i]) // after WithWorkerEnv's: the last wins
	}
	// One writer for both streams: one pipe, one copier, whole lines.
	cmd.Stdout, cmd.Stderr = label, label
	cmd.WaitDelay = spawn.WaitDelay

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return nil, nil, errors.New("aplex: cluster: stopping")
	}
	if err := l.fork.Start(cmd); err != nil {
		return nil, nil, fmt.Errorf("aplex: cluster: start local worker %d (%s): %w", i, l.path, err)
	}
	label.SetPID(cmd.Process.Pid)
	l.procs[cmd] = struct{}{}
	return cmd, label, nil
}

func (l *localWorkers) forget(cmd *exec.Cmd) {
	l.mu.Lock()
	delete(l.procs, cmd)
	l.mu.Unlock()
}

func (l *localWorkers) isStopping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopping
}

// signalAll sends sig to every running worker process.
func (l *localWorkers) signalAll(sig os.Signal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for cmd := range l.procs {
		cmd.Process.Signal(sig)
	}
}

// stop asks every worker to leave (SIGTERM: it finishes its works, says
// Bye and exits), kills those still running when ctx ends, and returns
// once every process is reaped. It returns ctx.Err() if it had to kill.
func (l *localWorkers) stop(ctx context.Context) error {
	if l.fork == nil {
		return nil // never started
	}
	l.mu.Lock()
	l.stopping = true
	close(l.stopCh)
	l.mu.Unlock()
	l.signalAll(syscall.SIGTERM)

	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("aplex: cluster: local workers killed: %w", ctx.Err())
		l.signalAll(syscall.SIGKILL)
		<-done
	}
	// Last: on Linux the forker thread's exit kills its children
	// (Pdeathsig), so it must outlive them.
	l.fork.Stop()
	return err
}
