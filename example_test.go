package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aplex-go/aplex"
)

// Submit a work and wait for its result.
func ExampleSubmit() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	upper := aplex.Fn(func(_ context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	})
	f, err := aplex.Submit(context.Background(), ex, upper, "hello")
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	v, err := f.Get(context.Background())
	fmt.Println(v, err)
	// Output: HELLO <nil>
}

// Map runs a work over a sequence and yields results in input order, with
// chunks of inputs sent together and a timeout for the whole map.
func ExampleMap() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	square := aplex.Fn(func(_ context.Context, x int) (int, error) { return x * x, nil })
	inputs := slices.Values([]int{1, 2, 3, 4, 5, 6, 7})
	for v, err := range aplex.Map(context.Background(), ex, square, inputs, aplex.ChunkSize(3), aplex.Timeout(time.Second)) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Print(v, ";")
	}
	fmt.Println()
	// Output: 1;4;9;16;25;36;49;
}

// Cancel stops a running work through its ctx; the future ends cancelled.
func ExampleFuture_cancel() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	started := make(chan struct{})
	wait := aplex.Fn(func(ctx context.Context, _ struct{}) (string, error) {
		close(started)
		<-ctx.Done() // a well-behaved work watches its ctx
		return "", ctx.Err()
	})
	f, err := aplex.Submit(context.Background(), ex, wait, struct{}{})
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	<-started
	fmt.Println("cancelled:", f.Cancel())
	_, err = f.Get(context.Background())
	fmt.Println(errors.Is(err, context.Canceled), f.Cancelled())
	// Output:
	// cancelled: true
	// true true
}

