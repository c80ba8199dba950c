package proc

import (
	"errors"
	"fmt"

	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
)

// newLink returns the writer of w's request pipe: Runs, Cancels and the
// Shutdown of Close, batched by one goroutine (see internal/link). A job
// too large for a frame (a Map chunk) is answered here with CodeTooLarge
// errors, and a write error makes w lost (see fail).
func newLink(w *worker) *link.Writer[link.Subject] {
	return link.New(link.Pipe(w.toChild, w.t.cfg.MaxFrame), link.Config[link.Subject]{
		Slots: w.t.cfg.Slots,
		Reject: func(_ link.Subject, r wire.Result) {
			w.inflight.Add(-1)
			w.t.sink.Done(w, []wire.Result{r})
		},
		OnError: w.fail,
	})
}

// errUnwritable marks the Kill reason of a worker whose request pipe
// failed (see fail).
var errUnwritable = errors.New("its request pipe is broken")

// fail is called once the request pipe failed, and kills the child. Its
// end of the request pipe is closed: it is exiting or dead, or a work
// closed fd 3, which leaves a live worker that can never be given a job
// again. The jobs it holds or was sent would be dropped silently, so it is
// lost: the kill makes the reader see EOF, reap it and report Sink.Lost,
// and the supervisor replaces it. A child that was already exiting cleanly
// after Close is not hurt by the kill (see finish).
func (w *worker) fail(err error) {
	w.mu.Lock()
	w.dead = true
	w.mu.Unlock()
	w.Kill(fmt.Errorf("%w (%w)", errUnwritable, err))
}
