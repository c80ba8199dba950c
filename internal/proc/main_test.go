//go:build linux

// The tests run real children and look at them through /proc, signals and
// /bin/sh scripts, so they are Linux-only.

package proc

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aplex-go/aplex/internal/host"
	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
)

// The test binary is its own worker: a Transport re-executes it with
// EnvRole set, and TestMain serves instead of running the tests.

const (
	// testModeEnv selects a helper mode of the re-executed test binary that
	// is not a worker (the raw ping-pong of the benchmark).
	testModeEnv = "APLEX_PROC_TEST_MODE"
	// failFileEnv names a file whose existence makes the child refuse to
	// serve, so a test can make restarts fail and succeed again.
	failFileEnv = "APLEX_PROC_TEST_FAIL_FILE"
)

func TestMain(m *testing.M) {
	switch os.Getenv(testModeEnv) {
	case "pingpong":
		os.Exit(pingPongChild(false))
	case "pingpong-raw":
		os.Exit(pingPongChild(true))
	case "callbackpanic":
		callbackPanicChild()
	}
	if IsChild() {
		if f := os.Getenv(failFileEnv); f != "" {
			if _, err := os.Stat(f); err == nil {
				fmt.Fprintln(os.Stderr, "test worker: told to fail")
				os.Exit(7)
			}
		}
		if err := ServeChild(host.Config{Registry: childRegistry(), MaxWorks: 50}); err != nil {
			fmt.Fprintln(os.Stderr, "test worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// registry is a map-backed host.Registry.
type registry map[string]host.Handler

func (r registry) Lookup(name string) (host.Handler, bool) { h, ok := r[name]; return h, ok }
func (r registry) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	return names
}

// childRegistry holds the works of the test worker. Arguments and results
// are raw bytes: the host does not look inside them.
func childRegistry() registry {
	return registry{
		"noop": func(context.Context, []byte) ([]byte, error) { return nil, nil },
		"echo": func(_ context.Context, arg []byte) ([]byte, error) { return arg, nil },
		"slot": func(context.Context, []byte) ([]byte, error) {
			slot, ok := ChildSlot()
			return []byte(fmt.Sprint(slot, ok, IsChild())), nil
		},
		"sleep": func(ctx context.Context, _ []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
		"ignore": func(context.Context, []byte) ([]byte, error) {
			time.Sleep(time.Minute) // ignores its ctx: only a kill stops it
			return nil, nil
		},
		"exit": func(_ context.Context, arg []byte) ([]byte, error) {
			code, _ := strconv.Atoi(string(arg))
			os.Exit(code)
			return nil, nil
		},
		"print": func(_ context.Context, arg []byte) ([]byte, error) {
			fmt.Println(string(arg))
			fmt.Fprint(os.Stderr, "unterminated")
			return arg, nil
		},
		// alloc allocates and touches up to arg MiB, 4 MiB at a time (so
		// that the limit is crossed early), and holds it until cancelled.
		"alloc": func(ctx context.Context, arg []byte) ([]byte, error) {
			n, _ := strconv.Atoi(string(arg))
			var held [][]byte
			for range n / 4 {
				b := make([]byte, 4<<20)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				held = append(held, b)
				if ctx.Err() != nil {
					break
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			runtime.KeepAlive(held)
			return nil, ctx.Err()
		},
		// closein closes the request pipe behind the host's back, by
		// putting the read end of a pipe nobody writes in its place: the
		// host's reader, which may read next in this very goroutine, then
		// waits forever instead of failing, and only the parent's next
		// write notices.
		"closein": func(context.Context, []byte) ([]byte, error) {
			var p [2]int
			if err := syscall.Pipe(p[:]); err != nil {
				return nil, err
			}
			return nil, syscall.Dup3(p[0], childInFD, 0)
		},
		// garbage writes a frame of an unknown kind straight onto fd 4.
		"garbage": func(context.Context, []byte) ([]byte, error) {
			syscall.Write(childOutFD, []byte{0, 0, 0, 2, wire.Version, 99})
			return nil, nil
		},
	}
}

// pingPongChild echoes 32-byte messages from fd 3 to fd 4: the raw pipe
// floor the transport is compared with.
func pingPongChild(raw bool) int {
	inf, err := childFile(childInFD, "in")
	if err != nil {
		return 1
	}
	outf, err := childFile(childOutFD, "out")
	if err != nil {
		return 1
	}
	var in io.Reader = inf
	var out io.Writer = outf
	if raw {
		in, out = link.PipeReader(inf), link.PipeWriter(outf)
	}
	buf := make([]byte, 32)
	for {
		if _, err := io.ReadFull(in, buf); err != nil {
			return 0
		}
		if _, err := out.Write(buf); err != nil {
			return 0
		}
	}
}
