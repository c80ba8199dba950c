package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/engine"
	"github.com/aplex-go/aplex/internal/host"
	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/seal"
	"github.com/aplex-go/aplex/internal/spawn"
)

// ErrKilled is returned by Serve when an executor killed the worker: a work
// ignored its cancelled ctx or ran past its deadline for longer than the
// executor's kill grace. The works still running were cancelled; the
// process should exit (the worker role of aplex.Main does), which is the
// only way to stop a work that ignores its ctx. It is the serve loop's
// own error (internal/host), shared with process workers.
var ErrKilled = host.ErrKilled

// Timings of a cluster worker's link; the rest of a leaving worker's
// timings (the drain, the one-second grace for cancelled works) belong to
// the serve loop, internal/host.Serve.
const (
	// acceptWindow is how long a leaving worker still accepts Runs after
	// announcing it drains: executors that sent one before they saw the
	// announcement get their work run rather than refused.
	acceptWindow = 250 * time.Millisecond
	// flushWait bounds the final flush of Bye and results to the server.
	flushWait = 2 * time.Second
)

// workerIDKey is the context key under which works find WorkerID.
type workerIDKey struct{}

// WorkerID returns the id of the cluster worker running the work whose ctx
// this is, or "" outside a cluster worker (a nil ctx included).
func WorkerID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
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
	w.sealed = newSealConn(w.nc, box, w.subj, w.log, "aplex cluster worker", cfg.workerID)
	return w.serve(ctx)
}

// workerServer is one running Serve: the serve loop's Link over NATS
// (worker_messages.go). Its sessions, heartbeats on hb.<wid>, per-executor reply
// subjects, discover answers and re-announcements after a reconnect are
// features of this link; draining, killing and leaving are the loop's.
type workerServer struct {
	cfg  serveConfig
	subj subjects
	log  *slog.Logger

	nc      *nats.Conn
	sealed  *sealConn // every publish and subscription of the pool
	ownConn bool
	in      *host.Inbox
	out     *link.Writer[link.Subject]
	sess    *sessions
	hello   []byte // the encoded Hello, sent often and never changing
	subs    []*nats.Subscription

	draining atomic.Bool // the loop announced that the worker leaves
	opened   atomic.Bool // Open ran: the reconnect handler may re-announce

	resumeMu   sync.Mutex
	reconnects uint64 // NATS reconnects already answered with a Hello
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
			w.onReconnect, nil)
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

// hostConfig configures the serve loop: works see Serve's ctx values and
// WorkerID but not its cancellation (a leaving worker lets them finish),
// and the end of Serve's ctx is a clean leave.
func (w *workerServer) hostConfig(ctx context.Context) (host.Config, error) {
	max := maxPayload(w.nc) - w.sealed.overhead()
	w.out = newOutbox(w, max)
	w.sess = newSessions(w.cfg.maxWorks, w.cfg.workerID)
	base := context.WithValue(context.WithoutCancel(ctx), workerIDKey{}, w.cfg.workerID)
	hc, err := engine.HostConfig(base, w.cfg.index, w.cfg.workerID, w.cfg.labels) // WorkerInfo.ID: -1, or a local worker's index
	if err != nil {
		return hc, fmt.Errorf("aplex: cluster worker: %w", err)
	}
	hc.MaxFrame = max // an oversize result becomes an error outcome
	hc.MaxWorks = w.cfg.maxWorks
	hc.WorkerID = w.cfg.workerID
	hc.Labels = w.cfg.labels
	hc.Heartbeat = w.cfg.heartbeat
	hc.AcceptWindow = w.cfg.acceptWindow
	hc.DrainTimeout = w.cfg.drainTimeout
	hc.DoneLeaves = true
	return hc, nil
}

// serve runs the serve loop over this link.
func (w *workerServer) serve(ctx context.Context) error {
	defer w.closeConn()
	hc, err := w.hostConfig(ctx)
	if err != nil {
		return err
	}
	defer w.out.Close() // after Link.Close a no-op; stops the writer if Open failed
	return host.Serve(ctx, hc, w)
}
