package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aplex-go/aplex"
)

// The works, errors and set-up these examples run in worker processes. They
// are declared at package level, as a program declares them, so that the
// re-executed test binary (TestMain calls aplex.Main) registers them too.
var (
	// greet is a registered work: any kind of executor can run it.
	greet = aplex.Register("example.greet", func(_ context.Context, name string) (string, error) {
		return "hello, " + name, nil
	})

	// ErrNoSuchUser is a sentinel that keeps its identity across processes.
	ErrNoSuchUser = aplex.RegisterError(errors.New("no such user"))

	// lookupUser fails with ErrNoSuchUser, wrapped, for any name but "ada".
	lookupUser = aplex.Register("example.lookup-user", func(_ context.Context, name string) (int, error) {
		if name != "ada" {
			return 0, fmt.Errorf("lookup %q: %w", name, ErrNoSuchUser)
		}
		return 1815, nil
	})

	// errRateLimitType is RegisterErrorType's verdict on *RateLimitError.
	errRateLimitType = aplex.RegisterErrorType[*RateLimitError]()

	// charge fails with a *RateLimitError once n is over the limit.
	charge = aplex.Register("example.charge", func(_ context.Context, n int) (int, error) {
		if n > 100 {
			return 0, fmt.Errorf("charge %d: %w", n, &RateLimitError{Limit: 100, Asked: n})
		}
		return n, nil
	})

	// tenantOf returns the tenant the caller's ctx carried.
	tenantOf = aplex.Register("example.tenant", func(ctx context.Context, _ int) (string, error) {
		t, _ := ctx.Value(tenantKey{}).(string)
		return t, nil
	})

	// initSlot returns the part of its worker's init value that names the
	// slot ("slot 1"), which RegisterWorkerInit's function below left in
	// the worker's ctx.
	initSlot = aplex.Register("example.init-slot", func(ctx context.Context, _ int) (string, error) {
		v, _ := ctx.Value(initKey{}).(string)
		slot, _, _ := strings.Cut(v, " pid")
		return slot, nil
	})
)

// RateLimitError is an error type that crosses the process boundary with its
// exported fields (see RegisterErrorType).
type RateLimitError struct{ Limit, Asked int }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limit %d exceeded: asked %d", e.Limit, e.Asked)
}

// tenantKey is the ctx key of the tenant that tenants carries.
type tenantKey struct{}

// tenants is a Propagator: it carries the caller's tenant to works in other
// processes, as the header "x-tenant".
type tenants struct{}

func (tenants) Inject(ctx context.Context, carrier map[string]string) {
	if t, ok := ctx.Value(tenantKey{}).(string); ok {
		carrier["x-tenant"] = t
	}
}

func (tenants) Extract(ctx context.Context, carrier map[string]string) context.Context {
	if t, ok := carrier["x-tenant"]; ok {
		return context.WithValue(ctx, tenantKey{}, t)
	}
	return ctx
}

// A program registers its propagators at package level:
//
//	var _ = aplex.RegisterPropagator(tenants{})
//
// This test binary registers tenants so only in worker processes, and in
// the test process only when ExampleRegisterPropagator runs, so that its
// benchmarks measure Submit without a propagator.
var errTenantsInWorker = func() error {
	if os.Getenv("APLEX_WORKER_ROLE") == "" {
		return nil
	}
	return aplex.RegisterPropagator(tenants{})
}()

var (
	tenantsOnce sync.Once
	errTenants  error
)

// initKey is the ctx key under which the binary's worker init leaves its
// per-worker state; a program would keep a database handle or a cache there.
type initKey struct{}

// The binary's one worker init, registered at package level so that the
// re-executed worker processes register it too. Every worker, of every kind,
// runs it once before it serves works. (The tests set APLEX_TEST_INIT_FAIL
// in a worker's environment to see an init that fails.)
var errInitRegistered = aplex.RegisterWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
	if os.Getenv("APLEX_TEST_INIT_FAIL") != "" {
		return nil, errors.New("no database")
	}
	return context.WithValue(ctx, initKey{}, fmt.Sprintf("slot %d pid %d", w.ID, os.Getpid())), nil
})

// Child processes running this binary: a crash in a work costs one worker
// process, never the caller.
func ExampleNewProcessExecutor() {
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	f, err := aplex.Submit(context.Background(), ex, greet, "process")
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	fmt.Println(f.Get(context.Background()))
	for _, w := range ex.Stats().Workers {
		fmt.Println(w.Name, w.PID != os.Getpid())
	}
	// Output:
	// hello, process <nil>
	// proc-0 true
	// proc-1 true
}

