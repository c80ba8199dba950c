//go:build linux

package proc

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// benchSink counts finished jobs on a channel.
type benchSink struct {
	joined chan xport.Worker
	done   chan struct{}
}

func (s *benchSink) Join(w xport.Worker)                              { s.joined <- w }
func (s *benchSink) Retire(xport.Worker)                              {}
func (s *benchSink) Lost(xport.Worker, error)                         {}
func (s *benchSink) Broken(error)                                     {}
func (s *benchSink) Outstanding(xport.Worker) ([]*wire.Job, []uint64) { return nil, nil }
func (s *benchSink) Done(_ xport.Worker, rs []wire.Result) {
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

// BenchmarkRoundTrip compares one no-op job through the transport (Send →
// child host → Done) with a raw 32-byte ping-pong over two os.Pipe between
// the same parent and a child of the same binary: the floor.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("transport", func(b *testing.B) {
		w, s := benchTransport(b)
		j := &wire.Job{Name: "noop", Args: [][]byte{nil}}
		jobs := []*wire.Job{j}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			j.ID = uint64(i)
			w.Send(jobs)
			<-s.done
		}
	})
	b.Run("raw-pipes", func(b *testing.B) {
		childIn, toChild, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		fromChild, childOut, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		exe, _ := os.Executable()
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), testModeEnv+"=pingpong")
		cmd.ExtraFiles = []*os.File{childIn, childOut}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		childIn.Close()
		childOut.Close()
		defer func() {
			toChild.Close()
			cmd.Wait()
			fromChild.Close()
		}()
		buf := make([]byte, 32)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := toChild.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(fromChild, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
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
