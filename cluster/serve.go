package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/host"
	"github.com/aplex-go/aplex/internal/seal"
	"github.com/aplex-go/aplex/internal/spawn"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// ErrKilled is returned by Serve when an executor killed the worker: a work
// ignored its cancelled ctx or ran past its deadline for longer than the
// executor's kill grace. The works still running were cancelled; the
// process should exit (the worker role of aplex.Main does), which is the
// only way to stop a work that ignores its ctx.
var ErrKilled = errors.New("aplex: cluster worker killed by an executor")

// Timings of a leaving worker.
const (
	// acceptWindow is how long a leaving worker still accepts Runs after
	// announcing it drains: executors that sent one before they saw the
	// announcement get their work run rather than refused.
	acceptWindow = 250 * time.Millisecond
	// abandonWait is how long a worker waits for cancelled works before it
	// returns anyway (they ignore their ctx; exiting stops them).
	abandonWait = time.Second
	// flushWait bounds the final flush of Bye and results to the server.
	flushWait = 2 * time.Second
)

// workerIDKey is the context key under which works find WorkerID.
type workerIDKey struct{}

// WorkerID returns the id of the cluster worker running the work whose ctx
// this is, or "" outside a cluster worker.
func WorkerID(ctx context.Context) string {
	id, _ := ctx.Value(workerIDKey{}).(string)
	return id
}

// Serve turns this process into a cluster worker: it serves the works this
// binary registered (aplex.Register) to every executor of its pool on the
// same NATS, until ctx ends or an executor kills it. Only registered works
// run; any other name is answered with an error matching
// aplex.ErrNotRegistered.
//
// When ctx ends the worker leaves cleanly: it announces that it drains (so
// executors stop sending it work), finishes its running works (for at most
// ServeDrainTimeout, then cancels them), sends Bye and returns nil. It
// returns ErrKilled when an executor killed it, and an error if it cannot
// connect or subscribe. A NATS server that is not reachable yet is waited
// for: the first connection is retried with back-off (10ms doubling up to
// 2s), each retry logged to ServeLogger, until ctx ends, so workers may
// start before their server. Bad credentials end Serve at once.
//
// A binary started with APLEX_WORKER_ROLE=cluster runs Serve from
// aplex.Main, configured by environment variables (see the package doc).
func Serve(ctx context.Context, opts ...ServeOption) error {
	if ctx == nil {
		return errors.New("aplex: cluster.Serve: nil context")
	}
	cfg, err := buildServeConfig(opts)
	if err != nil {
		return err
	}
	w := &workerServer{cfg: cfg, subj: subjects{pool: cfg.pool}, log: cfg.logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.reconnected = make(chan struct{}, 1)
	w.leave = make(chan struct{}, 1)
	w.kill = make(chan struct{}, 1)
	box, err := sealBox(cfg.key, cfg.accepted, cfg.pool, cfg.workerID, seal.Worker)
	if err != nil {
		return fmt.Errorf("aplex: cluster.Serve: %w", err)
	}
	if box == nil && cfg.index < 0 { // a local worker's executor warned already
		w.log.Warn("aplex cluster worker: the pool is unsealed: whoever can use its subjects on the NATS server can read and forge its messages; seal it with cluster.ServePoolKey or APLEX_CLUSTER_KEY",
			"pool", cfg.pool)
	}
	if err := w.connect(ctx); err != nil {
		return err
	}
	w.link = newSealConn(w.nc, box, w.subj, w.log, "aplex cluster worker", cfg.workerID)
	return w.serve(ctx)
}

// workerServer is one running Serve.
type workerServer struct {
	cfg  serveConfig
	subj subjects
	log  *slog.Logger

	nc      *nats.Conn
	link    *sealConn // every publish and subscription of the pool
	ownConn bool
	host    *host.Host
	out     *outbox
	sess    *sessions
	hello   []byte // the encoded Hello, sent often and never changing
	subs    []*nats.Subscription

	draining    atomic.Bool
	reconnected chan struct{} // signalled by the NATS reconnect handler
	leave       chan struct{} // a graceful Shutdown arrived
	kill        chan struct{} // a Shutdown{Graceful: false} arrived
}

// connect dials NATS, unless Serve was given a connection. A server that
// is not reachable yet (workers and NATS started together, as by
// docker-compose) is waited for: the dial is retried with back-off, each
// retry logged, until ctx ends, as the client retries a lost connection
// later. A refusal that waiting cannot cure (bad credentials, TLS
// mismatch) ends Serve at once.
func (w *workerServer) connect(ctx context.Context) error {
	if w.cfg.conn != nil {
		w.nc = w.cfg.conn
		return nil
	}
	var wait time.Duration
	for attempt := 1; ; attempt++ {
		nc, err := dial(w.cfg.urls, "aplex worker "+w.cfg.workerID, w.cfg.natsOpts,
			func() { notify(w.reconnected) }, nil)
		if err == nil {
			if attempt > 1 {
				w.log.Info("aplex cluster worker: connected to NATS", "url", nc.ConnectedUrlRedacted(), "attempts", attempt)
			}
			w.nc, w.ownConn = nc, true
			return nil
		}
		if !unreachable(err) {
			return err
		}
		wait = spawn.NextBackoff(wait)
		w.log.Warn("aplex cluster worker: NATS not reachable yet, retrying", "attempt", attempt, "in", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("aplex: cluster worker: gave up waiting for NATS (%w) after %d attempts: %w", ctx.Err(), attempt, err)
		case <-timer.C:
		}
	}
}

// unreachable reports whether a failed dial may succeed later: no server
// listens yet, its name does not resolve yet, or the connection broke or
// timed out. Authentication and TLS refusals are not retried.
func unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, io.EOF) || errors.As(err, &ne)
}

