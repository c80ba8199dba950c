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
func ExampleFuture_Cancel() {
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
func ExampleFuture_Done() {
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
func ExampleExecutor_Shutdown() {
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