// Every future can be awaited in a select, beside timers and other channels.
func ExampleFuture_select() {
	ex, err := aplex.NewThreadExecutor()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	slow := aplex.Fn(func(ctx context.Context, d time.Duration) (string, error) {
		select {
		case <-time.After(d):
			return "finished", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	fast, err := aplex.Submit(context.Background(), ex, slow, time.Millisecond)
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	never, err := aplex.Submit(context.Background(), ex, slow, time.Hour)
	if err != nil {
		fmt.Println("submit:", err)
		return
	}

	select {
	case <-fast.Done():
		v, _ := fast.Get(context.Background())
		fmt.Println("fast:", v)
	case <-never.Done():
		fmt.Println("never happens")
	}
	never.Cancel()
	// Output: fast: finished
}

// leastLoadedEven is a custom balancer: it sends even keys to worker 0 and
// everything else to the least loaded worker with room.
type leastLoadedEven struct{}

func (leastLoadedEven) Pick(ws aplex.Workers, meta any) int {
	if k, ok := meta.(int); ok && k%2 == 0 && ws.Available(0) {
		return 0
	}
	best := -1
	for i := range ws.Len() {
		if ws.Available(i) && (best < 0 || ws.Load(i) < ws.Load(best)) {
			best = i
		}
	}
	return best
}

// A custom LoadBalancer is any type with a Pick method.
func ExampleLoadBalancer() {
	type who struct{}
	ex, err := aplex.NewThreadExecutor(
		aplex.WithPoolSize(3),
		aplex.WithLoadBalancer(leastLoadedEven{}),
		aplex.WithWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
			return context.WithValue(ctx, who{}, w.ID), nil
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	worker := aplex.Fn(func(ctx context.Context, _ int) (int, error) { return ctx.Value(who{}).(int), nil })
	for _, key := range []int{2, 4, 6} {
		f, err := aplex.Submit(context.Background(), ex, worker, key, aplex.Meta(key))
		if err != nil {
			fmt.Println("submit:", err)
			return
		}
		id, _ := f.Get(context.Background())
		fmt.Printf("key %d ran on worker %d\n", key, id)
	}
	// Output:
	// key 2 ran on worker 0
	// key 4 ran on worker 0
	// key 6 ran on worker 0
}

// Wait returns as soon as the first of several futures ends.
func ExampleWait() {
	ex, err := aplex.NewThreadExecutor()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	nap := aplex.Fn(func(ctx context.Context, d time.Duration) (time.Duration, error) {
		select {
		case <-time.After(d):
			return d, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	a, err := aplex.Submit(context.Background(), ex, nap, time.Hour)
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	b, err := aplex.Submit(context.Background(), ex, nap, time.Millisecond)
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	done, pending, err := aplex.Wait(context.Background(), aplex.FirstCompleted, a, b)
	if err != nil {
		fmt.Println("wait:", err)
		return
	}
	fmt.Println(len(done), len(pending), done[0] == aplex.Awaitable(b))
	a.Cancel()
	// Output: 1 1 true
}

// Shutdown lets queued and running works finish until its ctx ends.
func ExampleExecutor_shutdown() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	work := aplex.Fn(func(_ context.Context, x int) (int, error) { time.Sleep(time.Millisecond); return x, nil })
	var fs []*aplex.Future[int]
	for i := range 3 {
		f, err := aplex.Submit(context.Background(), ex, work, i)
		if err != nil {
			fmt.Println("submit:", err)
			return
		}
		fs = append(fs, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", ex.Shutdown(ctx))
	for _, f := range fs {
		fmt.Println(f.Get(ctx))
	}
	_, err = aplex.Submit(context.Background(), ex, work, 9)
	fmt.Println(errors.Is(err, aplex.ErrClosed))
	// Output:
	// shutdown: <nil>
	// 0 <nil>
	// 1 <nil>
	// 2 <nil>
	// true
}

// A pool of goroutine workers in this process: here 2 workers, each running
// up to 50 works at once, with at most 1000 more waiting in the queue.
func ExampleNewThreadExecutor() {
	ex, err := aplex.NewThreadExecutor(
		aplex.WithPoolSize(2),
		aplex.WithMaxWorksPerWorker(50),
		aplex.WithQueueSize(1000),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	length := aplex.Fn(func(_ context.Context, s string) (int, error) { return len(s), nil })
	f, err := aplex.Submit(context.Background(), ex, length, "four")
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	fmt.Println(f.Get(context.Background()))
	for _, w := range ex.Stats().Workers {
		fmt.Println(w.Name)
	}
	// Output:
	// 4 <nil>
	// thread-0
	// thread-1
}

// TrySubmit never waits: when the bounded queue is full it returns ErrFull
// at once, where Submit would wait for room.
func ExampleTrySubmit() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1), aplex.WithQueueSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	gate := make(chan struct{})
	held := aplex.Fn(func(_ context.Context, x int) (int, error) { <-gate; return x, nil })
	var fs []*aplex.Future[int]
	for i := range 3 { // one runs, one waits in the queue, one finds it full
		f, err := aplex.TrySubmit(context.Background(), ex, held, i)
		if err != nil {
			fmt.Println(i, "refused:", errors.Is(err, aplex.ErrFull))
			continue
		}
		fs = append(fs, f)
	}
	close(gate)
	for _, f := range fs {
		fmt.Println(f.Get(context.Background()))
	}
	// Output:
	// 2 refused: true
	// 0 <nil>
	// 1 <nil>
}

// MapUnordered yields each result as soon as it is done, in completion
// order; the sum does not depend on the order.
func ExampleMapUnordered() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	square := aplex.Fn(func(_ context.Context, x int) (int, error) { return x * x, nil })
	var got []int
	for v, err := range aplex.MapUnordered(context.Background(), ex, square, slices.Values([]int{1, 2, 3, 4}), aplex.ChunkSize(2)) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		got = append(got, v)
	}
	slices.Sort(got)
	fmt.Println(got)
	// Output: [1 4 9 16]
}

// AsCompleted yields futures in the order they end. Here the works end in
// the order their gates open: 2, then 0, then 1.
func ExampleAsCompleted() {
	ex, err := aplex.NewThreadExecutor()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	gates := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	wait := aplex.Fn(func(_ context.Context, i int) (int, error) { <-gates[i]; return i, nil })
	var fs []aplex.Awaitable
	for i := range gates {
		f, err := aplex.Submit(context.Background(), ex, wait, i)
		if err != nil {
			fmt.Println("submit:", err)
			return
		}
		fs = append(fs, f)
	}
	order := []int{2, 0, 1}
	close(gates[order[0]])
	n := 0
	for a, err := range aplex.AsCompleted(context.Background(), fs...) {
		if err != nil {
			fmt.Println(err)
			return
		}
		v, _ := a.(*aplex.Future[int]).Get(context.Background())
		fmt.Println("ended:", v)
		if n++; n < len(order) {
			close(gates[order[n]]) // let the next one end
		}
	}
	// Output:
	// ended: 2
	// ended: 0
	// ended: 1
}

// slotKey is the ctx key under which slotInit leaves a worker's slot.
type slotKey struct{}

// slotInit is a WithWorkerInit that leaves each worker's slot in its ctx,
// and whoRan a work that returns it: the balancer examples show with them
// which worker ran each work.
var (
	slotInit = aplex.WithWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
		return context.WithValue(ctx, slotKey{}, w.ID), nil
	})
	whoRan = aplex.Fn(func(ctx context.Context, _ string) (int, error) { return ctx.Value(slotKey{}).(int), nil })
)

// runOn submits whoRan once per key, one after the other, with the key as
// Meta, and prints which worker ran each.
func runOn(ex *aplex.Executor, keys ...string) {
	for _, k := range keys {
		f, err := aplex.Submit(context.Background(), ex, whoRan, k, aplex.Meta(k))
		if err != nil {
			fmt.Println("submit:", err)
			return
		}
		slot, err := f.Get(context.Background())
		fmt.Println(k, "ran on worker", slot, err)
	}
}

// RoundRobin, the default, cycles through the workers with room.
func ExampleRoundRobin() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(3), aplex.WithLoadBalancer(aplex.RoundRobin()), slotInit)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())
	runOn(ex, "a", "b", "c", "d")
	// Output:
	// a ran on worker 0 <nil>
	// b ran on worker 1 <nil>
	// c ran on worker 2 <nil>
	// d ran on worker 0 <nil>
}

