package aplex

import (
	"fmt"

	"github.com/aplex-go/aplex/internal/xport"
)

// The bridge to transport packages of this module (cluster); see
// internal/xport/bridge.go.
func init() {
	xport.NewOption = func(kind, name string, set func(map[string]any) error) any {
		return Option(func(c *config) error {
			if c.extKind != "" && c.extKind != kind {
				return fmt.Errorf("aplex: %s cannot be mixed with %s options", name, c.extKind)
			}
			c.extKind = kind
			c.extNames = append(c.extNames, name)
			if c.ext == nil {
				c.ext = map[string]any{}
			}
			return set(c.ext)
		})
	}
	xport.NewExecutor = func(kind string, opts []any, newTransport func(xport.Config) (xport.Transport, error)) (any, error) {
		aopts := make([]Option, len(opts))
		for i, o := range opts {
			opt, ok := o.(Option)
			if !ok && o != nil {
				return nil, fmt.Errorf("aplex: option %d is a %T, not an aplex.Option", i, o)
			}
			aopts[i] = opt
		}
		cfg, err := buildConfig(kindCluster, aopts)
		if err != nil {
			return nil, err
		}
		xc := xport.Config{
			MaxWorksPerWorker: cfg.maxWorksPerWorker,
			StartTimeout:      cfg.startTimeout,
			HeartbeatTimeout:  cfg.heartbeatTimeout,
			Logger:            cfg.logger,
			Output:            cfg.output,
			Env:               cfg.env,
			Ext:               cfg.ext,
		}
		if cfg.poolSizeSet {
			xc.PoolSize = cfg.poolSize
		}
		tr, err := newTransport(xc)
		if err != nil {
			return nil, err
		}
		return startRemote(cfg, tr)
	}
	xport.HostConfig = hostConfig
}
