// Cluster: the distributed path on one machine, with nothing installed. One
// command starts an embedded NATS server, three worker processes (this
// binary, re-executed) and the executor, maps a few hundred works over the
// workers through NATS, and prints how many each worker ran.
//
//	go run ./examples/cluster
//
// The same program runs across machines. Start a NATS server from your own
// install (nats-server -p 4222), then on each worker machine run this binary
// as a worker, either through the environment, which aplex.Main reads:
//
//	APLEX_WORKER_ROLE=cluster APLEX_CLUSTER_URL=nats://nats-host:4222 ./cluster
//
// or with the flag this program adds:
//
//	./cluster -worker nats://nats-host:4222
//
// and run the executor against the same server, without local workers:
//
//	./cluster -url nats://nats-host:4222 -local 0
//
// Workers and executor must be built from the same code: a worker runs
// only the works it registered itself.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// result is what the work sends back: its answer and where it ran.
type result struct {
	Digest string
	Worker string
}

// hash is the work: about a millisecond of CPU, then the id of the worker
// that ran it. Registered at package level, so worker processes have it.
var hash = aplex.Register("example.cluster.hash", func(ctx context.Context, n int) (result, error) {
	sum := sha256.Sum256([]byte(fmt.Sprint(n)))
	for range 3000 {
		sum = sha256.Sum256(sum[:])
	}
	return result{Digest: fmt.Sprintf("%x", sum[:4]), Worker: cluster.WorkerID(ctx)}, nil
})

func main() {
	aplex.Main() // first thing: a re-executed binary becomes a worker here

	worker := flag.String("worker", "", "serve as a cluster worker against this NATS URL")
	url := flag.String("url", "", "NATS URL for the executor (default: an embedded server)")
	local := flag.Int("local", 3, "worker processes to start on this machine")
	n := flag.Int("n", 300, "number of works")
	flag.Parse()

	if *worker != "" {
		serve(*worker)
		return
	}

	opts := []aplex.Option{
		cluster.SpawnLocalWorkers(*local),
		aplex.WithLoadBalancer(aplex.PowerOfTwo()),
	}
	if *url != "" {
		opts = append(opts, cluster.WithURL(*url))
		if *local == 0 {
			opts = append(opts, aplex.WithPoolSize(1)) // wait for one remote worker
		}
	}
	ex, err := cluster.NewExecutor(opts...)
	if err != nil {
		log.Fatal(err)
	}
	// cluster.URL(ex) would tell more workers where to join, but for the
	// embedded server it holds the server's token and the pool key: a
	// secret, kept out of logs and command lines.
	fmt.Printf("%d local worker processes\n", *local)

	inputs := func(yield func(int) bool) {
		for i := range *n {
			if !yield(i) {
				return
			}
		}
	}
	start := time.Now()
	perWorker := map[string]int{}
	for r, err := range aplex.Map(context.Background(), ex, hash, inputs, aplex.ChunkSize(5)) {
		if err != nil {
			log.Fatal(err)
		}
		perWorker[r.Worker]++
	}
	elapsed := time.Since(start)

	fmt.Printf("%d works in %v (%.0f works/s)\n", *n, elapsed.Round(time.Millisecond), float64(*n)/elapsed.Seconds())
	for _, w := range slices.Sorted(maps.Keys(perWorker)) {
		fmt.Printf("  worker %s ran %d\n", w, perWorker[w])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ex.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
}

// serve runs this process as a cluster worker until Ctrl-C or SIGTERM,
// then leaves cleanly: it finishes its works and says goodbye.
func serve(url string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "serving works to executors at %s (Ctrl-C to leave)\n", url)
	if err := cluster.Serve(ctx, cluster.ServeURL(url)); err != nil {
		log.Fatal(err)
	}
}
