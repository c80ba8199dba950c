package engine

import (
	"context"
	"maps"

	"github.com/aplex-go/aplex/internal/host"
)

// This file is the worker side of process and cluster workers: the host
// configuration that serves this binary's registered works.

// hostConfig serves this binary's registered works in a worker process,
// after the worker init, if one is registered, with the values the caller's
// propagators sent in each work's ctx (RegisterPropagator). workerID and
// labels name a cluster worker ("" and nil for a process worker).
func hostConfig(base context.Context, id int, workerID string, labels map[string]string) (host.Config, error) {
	ctx, err := runWorkerInit(base, WorkerInfo{ID: id, WorkerID: workerID, Labels: maps.Clone(labels)})
	if err != nil {
		return host.Config{}, err
	}
	return host.Config{Registry: hostRegistry{}, EncodeError: encodeError, GoexitError: ErrGoexit, BaseContext: ctx,
		Extract: extractHeader}, nil
}

type hostRegistry struct{}

func (hostRegistry) Lookup(name string) (host.Handler, bool) {
	h, ok := registry.lookup(name)
	return host.Handler(h), ok
}

func (hostRegistry) Names() []string { return registry.names() }
