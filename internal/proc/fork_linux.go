package proc

import (
	"os/exec"
	"runtime"
)

// forker starts every child from one goroutine locked to its OS thread.
//
// Pdeathsig fires when the *thread* that forked the child exits, not the
// process (golang/go#27505). The Go runtime ends a thread when a goroutine
// that locked it exits, so a child forked from an arbitrary thread could be
// killed at a random moment by unrelated code. The locked forker thread
// exits only with the transport, after its children are gone.
type forker struct {
	req  chan forkReq
	done chan struct{}
}

type forkReq struct {
	cmd *exec.Cmd
	err chan error
}

func newForker() *forker {
	f := &forker{req: make(chan forkReq), done: make(chan struct{})}
	go f.loop()
	return f
}

func (f *forker) loop() {
	defer close(f.done)
	runtime.LockOSThread()
	// Exiting while locked would end the thread; that is fine here (the
	// children are gone) and keeps the runtime from reusing a thread that
	// other code may have changed state on.
	for r := range f.req {
		r.err <- r.cmd.Start()
	}
}

// start runs cmd.Start on the forker thread.
func (f *forker) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	f.req <- forkReq{cmd, errc}
	return <-errc
}

// stop ends the forker once no start is pending and waits for it.
func (f *forker) stop() {
	close(f.req)
	<-f.done
}
