package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/aplex-go/aplex/internal/spawn"
	"github.com/aplex-go/aplex/internal/wire"
)

// mainHint ends every handshake error: nearly always the binary runs its
// normal main instead of serving because aplex.Main() is missing or late.
const mainHint = "does its main call aplex.Main() first thing?"

// spawn starts a worker process for slot and completes its handshake. On
// failure the process is gone and every descriptor closed.
func (t *Transport) spawn(ctx context.Context, slot int) (*worker, error) {
	// Two pipes: the child reads requests on fd 3 and writes replies to
	// fd 4. Measured faster than a socketpair for small round trips.
	childIn, toChild, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("aplex: start worker %d: %w", slot, err)
	}
	fromChild, childOut, err := os.Pipe()
	if err != nil {
		childIn.Close()
		toChild.Close()
		return nil, fmt.Errorf("aplex: start worker %d: %w", slot, err)
	}
	setPipeSize(toChild)
	setPipeSize(fromChild)

	label := spawn.NewLineWriter(t.out, &t.outM, "aplex worker", slot)
	cmd := exec.Command(t.cfg.Path, t.cfg.Args...)
	cmd.Env = t.env(slot)
	cmd.ExtraFiles = []*os.File{childIn, childOut}
	// The same writer for both: exec then uses one pipe and one copying
	// goroutine, and lines of stdout and stderr never interleave.
	cmd.Stdout, cmd.Stderr = label, label
	// A grandchild that inherited stdout must not hang Wait forever.
	cmd.WaitDelay = spawn.WaitDelay

	err = t.sup.Fork(cmd)
	// The child has its own copies now; ours would hide its exit (no EOF).
	childIn.Close()
	childOut.Close()
	if err != nil {
		toChild.Close()
		fromChild.Close()
		return nil, fmt.Errorf("aplex: start worker process %s: %w", t.cfg.Path, err)
	}
	label.SetPID(cmd.Process.Pid)

	w := newWorker(t, slot, cmd, toChild, fromChild, label)
	if err := w.handshake(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// env is the children's environment: this process's, the worker role's
// settings, the transport's worker environment, and, for a pool of more
// processes than cores, GOMAXPROCS (spawn.MaxProcsEnv).
func (t *Transport) env(slot int) []string {
	env := append(os.Environ(),
		EnvRole+"="+roleProcess,
		envMaxFrame+"="+strconv.Itoa(t.cfg.MaxFrame),
		envSlot+"="+strconv.Itoa(slot),
	)
	if t.cfg.MemoryLimit > 0 {
		env = append(env, spawn.MemoryEnv(t.cfg.MemoryLimit))
	}
	if t.cfg.HeartbeatTimeout > 0 {
		env = append(env, envHeartbeat+"="+(t.cfg.HeartbeatTimeout/beatsPerTimeout).String())
	}
	env = append(env, t.cfg.Env...)
	if kv := spawn.MaxProcsEnv(env, t.poolSize()); kv != "" {
		env = append(env, kv)
	}
	return env
}

// poolSize is the number of worker processes the pool keeps: its slots,
// or the configured size while Start brings up the first ones.
func (t *Transport) poolSize() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.slots) == 0 {
		return t.cfg.Size
	}
	return len(t.slots)
}

// handshake reads the child's Hello within StartTimeout. On failure it
// stops the child and explains what went wrong.
func (w *worker) handshake(ctx context.Context) error {
	timeout := w.t.cfg.StartTimeout
	w.fromChild.SetReadDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { w.fromChild.SetReadDeadline(time.Unix(1, 0)) })
	m, err := w.rd.Next()
	stop()
	w.fromChild.SetReadDeadline(time.Time{})

	path := w.t.cfg.Path
	if ctx.Err() != nil {
		w.abort()
		return fmt.Errorf("aplex: start worker %d: %w", w.slotIdx, ctx.Err())
	}
	if err == nil {
		hello, ok := m.(*wire.Hello)
		switch {
		case !ok:
			w.abort()
			return fmt.Errorf("%w: worker process %s (pid %d) sent a %v message instead of Hello; %s", ErrHandshake, path, w.pid, m.Kind(), mainHint)
		case hello.Version != wire.Version:
			w.abort()
			return fmt.Errorf("%w: worker process %s speaks protocol version %d, this executor %d; rebuild it with the same aplex version", ErrHandshake, path, hello.Version, wire.Version)
		}
		w.hello = hello
		w.heardNow()
		return nil
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		status := w.abort()
		return fmt.Errorf("%w: worker process %s (pid %d) sent no handshake within %v and was killed (%s); %s", ErrHandshake, path, w.pid, timeout, status, mainHint)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		status := w.reap()
		return fmt.Errorf("%w: worker process %s (pid %d) exited before the handshake (%s); %s", ErrHandshake, path, w.pid, status, mainHint)
	case errors.Is(err, wire.ErrVersion):
		w.abort()
		return fmt.Errorf("%w: worker process %s speaks another protocol version (%v); rebuild it with the same aplex version", ErrHandshake, path, err)
	default:
		w.abort()
		return fmt.Errorf("%w: worker process %s (pid %d) sent a bad handshake (%v); %s", ErrHandshake, path, w.pid, err, mainHint)
	}
}

// abort kills a worker whose I/O goroutines never started and reaps it.
func (w *worker) abort() string {
	w.cmd.Process.Kill()
	return w.reap()
}

// reap waits for the process (killing it if it lingers), closes our pipe
// ends and forwards its last partial output line. It returns how the
// process ended.
func (w *worker) reap() string {
	timer := time.AfterFunc(exitGrace, func() {
		w.Kill(errors.New("it closed its reply pipe but did not exit"))
	})
	w.cmd.Wait()
	timer.Stop()
	w.t.sup.Reaped(w.cmd)
	w.toChild.Close()
	w.fromChild.Close()
	w.label.Flush()
	return w.cmd.ProcessState.String()
}
