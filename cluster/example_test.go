package cluster_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// An executor with an embedded NATS server and two local worker processes:
// the whole distributed path on one machine. The program's main must call
// aplex.Main first, and square must be registered at package level:
//
//	var square = aplex.Register("square", func(_ context.Context, x int) (int, error) { return x * x, nil })
func ExampleNewExecutor() {
	ex, err := cluster.NewExecutor(cluster.SpawnLocalWorkers(2))
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Shutdown(context.Background())

	inputs := func(yield func(int) bool) {
		for i := 1; i <= 10; i++ {
			if !yield(i) {
				return
			}
		}
	}
	sum := 0
	for v, err := range aplex.Map(context.Background(), ex, square, inputs, aplex.ChunkSize(5)) {
		if err != nil {
			log.Fatal(err)
		}
		sum += v
	}
	fmt.Println("sum of squares:", sum)
	// Output: sum of squares: 385
}

// An executor using an existing NATS deployment with authentication, in
// its own pool, waiting at start for three workers.
func ExampleNewExecutor_remote() {
	ex, err := cluster.NewExecutor(
		cluster.WithURL("nats://nats-1:4222", "nats://nats-2:4222"),
		cluster.WithNATSOptions( /* nats.UserCredentials("/etc/aplex/executor.creds") */ ),
		cluster.WithPool("images"),
		aplex.WithPoolSize(3),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Shutdown(context.Background())
	// Submit and Map as with any executor.
}

// A dedicated worker program: it serves its registered works to the
// executors of pool "images" until SIGTERM, then drains and leaves.
func ExampleServe() {
	aplex.Main() // also lets the binary be started as APLEX_WORKER_ROLE=cluster

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cluster.Serve(ctx,
		cluster.ServeURL("nats://nats-1:4222"),
		cluster.ServePool("images"),
		cluster.ServeMaxWorks(64),
		cluster.ServeLabels(map[string]string{"zone": "eu-west-1a"}),
	)
	if err != nil {
		log.Fatal(err)
	}
}
