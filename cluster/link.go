package cluster

import (
	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
)

// Both sides write through internal/link over NATS: the executor's Runs
// and Cancels to its workers, a worker's Results to its executors. NATS
// keeps the order of one connection's messages to one subject, so a
// Cancel never overtakes its Run.

// newSender returns the executor's writer. The core calls Worker.Send and
// Cancel under its lock, so they only queue; the writer merges each
// worker's jobs into as few Runs as fit NATS' max payload. A job that
// cannot fit one (a Map chunk whose items together exceed it) is answered
// here with CodeTooLarge errors.
func newSender(t *transport) *link.Writer[*member] {
	return link.New(natsLink(t.sealed, t.max, t.log), link.Config[*member]{
		ReplyTo: t.inbox,
		Slots:   t.xc.Slots, // WithPrefetch: the worker holds what it is sent beyond them
		Reject:  func(m *member, r wire.Result) { t.deliver(m, []wire.Result{r}) },
	})
}

// newOutbox returns a worker's writer of Results, merged per executor.
func newOutbox(w *workerServer, max int) *link.Writer[link.Subject] {
	return link.New(natsLink(w.sealed, max, w.log), link.Config[link.Subject]{WorkerID: w.cfg.workerID})
}

// Subject is the worker's own subject, where its Runs and Cancels go
// (link.Dest).
func (m *member) Subject() string { return m.subject }

// Gone reports that m was dropped: its jobs were failed or re-queued, so
// what is still queued for it is not sent (link.Dest).
func (m *member) Gone() bool { return m.gone.Load() }
