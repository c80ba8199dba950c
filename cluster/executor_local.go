package cluster

import (
	"context"
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

// localWorkers runs SpawnLocalWorkers' processes: this binary re-executed
// as a cluster worker of the executor's pool, kept running by the shared
// supervisor (spawn.Supervisor), one slot per worker. Local worker i has
// the id "<executor id>-<i>" in every incarnation, so a restarted worker
// keeps its balancer slot.
type localWorkers struct {
	t    *transport
	n    int
	path string   // WithWorkerCommand's, or this binary
	args []string // WithWorkerCommand's
	env  []string
	// labels[i] is SpawnLocalWorkers' worker i's APLEX_CLUSTER_LABELS
	// setting (LocalWorkerLabels), nil for none of its own; a slot keeps
	// its own (localSlot.labels).
	labels []string
	out    io.Writer
	outM   sync.Mutex        // keeps output lines whole
	sup    *spawn.Supervisor // nil until start

	// The memory watch (WithWorkerMemoryLimit), run from start to stop.
	watchStop context.CancelFunc
	watchDone chan struct{}

	failed chan error // a worker could not start or exited before joining
}

func newLocalWorkers(t *transport, n int, url string) (*localWorkers, error) {
	if os.Getenv(proc.EnvRole) == roleCluster {
		// This process was started as a worker, yet runs executor code:
		// its main does not call aplex.Main first. Spawning here would
		// fork without end.
		return nil, fmt.Errorf("aplex: this process is a cluster worker (%s=%s) but its main did not call aplex.Main() first thing; refusing to spawn local workers", proc.EnvRole, roleCluster)
	}
	path, args := t.xc.Command, t.xc.CommandArgs
	if path == "" {
		var err error
		if path, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("aplex: cluster: cannot find this executable for local workers: %w", err)
		}
	}
	l := &localWorkers{
		t:      t,
		n:      n,
		path:   path,
		args:   args,
		out:    t.xc.Output,
		failed: make(chan error, n),
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
	if t.xc.MemoryLimit > 0 {
		l.env = append(l.env, spawn.MemoryEnv(t.xc.MemoryLimit))
	}
	l.env = append(l.env, t.xc.Env...)
	if f := t.cfg.localLabels; f != nil {
		l.labels = make([]string, n)
		for i := range n {
			e, err := labelsEntry(f, i)
			if err != nil {
				return nil, err
			}
			l.labels[i] = e
		}
	}
	return l, nil
}

// labelsEntry returns local worker i's APLEX_CLUSTER_LABELS entry, from
// LocalWorkerLabels' f.
func labelsEntry(f func(int) map[string]string, i int) (string, error) {
	v, err := labelsEnv(f(i))
	if err != nil {
		return "", fmt.Errorf("aplex: cluster.LocalWorkerLabels for worker %d: %w", i, err)
	}
	return envLabels + "=" + v, nil // an empty value clears a WithWorkerEnv one
}

// wid is local worker i's id.
func (l *localWorkers) wid(i int) string { return l.t.exid + "-" + strconv.Itoa(i) }

// start launches the supervisor; Start waits for the joins.
func (l *localWorkers) start() {
	l.sup = spawn.NewSupervisor(spawn.SupervisorConfig{
		Slots:  l.n,
		Run:    l.run,
		Failed: l.startFailed,
		What:   "local cluster worker",
		Logger: l.t.log,
	})
	l.sup.Start()
	if limit := l.t.xc.MemoryLimit; limit > 0 {
		ctx, stop := context.WithCancel(context.Background())
		l.watchStop, l.watchDone = stop, make(chan struct{})
		go func() {
			defer close(l.watchDone)
			spawn.WatchMemory(ctx, limit, l.t.lslots.watched)
		}()
	}
}

// run is one incarnation of local worker i (spawn.SupervisorConfig.Run):
// it starts the process and returns once it has exited and been dropped.
// A process that exited before it joined did not start (an error: the
// slot is restarted with back-off, and a worker that never joined fails
// Start instead); one that joined is replaced at once, however soon it
// ended, as a process worker that completed its handshake is.
func (l *localWorkers) run(ctx context.Context, i int) error {
	s := l.t.lslots.begin(i)
	if s == nil {
		return nil // Resize removed the slot
	}
	defer l.t.lslots.end(i, s)
	wid := l.wid(i)
	cmd, label, err := l.spawn(i, wid, s)
	if err != nil {
		return err
	}
	cmd.Wait()
	label.Flush()
	l.sup.Reaped(cmd)
	removed, joined, killed := l.t.lslots.reaped(s)
	status := cmd.ProcessState.String()
	l.t.localExited(wid, cmd.Process.Pid, status, killed, removed)
	switch {
	case joined || ctx.Err() != nil:
		return nil
	case !l.t.everJoined(wid):
		return fmt.Errorf("aplex: cluster: local worker %d (%s, pid %d) exited before joining (%s); does its main call aplex.Main() first thing?", i, l.path, cmd.Process.Pid, status)
	}
	return fmt.Errorf("aplex: cluster: local worker %d (pid %d) exited before joining (%s)", i, cmd.Process.Pid, status)
}

// startFailed gives local worker i up, failing Start with err, if it never
// joined: this binary does not serve as a worker, and restarting it would
// only repeat that. A worker that joined before is restarted with
// back-off.
func (l *localWorkers) startFailed(i int, err error, _ time.Duration) bool {
	if l.t.everJoined(l.wid(i)) {
		return true
	}
	if !l.t.lslots.startFailed(i, err) { // else Resize's AddSlot fails
		l.failed <- err
	}
	return false
}

// spawn starts one worker process of slot s. While stopping it starts
// nothing (spawn.ErrStopped); if Resize removed the slot meanwhile, the
// process is told to leave at once.
func (l *localWorkers) spawn(i int, wid string, s *localSlot) (*exec.Cmd, *spawn.LineWriter, error) {
	// Labelled with i, which is also its slot in Stats (slotTable).
	label := spawn.NewLineWriter(l.out, &l.outM, "aplex cluster worker", i)
	cmd := exec.Command(l.path, l.args...)
	cmd.Env = append(l.env[:len(l.env):len(l.env)], // a copy per process
		envWorkerID+"="+wid, envIndex+"="+strconv.Itoa(i))
	if s.labels != "" {
		cmd.Env = append(cmd.Env, s.labels) // after WithWorkerEnv's: the last wins
	}
	// The local workers share this machine's cores, as process workers do.
	if kv := spawn.MaxProcsEnv(cmd.Env, l.t.lslots.live()); kv != "" {
		cmd.Env = append(cmd.Env, kv)
	}
	// One writer for both streams: one pipe, one copier, whole lines.
	cmd.Stdout, cmd.Stderr = label, label
	cmd.WaitDelay = spawn.WaitDelay

	if err := l.sup.Fork(cmd); err != nil {
		return nil, nil, fmt.Errorf("aplex: cluster: start local worker %d (%s): %w", i, l.path, err)
	}
	label.SetPID(cmd.Process.Pid)
	switch leave, die := l.t.lslots.forked(s, cmd); {
	case die:
		cmd.Process.Kill()
	case leave:
		cmd.Process.Signal(syscall.SIGTERM)
	}
	return cmd, label, nil
}

// stop asks every worker that joined to leave (SIGTERM: it finishes its
// works, says Bye and exits), kills at once those that have not joined
// (still starting, a killed worker's replacement say: they hold nothing,
// and never will, since the closing transport ignores their Hello; a
// clean leave would take their whole start-up), kills those still running
// when ctx ends, and returns once every process is reaped. It returns
// ctx.Err() if it had to kill a worker that had joined and not said Bye.
func (l *localWorkers) stop(ctx context.Context) error {
	if l.sup == nil {
		return nil // never started
	}
	if l.watchStop != nil {
		l.watchStop()
		<-l.watchDone
	}
	l.sup.Stop() // before the signals: nothing starts after it
	for _, p := range l.t.lslots.procs() {
		if !p.joined {
			p.cmd.Process.Kill()
		}
	}
	// Once each: a worker told to leave already (Resize, recycling) is
	// finishing what it holds, maybe for other executors, and a second
	// signal would make it exit at once.
	for _, cmd := range l.t.lslots.terminateAll() {
		cmd.Process.Signal(syscall.SIGTERM)
	}

	done := make(chan struct{})
	go func() {
		l.sup.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		// A worker that said Bye (dropped from the members) has finished
		// every work; killing it, or one that never joined, loses nothing.
		for _, p := range l.t.lslots.procs() {
			if m := l.t.member(l.wid(p.slot)); p.joined && m != nil && m.pid == p.cmd.Process.Pid {
				err = fmt.Errorf("aplex: cluster: local workers killed: %w", ctx.Err())
			}
		}
		l.sup.Signal(syscall.SIGKILL)
		<-done
	}
	// Last: on Linux the forker thread's exit kills its children
	// (Pdeathsig), so it must outlive them.
	l.sup.Release()
	return err
}

// labelsOrNil returns the labels entries of SpawnLocalWorkers' workers;
// nil for none, or without local workers (l nil).
func (l *localWorkers) labelsOrNil() []string {
	if l == nil {
		return nil
	}
	return l.labels
}
