package engine

import (
	"context"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// This file builds executors over a remote transport (process and cluster
// workers) and starts their workers.

// startSlack is how long past WithStartTimeout a transport's Start may
// take to report its own timeout (whose error says more than a cancelled
// ctx: the process transport's handshake timer starts after the fork) and
// clean up.
const startSlack = time.Second

// startRemote builds an executor over a remote transport and starts its
// workers; it is shared by process and cluster executors.
func startRemote(cfg config, tr xport.Transport) (*Executor, error) {
	c := newCore(cfg)
	c.be = &remote{c, tr}
	c.maxMsg = wire.PayloadLimit(tr.MaxMessage()) // the one size rule
	// WithStartTimeout is the bound (not plus the kill grace: that made a
	// 2s start timeout fail after 7s). Transports enforce it themselves,
	// with an error saying what they waited for; this ctx is a backstop a
	// moment later, which also leaves them that moment to clean up.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.startTimeout+startSlack)
	defer cancel()
	if err := tr.Start(ctx, c); err != nil {
		c.baseCancel()
		return nil, err
	}
	if cfg.kind == kindCluster {
		c.mu.Lock()
		c.keepSizeLocked()
		c.unlock()
	}
	c.startAutoscaler()
	return newExecutor(c), nil
}
