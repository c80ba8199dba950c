package testutil

import (
	"context"
	"errors"
	"os"
	"time"
)

// CtxSeen is what a work saw of its ctx: its deadline and the request id
// RequestIDs carries.
type CtxSeen struct {
	Deadline    int64 // Unix nanoseconds; 0: none
	RequestID   string
	HasDeadline bool
}

// SeeCtx is the body of a work that reports what it saw of its ctx.
func SeeCtx(ctx context.Context, _ int) (CtxSeen, error) {
	var s CtxSeen
	if d, ok := ctx.Deadline(); ok {
		s.Deadline, s.HasDeadline = d.UnixNano(), true
	}
	s.RequestID, _ = ctx.Value(RequestIDKey{}).(string)
	return s, nil
}

// AwaitMarker polls, for at most 10 s, until the file marker exists, and
// returns its content. A work calls it to wait for the test, in another
// process, without a channel: a bounded poll, never a timed sleep.
func AwaitMarker(marker string) ([]byte, error) {
	for range 10_000 {
		if b, err := os.ReadFile(marker); err == nil {
			return b, nil
		}
		time.Sleep(time.Millisecond)
	}
	return nil, errors.New("marker " + marker + " never appeared")
}