// Affinity keeps each Meta key on one worker while it has room: a worker's
// cache or connection serves the same customer each time.
func ExampleAffinity() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(3), aplex.WithLoadBalancer(aplex.Affinity()), slotInit)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	first := map[string]int{}
	same := true
	for _, k := range []string{"alice", "bob", "carol", "alice", "bob", "carol", "alice"} {
		f, err := aplex.Submit(context.Background(), ex, whoRan, k, aplex.Meta(k))
		if err != nil {
			fmt.Println("submit:", err)
			return
		}
		slot, err := f.Get(context.Background())
		if err != nil {
			fmt.Println(err)
			return
		}
		if s, seen := first[k]; seen && s != slot {
			same = false
		}
		first[k] = slot
	}
	fmt.Println("every key stayed on its worker:", same)
	// Output: every key stayed on its worker: true
}

// Average sends each work to the least loaded worker, the first on a tie.
// Here the works are held, so the load builds up: 0, then 1, then 0 again.
func ExampleAverage() {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2), aplex.WithLoadBalancer(aplex.Average()), slotInit)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	gate := make(chan struct{})
	held := aplex.Fn(func(ctx context.Context, _ int) (int, error) { <-gate; return ctx.Value(slotKey{}).(int), nil })
	var fs []*aplex.Future[int]
	for i := range 3 {
		f, err := aplex.Submit(context.Background(), ex, held, i)
		if err != nil {
			fmt.Println("submit:", err)
			return
		}
		fs = append(fs, f)
	}
	close(gate)
	for i, f := range fs {
		slot, err := f.Get(context.Background())
		fmt.Println("work", i, "ran on worker", slot, err)
	}
	// Output:
	// work 0 ran on worker 0 <nil>
	// work 1 ran on worker 1 <nil>
	// work 2 ran on worker 0 <nil>
}

// PowerOfTwo and Random place works at random among the workers with
// room: PowerOfTwo takes the less loaded of two, which keeps the pool
// nearly as even as Average at a constant cost per pick.
func ExamplePowerOfTwo() {
	for _, lb := range []aplex.LoadBalancer{aplex.PowerOfTwo(), aplex.Random()} {
		ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(4), aplex.WithLoadBalancer(lb))
		if err != nil {
			fmt.Println(err)
			return
		}
		one := aplex.Fn(func(context.Context, int) (int, error) { return 1, nil })
		total := 0
		for v, err := range aplex.Map(context.Background(), ex, one, slices.Values(make([]int, 100))) {
			if err != nil {
				fmt.Println(err)
				break
			}
			total += v
		}
		fmt.Println(total, "works ran on", len(ex.Stats().Workers), "workers")
		if err := ex.Shutdown(context.Background()); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// 100 works ran on 4 workers
	// 100 works ran on 4 workers
}
