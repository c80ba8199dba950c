package cluster

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/host"
	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
)

// The worker's side of the protocol, as the serve loop's Link
// (host.Link): its subscriptions, the messages it sends, and its handlers
// for what executors send, which it hands to the loop's Inbox.

// Open is the Link's start: it subscribes, then announces the worker.
func (w *workerServer) Open(hello *wire.Hello, in *host.Inbox) error {
	b, err := wire.Marshal(hello)
	if err != nil {
		return fmt.Errorf("aplex: cluster worker: %w", err)
	}
	w.hello, w.in = b, in
	w.out.Start()
	if err := w.subscribe(); err != nil {
		return err
	}
	w.resumeMu.Lock()
	w.reconnects = w.nc.Stats().Reconnects
	w.resumeMu.Unlock()
	w.opened.Store(true)
	w.announce()
	return nil
}

// Close is the Link's end: the queued results, then Bye on the heartbeat
// subject (after the Draining beats), then make sure the server has it
// all. A message being handled as it unsubscribes may still reach the
// Inbox; the host refuses its jobs.
func (w *workerServer) Close(bye *wire.Bye) {
	if bye == nil {
		w.unsubscribe()
		w.nc.FlushTimeout(flushWait)
		return
	}
	w.out.Close()
	// Unsubscribed before the Bye says which jobs arrived, and the
	// sessions closed with it: one arriving after is never started, and
	// its executor may run it elsewhere (wire.Bye.Seen).
	w.unsubscribe()
	bye.Seen = w.sess.close()
	w.publish(w.subj.heartbeat(w.cfg.workerID), bye)
	w.nc.FlushTimeout(flushWait)
}

// subscribe listens on the worker's own subject and the discover subject,
// and makes sure the server has both before the worker announces itself:
// a Run sent in reply to the Hello must find the subscription in place.
func (w *workerServer) subscribe() error {
	sub, err := w.nc.Subscribe(w.subj.worker(w.cfg.workerID), w.sealed.handler(true, w.onMsg))
	if err != nil {
		return fmt.Errorf("aplex: cluster worker: subscribe: %w", err)
	}
	// Never drop a Run because this process was briefly slow: memory is
	// cheaper than a job no one answers.
	sub.SetPendingLimits(-1, -1)
	w.subs = append(w.subs, sub)
	sub, err = w.nc.Subscribe(w.subj.discover(), w.sealed.handler(false, w.onDiscover))
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
	if err := w.sealed.Publish(w.subj.hello(), w.hello); err != nil {
		w.log.Debug("aplex cluster worker: publish hello", "err", err)
	}
}

// onReconnect is the NATS reconnect handler: executors must hear the
// worker again at once, as they then send again the jobs they still wait
// for.
func (w *workerServer) onReconnect() {
	if w.opened.Load() {
		w.resume()
	}
}

// resume announces the worker again after a reconnect (counted by NATS,
// so a reconnect the handler did not report is seen on the next beat):
// executors then send again the jobs they still wait for.
func (w *workerServer) resume() {
	w.resumeMu.Lock()
	defer w.resumeMu.Unlock()
	if n := w.nc.Stats().Reconnects; n != w.reconnects {
		w.reconnects = n
		if !w.draining.Load() {
			w.announce()
		}
	}
}

// Heartbeat is the Link's: it tells executors the worker is alive, how
// loaded, and whether it still takes work (Draining stops discover answers
// and re-announcements). Each beat also catches a reconnect the handler
// missed and forgets idle sessions.
func (w *workerServer) Heartbeat(hb *wire.Heartbeat) {
	if hb.Draining {
		w.draining.Store(true)
	}
	if hb.Killed {
		hb.Seen = w.sess.close() // as Killed took it
	}
	w.publish(w.subj.heartbeat(w.cfg.workerID), hb)
	w.resume()
	w.sess.expire(time.Now())
}

