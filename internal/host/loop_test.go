package host

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// stubbornRegistry adds "stubborn", a work that ignores its ctx until
// release is closed, and reports its start on started.
func stubbornRegistry(started chan<- struct{}, release <-chan struct{}) registry {
	reg := testRegistry()
	reg["stubborn"] = func(context.Context, []byte) ([]byte, error) {
		started <- struct{}{}
		<-release
		return nil, errors.New("released")
	}
	return reg
}

// TestKillBoundedByGrace: a kill (Shutdown{Graceful: false}, or the end of
// ServeConn's ctx) waits for works that ignore their cancelled ctx at most
// the grace of the one serve loop, then sends Bye and returns, as a killed
// cluster worker always did. The process child's own loop waited for them
// forever.
func TestKillBoundedByGrace(t *testing.T) {
	tests := []struct {
		name string
		kill func(c *conn)
		want error
	}{
		{"Shutdown now", func(c *conn) { c.send(&wire.Shutdown{Graceful: false}) }, nil},
		{"ctx end", func(c *conn) { c.cancel() }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			release := make(chan struct{})
			c := serve(t, Config{Registry: stubbornRegistry(started, release)})
			t.Cleanup(func() { close(release) }) // runs before serve's cleanup
			c.send(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "stubborn", Args: [][]byte{nil}}}})
			<-started
			begin := time.Now()
			tt.kill(c)
			for {
				m := c.next()
				if _, ok := m.(*wire.Bye); ok {
					break
				}
				if rs, ok := m.(*wire.Results); ok {
					t.Fatalf("result of a work still running: %+v", rs)
				}
			}
			if err := c.wait(); !errors.Is(err, tt.want) {
				t.Errorf("ServeConn = %v, want %v", err, tt.want)
			}
			if d := time.Since(begin); d < cancelGrace {
				t.Errorf("returned after %v, before the %v grace", d, cancelGrace)
			}
		})
	}
}

// TestLeaveAnnouncesDraining: a process child that leaves announces it
// with a Draining heartbeat at once, as a cluster worker does, not only at
// its next periodic heartbeat.
func TestLeaveAnnouncesDraining(t *testing.T) {
	c := serve(t, Config{Heartbeat: time.Hour, WorkerID: "w", MaxWorks: 2})
	c.send(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "sleep", Args: [][]byte{nil}}}})
	c.send(&wire.Shutdown{Graceful: true})
	hb, ok := c.next().(*wire.Heartbeat)
	if !ok || !hb.Draining || hb.Load != 1 || hb.WorkerID != "w" || hb.MaxWorks != 2 {
		t.Fatalf("first message after Shutdown = %+v, want a Draining heartbeat", hb)
	}
	c.send(&wire.Cancel{IDs: []uint64{1}})
	if e := c.results(1)[1].Items[0].Err; e == nil || e.Code != wire.CodeCanceled {
		t.Errorf("cancelled job = %+v", e)
	}
	if _, ok := c.next().(*wire.Bye); !ok {
		t.Error("no Bye after the last result")
	}
	if err := c.wait(); err != nil {
		t.Errorf("ServeConn = %v", err)
	}
}

// TestKillIsToldInTheHeartbeat: a worker killed by an executor says so in
// the heartbeat that announces it leaves, or in one sent at once if it was
// leaving already, so that the other executors of a cluster pool fail
// their jobs there then, not at its Bye (TestSharedWorkerKill in the
// cluster package); a worker stopped by its ctx was not killed by an
// executor and does not say it was.
func TestKillIsToldInTheHeartbeat(t *testing.T) {
	tests := []struct {
		name string
		// stop stops the worker; it returns the heartbeats it read.
		stop func(t *testing.T, c *conn) []wire.Heartbeat
		want []wire.Heartbeat // Draining, Killed of the heartbeats before the Bye
	}{
		{"Shutdown now", func(_ *testing.T, c *conn) []wire.Heartbeat {
			c.send(&wire.Shutdown{Graceful: false})
			return nil
		}, []wire.Heartbeat{{Draining: true, Killed: true}}},
		{"Shutdown now while leaving", func(t *testing.T, c *conn) []wire.Heartbeat {
			// The kill is sent once the leave is announced: sent back to
			// back, the loop may take the kill first (its select picks
			// at random among ready events), and then there is no leave
			// to announce (the test failed so once in CI).
			c.send(&wire.Shutdown{Graceful: true})
			hb, ok := c.next().(*wire.Heartbeat)
			if !ok || !hb.Draining {
				t.Fatalf("after a graceful Shutdown: %+v, want a Draining heartbeat", hb)
			}
			c.send(&wire.Shutdown{Graceful: false})
			return []wire.Heartbeat{{Draining: hb.Draining, Killed: hb.Killed}}
		}, []wire.Heartbeat{{Draining: true}, {Draining: true, Killed: true}}},
		{"ctx end", func(_ *testing.T, c *conn) []wire.Heartbeat {
			c.cancel()
			return nil
		}, []wire.Heartbeat{{Draining: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			release := make(chan struct{})
			c := serve(t, Config{Heartbeat: time.Hour, Registry: stubbornRegistry(started, release)})
			releaseOnce := sync.OnceFunc(func() { close(release) })
			t.Cleanup(releaseOnce) // runs before serve's cleanup
			c.send(&wire.Run{Jobs: []wire.Job{{ID: 1, Name: "stubborn", Args: [][]byte{nil}}}})
			<-started
			got := tt.stop(t, c)
			for {
				m := c.next()
				if _, ok := m.(*wire.Bye); ok {
					break
				}
				if hb, ok := m.(*wire.Heartbeat); ok {
					got = append(got, wire.Heartbeat{Draining: hb.Draining, Killed: hb.Killed})
				}
				if len(got) == len(tt.want) {
					releaseOnce() // no need to wait out the kill's grace
				}
			}
			if !slices.EqualFunc(got, tt.want, func(a, b wire.Heartbeat) bool { return a.Draining == b.Draining && a.Killed == b.Killed }) {
				t.Errorf("heartbeats = %+v, want %+v", got, tt.want)
			}
			if err := c.wait(); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("ServeConn = %v", err)
			}
		})
	}
}
