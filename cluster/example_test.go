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
	"github.com/nats-io/nats.go"
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

// Serve makes this process a worker of a pool until its ctx ends. Here it
// runs in a goroutine beside an executor that embeds the NATS server, so the
// example needs nothing else; a dedicated worker program calls it from main
// (see the program example).
func ExampleServe() {
	ex, err := cluster.NewExecutor(cluster.WithPool("serve-example")) // embedded NATS, no workers yet
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Shutdown(context.Background())

	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx,
			cluster.ServeURL(cluster.URL(ex)),
			cluster.ServePool("serve-example"),
			cluster.ServeWorkerID("worker-a"),
			cluster.ServeMaxWorks(8),
		)
	}()

	f, err := aplex.Submit(context.Background(), ex, workerName, 0) // waits in the queue until worker-a joins
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Get(context.Background()))
	stop() // the worker drains, says goodbye and Serve returns
	fmt.Println("Serve returned:", <-served)
	// Output:
	// worker-a <nil>
	// Serve returned: <nil>
}

// The README's cluster block: an executor with an embedded NATS server and
// three local worker processes, and the URL where other workers can join.
func ExampleURL() {
	ex, err := cluster.NewExecutor(cluster.SpawnLocalWorkers(3)) // embedded NATS + 3 local workers
	// or: cluster.NewExecutor(cluster.WithURL("nats://nats:4222"), cluster.WithPool("images"),
	//         cluster.WithNATSOptions(nats.UserCredentials("app.creds")))
	// or: cluster.NewExecutor(cluster.WithConn(nc))
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Shutdown(context.Background())
	fmt.Println("workers can join at", cluster.URL(ex))
}

// A dedicated worker program: it serves its registered works to the
// executors of pool "images" until SIGTERM, then drains and leaves.
func ExampleServe_program() {
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

// needLabel is the Meta of a work that wants a worker with a label.
type needLabel struct{ key, value string }

// gpuLabel is the Meta of a work that wants a worker labelled gpu=true.
var gpuLabel = needLabel{"gpu", "true"}

// labelBalancer sends a work whose Meta is a needLabel to the least loaded
// worker with that label, and any other work to the least loaded worker.
// It is a preference: when no labelled worker has room, Pick returns -1 and
// the executor gives the work to the first worker with room (see
// aplex.LoadBalancer); a strict placement needs a pool of its own.
type labelBalancer struct{}

func (labelBalancer) Pick(ws aplex.Workers, meta any) int {
	need, labelled := meta.(needLabel)
	best := -1
	for i := range ws.Len() {
		if !ws.Available(i) {
			continue
		}
		if labelled {
			if v, ok := ws.Label(i, need.key); !ok || v != need.value {
				continue
			}
		}
		if best < 0 || ws.Load(i) < ws.Load(best) {
			best = i
		}
	}
	return best
}

// workerName names the cluster worker a work runs on.
var workerName = aplex.Register("example.worker-name", func(ctx context.Context, _ int) (string, error) {
	return cluster.WorkerID(ctx), nil
})

// A balancer that routes works needing a GPU to the worker labelled
// gpu=true. Here a local worker gets the label; a worker on a GPU machine
// would be started with cluster.ServeLabels or APLEX_CLUSTER_LABELS=gpu=true.
func ExampleLocalWorkerLabels() {
	ex, err := cluster.NewExecutor(
		cluster.SpawnLocalWorkers(2),
		cluster.LocalWorkerLabels(func(i int) map[string]string {
			if i == 1 {
				return map[string]string{"gpu": "true"}
			}
			return nil
		}),
		aplex.WithLoadBalancer(labelBalancer{}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Shutdown(context.Background())

	gpuWorker := ""
	for _, w := range ex.Stats().Workers {
		fmt.Printf("worker %d labels %v\n", w.ID, w.Labels)
		if w.Labels["gpu"] == "true" {
			gpuWorker = w.Name
		}
	}
	var fs []*aplex.Future[string]
	for range 6 {
		f, err := aplex.Submit(context.Background(), ex, workerName, 0, aplex.Meta(gpuLabel))
		if err != nil {
			log.Fatal(err)
		}
		fs = append(fs, f)
	}
	onGPU := 0
	for _, f := range fs {
		name, err := f.Get(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		if name == gpuWorker {
			onGPU++
		}
	}
	fmt.Printf("%d of %d gpu works ran on the gpu worker\n", onGPU, len(fs))
	// Output:
	// worker 0 labels map[]
	// worker 1 labels map[gpu:true]
	// 6 of 6 gpu works ran on the gpu worker
}

// A sealed pool on an external nats-server with TLS: the executor reads
// the pool key from a file (made with `openssl rand -hex 32`), and its
// workers get the same key through APLEX_CLUSTER_KEY_FILE.
func ExampleWithPoolKey() {
	run := func() (*aplex.Executor, error) {
		b, err := os.ReadFile("/run/secrets/aplex-pool-key")
		if err != nil {
			return nil, err
		}
		key, err := cluster.ParsePoolKey(string(b))
		if err != nil {
			return nil, err
		}
		return cluster.NewExecutor(
			cluster.WithURL("tls://nats.internal:4222"), cluster.WithPool("images"), cluster.WithPoolKey(key),
			cluster.WithNATSOptions(nats.RootCAs("ca.pem"), nats.ClientCert("executor-cert.pem", "executor-key.pem"),
				nats.UserInfo("images-executor", os.Getenv("NATS_PASSWORD"))))
	}
	_ = run // needs the server and the files above
}
