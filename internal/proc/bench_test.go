//go:build linux

package proc

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// benchSink counts finished jobs on a channel, and closes next (if set)
// at the next result, as the core ends a future.
type benchSink struct {
	joined chan xport.Worker
	done   chan struct{}
	next   atomic.Pointer[chan struct{}]
}

func (s *benchSink) Join(w xport.Worker)                              { s.joined <- w }
func (s *benchSink) Retire(xport.Worker)                              {}
func (s *benchSink) Lost(xport.Worker, error)                         {}
func (s *benchSink) Broken(error)                                     {}
func (s *benchSink) Outstanding(xport.Worker) ([]*wire.Job, []uint64) { return nil, nil }
func (s *benchSink) Started(xport.Worker, []uint64)                   {}

func (s *benchSink) Done(_ xport.Worker, rs []wire.Result) {
	if next := s.next.Swap(nil); next != nil {
		close(*next)
		return
	}
	for range rs {
		s.done <- struct{}{}
	}
}

func benchTransport(b *testing.B) (xport.Worker, *benchSink) {
	tr, err := New(Config{Size: 1, Output: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSink{joined: make(chan xport.Worker, 1), done: make(chan struct{}, 1024)}
	if err := tr.Start(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close(context.Background()) })
	return <-s.joined, s
}

// BenchmarkRoundTrip compares one no-op job through the transport, used
// as the core uses it for a Submit then a Get (Hold, Send, Release, then
// ReadUntil the result is in: child host → Done on this goroutine), with a
// raw 32-byte ping-pong over two os.Pipe between the same parent and a
// child of the same binary: the floor, alone and with one goroutine
// hand-off in the parent (raw-pipes-handoff), both through os.File, and
// with the raw system calls the transport makes (raw-syscalls).
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("transport", func(b *testing.B) {
		xw, s := benchTransport(b)
		w := xw.(*worker)
		j := &wire.Job{Name: "noop", Args: [][]byte{nil}}
		jobs := []*wire.Job{j}
		ctx := context.Background()
		b.ReportAllocs()
		var lat latencies
		cs := switchesOf(os.Getpid(), w.Info().PID)
		for i := 0; b.Loop(); i++ {
			j.ID = uint64(i)
			t0 := time.Now()
			done := make(chan struct{})
			s.next.Store(&done) // closed by Done, on this goroutine or the reader's
			held := w.Hold()
			w.Send(jobs)
			if held {
				w.Release()
			}
			w.ReadUntil(ctx, done)
			<-done
			lat.add(t0)
		}
		cs.report(b)
		lat.report(b)
	})
	b.Run("raw-pipes", func(b *testing.B) { rawPingPong(b, false, false) })
	b.Run("raw-syscalls", func(b *testing.B) { rawPingPong(b, false, true) })
	// The same ping-pong with the parent's reads done by a goroutine of
	// their own that hands each reply to the waiting one over a channel:
	// the shape of any executor whose caller waits on a future while a
	// reader goroutine serves the pipe. The hand-off alone, one goroutine
	// wake-up per round trip, is what separates this floor from the one
	// above.
	b.Run("raw-pipes-handoff", func(b *testing.B) { rawPingPong(b, true, false) })
}

// rawPingPong is a raw 32-byte ping-pong over two os.Pipe with a child of
// this binary. With handoff, a reader goroutine reads the replies and
// hands each to the benchmark's goroutine over a channel. With raw, both
// sides read and write with link.PipeReader and link.PipeWriter.
func rawPingPong(b *testing.B, handoff, raw bool) {
	childIn, toChild, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	fromChild, childOut, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	mode := "pingpong"
	if raw {
		mode = "pingpong-raw"
	}
	cmd.Env = append(os.Environ(), testModeEnv+"="+mode)
	cmd.ExtraFiles = []*os.File{childIn, childOut}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	childIn.Close()
	childOut.Close()
	var in io.Reader = fromChild
	var out io.Writer = toChild
	if raw {
		in, out = link.PipeReader(fromChild), link.PipeWriter(toChild)
	}
	replies := make(chan error, 1)
	readerDone := make(chan struct{})
	if handoff {
		go func() {
			defer close(readerDone)
			buf := make([]byte, 32)
			for {
				_, err := io.ReadFull(in, buf)
				replies <- err
				if err != nil {
					return
				}
			}
		}()
	} else {
		close(readerDone)
	}
	defer func() {
		toChild.Close() // the child sees EOF and exits, so the reader does
		if err := cmd.Wait(); err != nil {
			b.Error(err)
		}
		<-readerDone
		fromChild.Close()
	}()
	buf := make([]byte, 32)
	b.ReportAllocs()
	var lat latencies
	cs := switchesOf(os.Getpid(), cmd.Process.Pid)
	for b.Loop() {
		t0 := time.Now()
		if _, err := out.Write(buf); err != nil {
			b.Fatal(err)
		}
		if handoff {
			err = <-replies
		} else {
			_, err = io.ReadFull(in, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
		lat.add(t0)
	}
	cs.report(b)
	lat.report(b)
}

// switches counts the voluntary context switches of a parent and its
// child: a thread that blocks and is woken again costs one, so switches
// per round trip count the hand-offs between threads, whatever the load
// of the machine, which makes the times of a shared machine wander.
type switches struct {
	parent, child int
	p0, c0        int
}

func switchesOf(parent, child int) switches {
	return switches{parent, child, countSwitches(parent), countSwitches(child)}
}

func (s switches) report(b *testing.B) {
	b.ReportMetric(float64(countSwitches(s.parent)-s.p0)/float64(b.N), "parent-sw/op")
	b.ReportMetric(float64(countSwitches(s.child)-s.c0)/float64(b.N), "child-sw/op")
}

// countSwitches sums the voluntary context switches over the threads of
// pid (from /proc/PID/task/TID/status).
func countSwitches(pid int) int {
	n := 0
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "voluntary_ctxt_switches" {
				c, _ := strconv.Atoi(strings.TrimSpace(v))
				n += c
			}
		}
	}
	return n
}

// latencies records round trips to report their median and 90th
// percentile (p50-ns, p90-ns) beside the mean: on a machine shared with
// other loads the mean follows the noise, the median much less.
type latencies []time.Duration

func (l *latencies) add(t0 time.Time) { *l = append(*l, time.Since(t0)) }

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2]), "p50-ns")
	b.ReportMetric(float64(l[len(l)*9/10]), "p90-ns")
}

// BenchmarkPipelined measures throughput with up to 256 no-op jobs in
// flight on one worker, each sent alone as the core would dispatch them.
func BenchmarkPipelined(b *testing.B) {
	const window = 256
	w, s := benchTransport(b)
	args := [][]byte{nil}
	inflight := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if inflight == window {
			<-s.done
			inflight--
		}
		// A fresh job each time (one allocation, the core's): the
		// transport may read a job until its result arrives.
		w.Send([]*wire.Job{{ID: uint64(i), Name: "noop", Args: args}})
		inflight++
	}
	for ; inflight > 0; inflight-- {
		<-s.done
	}
}
