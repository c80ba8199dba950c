package cluster_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// echoEnv makes a worker process also answer raw requests on echoSubject.
const (
	echoEnv     = "APLEX_CLUSTER_TEST_ECHO_URL"
	echoSubject = "bench.echo"
)

// serveEcho answers every request on echoSubject with its own payload.
func serveEcho(url string) {
	nc, err := nats.Connect(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return
	}
	// A queue group: with several workers, one answers each request.
	nc.QueueSubscribe(echoSubject, "echo", func(m *nats.Msg) { m.Respond(m.Data) })
	nc.Flush()
}

// BenchmarkRoundTrip compares one round trip of a no-op work through the
// cluster executor with a raw NATS request/reply, between the same two
// processes (this one and one worker process) over TCP loopback, in the
// same run. "embedded" is the default set-up: the executor's own server,
// reached in-process, and a local worker.
func BenchmarkRoundTrip(b *testing.B) {
	srv := startServer(b, 0, nil)
	url := srv.ClientURL()
	spawnWorker(b, url, "bench", "echo-worker", echoEnv+"="+url)
	ctx := context.Background()

	b.Run("raw-nats", func(b *testing.B) {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		payload := []byte{1, 2, 3, 4, 5, 6, 7, 8}
		for {
			if _, err := nc.Request(echoSubject, payload, time.Second); err == nil {
				break // the echo is up
			}
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := nc.Request(echoSubject, payload, 5*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cluster", func(b *testing.B) {
		ex := newExecutor(b, cluster.WithURL(url), cluster.WithPool("bench"), aplex.WithPoolSize(1))
		roundTrips(ctx, b, ex)
	})
	b.Run("embedded", func(b *testing.B) {
		ex := newExecutor(b, cluster.SpawnLocalWorkers(1))
		roundTrips(ctx, b, ex)
	})
}

func roundTrips(ctx context.Context, b *testing.B, ex *aplex.Executor) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f, err := aplex.Submit(ctx, ex, noop, i)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Get(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMap measures tiny-work throughput: a Map of no-op works over
// two local worker processes, one dispatch per work (chunk 1) or per
// hundred (chunk 100), next to raw pipelined NATS request/reply between
// the same processes with as many requests in flight as the Map keeps (the
// workers also answer raw requests, in a queue group). One op is one work
// or one request. The last case is the design target's shape: three
// workers, chunks of 100, on the embedded server.
func BenchmarkMap(b *testing.B) {
	srv := startServer(b, 0, nil)
	url := srv.ClientURL()
	ex := newExecutor(b, cluster.WithURL(url), cluster.SpawnLocalWorkers(2),
		aplex.WithWorkerEnv(echoEnv+"="+url))
	const window = 600 // Map's default: 2 (CPUs) × 300 works per worker
	b.Run("raw-nats-pipelined", func(b *testing.B) {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		inbox := nats.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			b.Fatal(err)
		}
		sub.SetPendingLimits(-1, -1)
		for {
			if _, err := nc.Request(echoSubject, nil, time.Second); err == nil {
				break // the echo is up
			}
		}
		payload := []byte{1, 2, 3, 4, 5, 6, 7, 8}
		b.ResetTimer()
		start := time.Now()
		sent, got := 0, 0
		for got < b.N {
			for sent < b.N && sent-got < window {
				if err := nc.PublishRequest(echoSubject, inbox, payload); err != nil {
					b.Fatal(err)
				}
				sent++
			}
			if _, err := sub.NextMsg(10 * time.Second); err != nil {
				b.Fatal(err)
			}
			got++
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "works/s")
	})
	for _, chunk := range []int{1, 100} {
		b.Run(fmt.Sprintf("chunk=%d", chunk), func(b *testing.B) { mapNoops(b, ex, chunk) })
	}
	b.Run("embedded/workers=3/chunk=100", func(b *testing.B) {
		ex := newExecutor(b, cluster.SpawnLocalWorkers(3))
		mapNoops(b, ex, 100)
	})
}

func mapNoops(b *testing.B, ex *aplex.Executor, chunk int) {
	inputs := func(yield func(int) bool) {
		for i := range b.N {
			if !yield(i) {
				return
			}
		}
	}
	b.ResetTimer()
	start := time.Now()
	n := 0
	for _, err := range aplex.Map(context.Background(), ex, noop, inputs, aplex.ChunkSize(chunk)) {
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "works/s")
}

// BenchmarkSealed puts a sealed pool (cluster.WithPoolKey) next to an
// unsealed one on the same server, with the same local workers: one round
// trip of a no-op work, and a Map of no-op works in chunks of 100 over two
// workers (the case whose cost the seal must keep within 10 %).
func BenchmarkSealed(b *testing.B) {
	srv := startServer(b, 0, nil)
	url := srv.ClientURL()
	key := cluster.NewPoolKey()
	kinds := []struct {
		name string
		opts []aplex.Option
	}{
		{"unsealed", []aplex.Option{cluster.WithPool("bench-open")}},
		{"sealed", []aplex.Option{cluster.WithPool("bench-sealed"), cluster.WithPoolKey(key)}},
	}
	var rt, maps [2]*aplex.Executor
	for i, k := range kinds {
		rt[i] = newExecutor(b, append([]aplex.Option{cluster.WithURL(url), cluster.SpawnLocalWorkers(1)}, k.opts...)...)
		b.Run("roundtrip/"+k.name, func(b *testing.B) { roundTrips(context.Background(), b, rt[i]) })
	}
	for i, k := range kinds {
		maps[i] = newExecutor(b, append([]aplex.Option{cluster.WithURL(url), cluster.SpawnLocalWorkers(2)}, k.opts...)...)
		b.Run("map-chunk=100/"+k.name, func(b *testing.B) { mapNoops(b, maps[i], 100) })
	}
	// On a shared machine the load drifts between two runs; these
	// alternate short batches of both kinds, so the drift hits both, and
	// report the ratio sealed/unsealed of the time taken (1.05: 5 % slower).
	b.Run("alternating/roundtrip", func(b *testing.B) {
		alternate(b, func(ex *aplex.Executor) {
			for i := range 50 {
				f, err := aplex.Submit(context.Background(), ex, noop, i)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Get(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		}, rt, "sealed/unsealed")
	})
	b.Run("alternating/map-chunk=100", func(b *testing.B) {
		alternate(b, func(ex *aplex.Executor) {
			for _, err := range aplex.Map(context.Background(), ex, noop, slices.Values(make([]int, 20000)), aplex.ChunkSize(100)) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}, maps, "sealed/unsealed")
	})
}

// BenchmarkPrefetch runs batches of 2,000 works sleeping 10 ms on 2 local
// workers × 100, without and with WithPrefetch(100), alternating, and
// reports each one's wall time against the ideal ceil(2000/200) × 10 ms
// and the ratio of their times (below 1: prefetch is faster). Each freed
// slot waits for a NATS round trip to the executor and back without
// prefetch; with it the worker starts its next held work at once.
func BenchmarkPrefetch(b *testing.B) {
	srv := startServer(b, 0, nil)
	url := srv.ClientURL()
	const works, slots = 2000, 100
	var exs [2]*aplex.Executor
	for i, prefetch := range []int{0, slots} {
		exs[i] = newExecutor(b, cluster.WithURL(url), cluster.WithPool("bench-prefetch-"+itoa(i)), cluster.SpawnLocalWorkers(2),
			aplex.WithMaxWorksPerWorker(slots), aplex.WithPrefetch(prefetch), aplex.WithWorkerOutput(newTestLog(b)))
	}
	ideal := time.Duration((works+2*slots-1)/(2*slots)) * 10 * time.Millisecond
	batch := func(ex *aplex.Executor) {
		fs := make([]*aplex.Future[string], works)
		for i := range fs {
			fs[i] = submit(b, ex, whoami, 10*time.Millisecond)
		}
		for _, f := range fs {
			if _, err := f.Get(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	batch(exs[0]) // warm both pools up, untimed
	batch(exs[1])
	took, n := alternate(b, batch, exs, "prefetch/none")
	b.ReportMetric(float64(took[0])/float64(n)/float64(ideal), "none-x-ideal")
	b.ReportMetric(float64(took[1])/float64(n)/float64(ideal), "prefetch-x-ideal")
}

// alternate runs batch on exs[0] and exs[1] in turn, b.N times each,
// reports the ratio of their total times as unit (exs[1]'s over exs[0]'s),
// and returns those times and the number of rounds.
func alternate(b *testing.B, batch func(*aplex.Executor), exs [2]*aplex.Executor, unit string) (took [2]time.Duration, n int) {
	for ; b.Loop(); n++ {
		for j := range 2 {
			i := (n + j) % 2 // who goes first alternates too
			start := time.Now()
			batch(exs[i])
			took[i] += time.Since(start)
		}
	}
	b.ReportMetric(float64(took[1])/float64(took[0]), unit)
	return took, n
}