// Killed is the Link's: a killed worker answers nothing. Executors then
// fail their works there with a *aplex.WorkerError as its next heartbeat
// says Killed (host.Link), which aplex.Retry may resend elsewhere, rather
// than with a cancellation nobody asked for. It waits for a write under
// way, so that no result follows that heartbeat (a publish does not
// block: NATS buffers it, or refuses it once its buffer is full). And it
// closes the sessions: the worker starts no job it receives from now on,
// and that heartbeat names the last one it received from each executor
// (wire.Heartbeat.Seen), so that the jobs sent after run elsewhere.
func (w *workerServer) Killed() {
	w.out.Drop()
	w.out.Wait()
	w.sess.close()
}

func (w *workerServer) publish(subject string, m wire.Msg) {
	b, err := wire.Marshal(m)
	if err == nil {
		err = w.sealed.Publish(subject, b)
	}
	if err != nil {
		w.log.Debug("aplex cluster worker: publish", "kind", m.Kind(), "err", err)
	}
}

// onMsg handles what executors send to this worker's subject. It runs on
// the subscription's goroutine, so messages are applied in order: a Cancel
// never overtakes the Run it cancels. On a sealed pool, from is the
// executor that sealed the message: a Run or Cancel must name its own
// inbox (one executor cannot cancel another's jobs, nor steer results to
// another's inbox), and a Shutdown comes only from an executor that has
// sent this worker work.
func (w *workerServer) onMsg(msg *nats.Msg, from string) {
	m, err := wire.Unmarshal(msg.Data)
	if err != nil {
		// Not from an aplex executor of this version: nobody to answer.
		w.log.Debug("aplex cluster worker: bad message", "err", err)
		return
	}
	if from != "" && !w.authorised(from, m) {
		w.log.Debug("aplex cluster worker: dropped a message beyond its sender's authority", "from", from, "kind", m.Kind())
		return
	}
	switch m := m.(type) {
	case *wire.Run:
		start, again, named := w.sess.admit(m, time.Now())
		to := link.Subject(m.ReplyTo)
		for _, id := range named { // before the results: a start precedes its job's end
			w.out.Started(to, id)
		}
		for _, r := range again {
			w.out.Result(to, r)
		}
		if len(start) > 0 {
			if len(start) != len(m.Jobs) {
				m = &wire.Run{ReplyTo: m.ReplyTo, Slots: m.Slots, Jobs: start}
			}
			w.in.Run(m)
		}
	case *wire.Cancel:
		w.in.Cancel(m)
	case *wire.Shutdown:
		w.in.Shutdown(m)
	default:
		w.log.Debug("aplex cluster worker: unexpected message", "kind", m.Kind())
	}
}

// authorised reports whether executor from may send m: Runs and Cancels
// for its own inbox only, a Shutdown only once it has a session here.
func (w *workerServer) authorised(from string, m wire.Msg) bool {
	inbox := w.subj.inbox(from)
	switch m := m.(type) {
	case *wire.Run:
		return m.ReplyTo == inbox
	case *wire.Cancel:
		return m.ReplyTo == inbox
	case *wire.Shutdown:
		return w.sess.known(inbox)
	}
	return true
}

// onDiscover answers an executor's discover request with the Hello,
// unless the request names another worker or this one is leaving. On a
// sealed pool the reply subject, which travels in clear, must be the
// inbox of the executor that sealed the request.
func (w *workerServer) onDiscover(msg *nats.Msg, from string) {
	if msg.Reply == "" || w.draining.Load() {
		return
	}
	if from != "" && msg.Reply != w.subj.inbox(from) {
		return
	}
	if len(msg.Data) > 0 && string(msg.Data) != w.cfg.workerID {
		return
	}
	if err := w.sealed.Publish(msg.Reply, w.hello); err != nil {
		w.log.Debug("aplex cluster worker: answer discover", "err", err)
	}
}

// Result is the Link's (the host's Emit): it remembers the result for
// resends and sends it to its executor.
func (w *workerServer) Result(replyTo string, r wire.Result) {
	size := wire.ResultBound(&r)
	w.sess.finished(replyTo, r, size, time.Now())
	w.out.Result(link.Subject(replyTo), r)
}

// Started is the Link's (the host's Config.Started): it remembers the
// start for resends and tells the job's executor that the job, sent
// ahead of a free slot, has started.
func (w *workerServer) Started(replyTo string, id uint64) {
	w.sess.started(replyTo, id)
	w.out.Started(link.Subject(replyTo), id)
}

// notify sends a token on a capacity-1 channel without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
