package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"sync"
)

// RegisterError registers a sentinel error so that errors.Is keeps working
// across the process boundary: when a work in a worker process returns an
// error that matches err (also wrapped with %w), the error its future gets
// in the caller matches err too. It returns err, so registration reads as a
// declaration:
//
//	var ErrNotFound = aplex.RegisterError(errors.New("not found"))
//
// Register in package-level variables, so worker binaries register the same
// errors. A sentinel is identified by its Go type and message; registering
// a nil error does nothing.
func RegisterError(err error) error {
	if err != nil {
		sentinels.add(err)
	}
	return err
}

var sentinels = newSentinelRegistry()

// newSentinelRegistry returns a registry that already knows the standard
// library's sentinels a work commonly returns, so errors.Is against them
// holds across processes without registering them by hand. Packages this
// one does not import (net/http, database/sql) are left to RegisterError,
// so that aplex does not link them into every binary.
func newSentinelRegistry() *sentinelRegistry {
	r := &sentinelRegistry{byKey: map[string]error{}}
	for _, err := range []error{
		context.Canceled, context.DeadlineExceeded,
		io.EOF, io.ErrUnexpectedEOF, io.ErrShortWrite, io.ErrShortBuffer, io.ErrClosedPipe, io.ErrNoProgress,
		fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrInvalid, fs.ErrClosed,
		os.ErrDeadlineExceeded, os.ErrProcessDone, os.ErrNoDeadline,
		net.ErrClosed,
		strconv.ErrRange, strconv.ErrSyntax,
		errors.ErrUnsupported,
	} {
		r.add(err)
	}
	return r
}

type sentinelRegistry struct {
	mu    sync.RWMutex
	byKey map[string]error
	all   []error
}

func sentinelKey(err error) string { return fmt.Sprintf("%T\x00%s", err, err.Error()) }

func (r *sentinelRegistry) add(err error) {
	key := sentinelKey(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byKey[key]; dup {
		return
	}
	r.byKey[key] = err
	r.all = append(r.all, err)
}

func (r *sentinelRegistry) lookup(key string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byKey[key]
}

// matching returns the keys of the registered sentinels err matches.
func (r *sentinelRegistry) matching(err error) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var keys []string
	for _, s := range r.all {
		if errors.Is(err, s) {
			keys = append(keys, sentinelKey(s))
		}
	}
	return keys
}