// A registered work runs on every kind of executor with the same outcome.
func ExampleRegister() {
	thread, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer thread.Shutdown(context.Background())
	process, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer process.Shutdown(context.Background())

	for _, ex := range []*aplex.Executor{thread, process} {
		f, err := aplex.Submit(context.Background(), ex, greet, "world")
		if err != nil {
			fmt.Println("submit:", err)
			return
		}
		fmt.Println(f.Get(context.Background()))
	}
	// Output:
	// hello, world <nil>
	// hello, world <nil>
}

// errors.Is matches a registered sentinel that a work in another process
// returned, also wrapped with %w.
func ExampleRegisterError() {
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	f, err := aplex.Submit(context.Background(), ex, lookupUser, "bob")
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	_, err = f.Get(context.Background())
	fmt.Println(err)
	fmt.Println(errors.Is(err, ErrNoSuchUser))
	// Output:
	// lookup "bob": no such user
	// true
}

// errors.As finds a registered error type, with its exported fields, in the
// error of a work that ran in another process.
func ExampleRegisterErrorType() {
	if errRateLimitType != nil { // a type that cannot cross is refused here
		fmt.Println(errRateLimitType)
		return
	}
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	f, err := aplex.Submit(context.Background(), ex, charge, 250)
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	_, err = f.Get(context.Background())
	var rl *RateLimitError
	if errors.As(err, &rl) {
		fmt.Println("limit", rl.Limit, "asked", rl.Asked)
	}
	// Output: limit 100 asked 250
}

// A propagator carries a value of the caller's ctx (here a tenant; often a
// trace context) to a work in another process.
func ExampleRegisterPropagator() {
	tenantsOnce.Do(func() { errTenants = aplex.RegisterPropagator(tenants{}) })
	if err := errors.Join(errTenants, errTenantsInWorker); err != nil {
		fmt.Println(err)
		return
	}
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	ctx := context.WithValue(context.Background(), tenantKey{}, "acme")
	f, err := aplex.Submit(ctx, ex, tenantOf, 0)
	if err != nil {
		fmt.Println("submit:", err)
		return
	}
	fmt.Println(f.Get(context.Background()))
	// Output: acme <nil>
}

// Each worker process ran the binary's worker init once, before serving
// works; every work on that worker sees what it left in the ctx.
func ExampleRegisterWorkerInit() {
	if errInitRegistered != nil {
		fmt.Println(errInitRegistered)
		return
	}
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	var slots []string
	for i := range 4 {
		f, err := aplex.Submit(context.Background(), ex, initSlot, i)
		if err != nil {
			fmt.Println("submit:", err)
			return
		}
		slot, err := f.Get(context.Background())
		if err != nil {
			fmt.Println(err)
			return
		}
		if !slices.Contains(slots, slot) {
			slots = append(slots, slot)
		}
	}
	slices.Sort(slots)
	fmt.Println(slots)
	// Output: [slot 0 slot 1]
}

// Resize grows and shrinks a live pool; WithAutoscale lets a process pool
// follow its load.
func ExampleExecutor_resize() {
	ctx := context.Background()
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(ctx)

	if err := ex.Resize(ctx, 3); err != nil { // grow a live pool to 3 workers; returns once they serve
		fmt.Println(err)
		return
	}
	fmt.Println("size", ex.Stats().Size)
	if err := ex.Resize(ctx, 1); err != nil { // shrink: retired workers finish what they hold, then leave
		fmt.Println(err)
		return
	}
	fmt.Println("size", ex.Stats().Size, "workers", len(ex.Stats().Workers))

	auto, err := aplex.NewProcessExecutor(
		aplex.WithAutoscale(1, 4, 30*time.Second), // 1 … 4 processes; retire one idle for 30 s
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer auto.Shutdown(ctx)
	fmt.Println("autoscaled pool starts with", auto.Stats().Size)
	// Output:
	// size 3
	// size 1 workers 1
	// autoscaled pool starts with 1
}

// A pool of short works: each worker process is sent up to 8 works beyond
// the 4 it runs, and starts the next the moment one ends, without waiting
// for the caller's process to hear of it.
func ExampleWithPrefetch() {
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(4), aplex.WithPrefetch(8))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Shutdown(context.Background())

	total := 0
	for n, err := range aplex.Map(context.Background(), ex, charge, slices.Values([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})) {
		if err != nil {
			fmt.Println(err)
			return
		}
		total += n
	}
	fmt.Println("charged", total)
	// Output: charged 55
}
