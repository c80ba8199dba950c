package spawn

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Forker starts every child from one goroutine locked to its OS thread.
//
// Pdeathsig fires when the *thread* that forked the child exits, not the
// process (golang/go#27505). The Go runtime ends a thread when a goroutine
// that locked it exits, so a child forked from an arbitrary thread could be
// killed at a random moment by unrelated code. The locked forker thread
// exits only when Stop is called, after the children are gone.
type Forker struct {
	req  chan forkReq
	done chan struct{}
}

type forkReq struct {
	cmd *exec.Cmd
	err chan error
}

// NewForker starts the locked forker goroutine; Stop ends it.
func NewForker() *Forker {
	f := &Forker{req: make(chan forkReq), done: make(chan struct{})}
	go f.loop()
	return f
}

func (f *Forker) loop() {
	defer close(f.done)
	runtime.LockOSThread()
	// Exiting while locked would end the thread; that is fine here (the
	// children are gone) and keeps the runtime from reusing a thread that
	// other code may have changed state on.
	for r := range f.req {
		r.err <- r.cmd.Start()
	}
}

// Start runs cmd.Start on the forker thread, with Pdeathsig set: the
// kernel SIGKILLs the child when its parent dies, however it dies. The
// child's environment gets ChildEnv's additions.
func (f *Forker) Start(cmd *exec.Cmd) error {
	prepare(cmd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	errc := make(chan error, 1)
	f.req <- forkReq{cmd, errc}
	return <-errc
}

// Stop ends the forker once no start is pending and waits for it.
func (f *Forker) Stop() {
	close(f.req)
	<-f.done
}
