package cluster

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
)

// The worker's side of the protocol: its subscriptions, the messages it
// sends, and its handlers for what executors send.

// subscribe listens on the worker's own subject and the discover subject,
// and makes sure the server has both before the worker announces itself:
// a Run sent in reply to the Hello must find the subscription in place.
func (w *workerServer) subscribe() error {
	sub, err := w.nc.Subscribe(w.subj.worker(w.cfg.workerID), w.onMsg)
	if err != nil {
		return fmt.Errorf("aplex: cluster worker: subscribe: %w", err)
	}
	// Never drop a Run because this process was briefly slow: memory is
	// cheaper than a job no one answers.
	sub.SetPendingLimits(-1, -1)
	w.subs = append(w.subs, sub)
	sub, err = w.nc.Subscribe(w.subj.discover(), w.onDiscover)
	if err != nil {
		w.unsubscribe()
		return fmt.Errorf("aplex: cluster worker: subscribe: %w", err)
	}
	w.subs = append(w.subs, sub)
	if err := w.nc.FlushTimeout(flushWait * 5); err != nil {
		w.unsubscribe()
		return fmt.Errorf("aplex: cluster worker: NATS server does not answer: %w", err)
	}
	return nil
}

func (w *workerServer) unsubscribe() {
	for _, s := range w.subs {
		s.Unsubscribe()
	}
	w.subs = nil
}

func (w *workerServer) closeConn() {
	w.unsubscribe()
	if w.ownConn {
		w.nc.Close()
	}
}

// announce publishes the worker's Hello to every executor of the pool.
func (w *workerServer) announce() {
	if err := w.nc.Publish(w.subj.hello(), w.hello); err != nil {
		w.log.Debug("aplex cluster worker: publish hello", "err", err)
	}
}

// resume announces the worker again after a reconnect (counted by NATS,
// so a reconnect the handler did not report is seen on the next beat):
// executors then send again the jobs they still wait for.
func (w *workerServer) resume(seen *uint64) {
	if n := w.nc.Stats().Reconnects; n != *seen {
		*seen = n
		if !w.draining.Load() {
			w.announce()
		}
	}
}

// heartbeat tells executors the worker is alive, how loaded, and whether
// it still takes work.
func (w *workerServer) heartbeat() {
	w.publish(w.subj.heartbeat(w.cfg.workerID), &wire.Heartbeat{
		WorkerID: w.cfg.workerID,
		Load:     w.host.Load(),
		MaxWorks: w.cfg.maxWorks,
		Draining: w.draining.Load(),
	})
}

func (w *workerServer) publish(subject string, m wire.Msg) {
	b, err := wire.Marshal(m)
	if err == nil {
		err = w.nc.Publish(subject, b)
	}
	if err != nil {
		w.log.Debug("aplex cluster worker: publish", "kind", m.Kind(), "err", err)
	}
}

// onMsg handles what executors send to this worker's subject. It runs on
// the subscription's goroutine, so messages are applied in order: a Cancel
// never overtakes the Run it cancels.
func (w *workerServer) onMsg(msg *nats.Msg) {
	m, err := wire.Unmarshal(msg.Data)
	if err != nil {
		// Not from an aplex executor of this version: nobody to answer.
		w.log.Debug("aplex cluster worker: bad message", "err", err)
		return
	}
	switch m := m.(type) {
	case *wire.Run:
		start, again := w.sess.admit(m, time.Now())
		for _, r := range again {
			w.out.Result(link.Subject(m.ReplyTo), r)
		}
		if len(start) > 0 {
			if len(start) != len(m.Jobs) {
				m = &wire.Run{ReplyTo: m.ReplyTo, Jobs: start}
			}
			w.host.Run(m)
		}
	case *wire.Cancel:
		w.host.Cancel(m)
	case *wire.Shutdown:
		if m.Graceful {
			notify(w.leave)
			return
		}
		// Refuse and cancel at once, here, so no Run behind this message
		// starts; the main loop then waits a little and leaves.
		w.out.Drop()
		w.host.Drain()
		w.host.CancelAll()
		notify(w.kill)
	default:
		w.log.Debug("aplex cluster worker: unexpected message", "kind", m.Kind())
	}
}

// onDiscover answers an executor's discover request with the Hello,
// unless the request names another worker or this one is leaving.
func (w *workerServer) onDiscover(msg *nats.Msg) {
	if msg.Reply == "" || w.draining.Load() {
		return
	}
	if len(msg.Data) > 0 && string(msg.Data) != w.cfg.workerID {
		return
	}
	if err := w.nc.Publish(msg.Reply, w.hello); err != nil {
		w.log.Debug("aplex cluster worker: answer discover", "err", err)
	}
}

// emit is the host's Emit: it remembers the result for resends and sends
// it to its executor.
func (w *workerServer) emit(replyTo string, r wire.Result) {
	size := wire.ResultBound(&r)
	w.sess.finished(replyTo, r, size, time.Now())
	w.out.Result(link.Subject(replyTo), r)
}

// notify sends a token on a capacity-1 channel without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
