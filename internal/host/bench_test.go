package host

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
)

// BenchmarkHostJob measures the per-job path of a Host: Run of one no-op
// job until its result is emitted, one at a time (latency) and many in
// flight (throughput), next to a bare goroutine per job for reference.
func BenchmarkHostJob(b *testing.B) {
	noop := registry{"noop": func(context.Context, []byte) ([]byte, error) { return nil, nil }}
	arg := [][]byte{nil}

	b.Run("sequential", func(b *testing.B) {
		done := make(chan struct{}, 1)
		h := New(Config{Registry: noop, Emit: func(string, wire.Result) { done <- struct{}{} }})
		defer h.Close()
		run := &wire.Run{Jobs: []wire.Job{{Name: "noop", Args: arg}}}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			run.Jobs[0].ID = uint64(i)
			h.Run(run)
			<-done
		}
	})
	b.Run("sequential-raw-goroutine", func(b *testing.B) {
		done := make(chan struct{}, 1)
		b.ReportAllocs()
		for b.Loop() {
			go func() { done <- struct{}{} }()
			<-done
		}
	})
	b.Run("batch-of-256", func(b *testing.B) {
		var wg sync.WaitGroup
		h := New(Config{Registry: noop, Emit: func(string, wire.Result) { wg.Done() }})
		defer h.Close()
		run := &wire.Run{Jobs: make([]wire.Job, 256)}
		for i := range run.Jobs {
			run.Jobs[i] = wire.Job{ID: uint64(i), Name: "noop", Args: arg}
		}
		b.ReportAllocs()
		for b.Loop() {
			wg.Add(len(run.Jobs))
			h.Run(run)
			wg.Wait()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(run.Jobs)), "ns/job")
	})
}

// BenchmarkServeConnRoundTrip measures one job through ServeConn over OS
// pipes in this process: encode, read, run, write, decode.
func BenchmarkServeConnRoundTrip(b *testing.B) {
	noop := registry{"noop": func(context.Context, []byte) ([]byte, error) { return nil, nil }}
	inR, inW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer outR.Close()
	done := make(chan error, 1)
	go func() { done <- ServeConn(context.Background(), Config{Registry: noop}, inR, outW) }()
	rd := wire.NewReader(outR, 0)
	if _, err := rd.Next(); err != nil { // Hello
		b.Fatal(err)
	}
	w := wire.NewWriter(inW, 0)
	run := &wire.Run{Jobs: []wire.Job{{Name: "noop", Args: [][]byte{nil}}}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		run.Jobs[0].ID = uint64(i)
		if err := w.Write(run); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		if _, err := rd.Next(); err != nil {
			b.Fatal(err)
		}
	}
	inW.Close()
	go func() {
		for {
			if _, err := rd.Next(); err != nil {
				return
			}
		}
	}()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	outW.Close()
}