// setup builds the host, whose works see Serve's ctx values and WorkerID
// but not its cancellation (a leaving worker lets them finish), and the
// outbox and session memory around it.
func (w *workerServer) setup(ctx context.Context) error {
	max := maxPayload(w.nc) - w.link.overhead()
	w.out = newOutbox(w.link, w.cfg.workerID, max, w.log)
	w.sess = newSessions(w.cfg.maxWorks, w.cfg.workerID)
	base := context.WithValue(context.WithoutCancel(ctx), workerIDKey{}, w.cfg.workerID)
	hc, err := xport.HostConfig(base, w.cfg.index, w.cfg.workerID, w.cfg.labels) // WorkerInfo.ID: -1, or a local worker's index
	if err != nil {
		return fmt.Errorf("aplex: cluster worker: %w", err)
	}
	hc.MaxFrame = max // an oversize result becomes an error outcome
	hc.MaxWorks = w.cfg.maxWorks
	hc.WorkerID = w.cfg.workerID
	hc.Labels = w.cfg.labels
	hc.Emit = w.emit
	w.host = host.New(hc)
	hello, err := wire.Marshal(w.host.Hello())
	if err != nil {
		return fmt.Errorf("aplex: cluster worker: %w", err)
	}
	w.hello = hello
	return nil
}

// serve is Serve's main loop.
func (w *workerServer) serve(ctx context.Context) (err error) {
	defer w.closeConn()
	if err := w.setup(ctx); err != nil {
		return err
	}
	if err := w.subscribe(); err != nil {
		return err
	}
	w.announce()

	tick := time.NewTicker(w.cfg.heartbeat)
	defer tick.Stop()
	reconnects := w.nc.Stats().Reconnects

	var (
		ctxDone  = ctx.Done()
		accept   <-chan time.Time // end of the accept window
		idle     <-chan struct{}  // closed once no work runs (while leaving)
		drainEnd <-chan time.Time // ServeDrainTimeout passed
		abandon  <-chan time.Time // cancelled works had their grace
		stopWait context.CancelFunc
		leaving  bool
		result   error
	)
	startLeaving := func() {
		if !leaving {
			leaving = true
			w.draining.Store(true)
			w.heartbeat() // executors stop sending work now
		}
	}
	waitIdle := func() {
		if stopWait != nil {
			stopWait()
		}
		idle, stopWait = w.idleChan()
	}
	defer func() {
		if stopWait != nil {
			stopWait()
		}
	}()
loop:
	for {
		select {
		case <-ctxDone:
			ctxDone = nil
			if !leaving {
				startLeaving()
				accept = time.After(w.cfg.acceptWindow)
			}
		case <-w.leave:
			if !leaving {
				startLeaving()
				accept = time.After(w.cfg.acceptWindow)
			}
		case <-w.kill:
			// The message handler drained and cancelled already.
			result = ErrKilled
			startLeaving()
			accept, drainEnd = nil, nil
			waitIdle()
			abandon = time.After(abandonWait)
		case <-accept:
			accept = nil
			w.host.Drain()
			waitIdle()
			drainEnd = time.After(w.cfg.drainTimeout)
		case <-idle:
			break loop
		case <-drainEnd:
			drainEnd = nil
			w.host.CancelAll()
			abandon = time.After(abandonWait)
			result = fmt.Errorf("aplex: cluster worker: works still running after the %v drain timeout were cancelled", w.cfg.drainTimeout)
		case <-abandon:
			break loop
		case <-w.reconnected:
			w.resume(&reconnects)
		case now := <-tick.C:
			w.heartbeat()
			w.resume(&reconnects)
			w.sess.expire(now)
		}
	}
	// Every result was handed to the outbox before the host went idle;
	// publish them, then Bye on the heartbeat subject (after the Draining
	// beats), then make sure the server has it all.
	w.out.flush()
	w.publish(w.subj.heartbeat(w.cfg.workerID), &wire.Bye{WorkerID: w.cfg.workerID})
	w.unsubscribe()
	w.nc.FlushTimeout(flushWait)
	return result
}

// idleChan returns a channel closed once no work runs, and a function that
// stops its waiting goroutine early.
func (w *workerServer) idleChan() (<-chan struct{}, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if w.host.Wait(ctx) == nil {
			close(done)
		}
	}()
	return done, cancel
}
