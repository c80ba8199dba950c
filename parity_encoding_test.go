package aplex_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/fxamacker/cbor/v2"
)

// hiddenArg has an unexported field, which CBOR drops.
type hiddenArg struct {
	Name   string
	secret int
}

// fileArg names a file.
type fileArg struct{ Path string }

// selfArg has only unexported fields but marshals itself.
type selfArg struct{ n int }

func (s selfArg) MarshalCBOR() ([]byte, error)  { return cbor.Marshal(s.n) }
func (s *selfArg) UnmarshalCBOR(b []byte) error { return cbor.Unmarshal(b, &s.n) }

var (
	pHiddenArg    = aplex.Register("test.hidden-arg", func(_ context.Context, a hiddenArg) (int, error) { return a.secret, nil })
	pSelfArg      = aplex.Register("test.self-arg", func(_ context.Context, a selfArg) (int, error) { return a.n, nil })
	pTimeArg      = aplex.Register("test.time-arg", func(_ context.Context, t time.Time) (time.Time, error) { return t.Add(time.Hour), nil })
	pHiddenResult = aplex.Register("test.hidden-result", func(_ context.Context, n int) (hiddenArg, error) {
		return hiddenArg{Name: "r", secret: n}, nil
	})
	// pRename appends a byte that is not UTF-8 to a name: a string in, a
	// struct out.
	pRename = aplex.Register("test.rename", func(_ context.Context, name string) (fileArg, error) {
		return fileArg{Path: name + "\xff"}, nil
	})
	// pJSON marshals a JSON-like payload, as a work forwarding a webhook's
	// body would.
	pJSON = aplex.Register("test.json", func(_ context.Context, body map[string]any) (string, error) {
		b, err := json.Marshal(body)
		return string(b), err
	})
)

// TestUnexportedFieldIsErrEncoding: a struct with an unexported field
// reached a worker process with the field silently zeroed. It must be
// ErrEncoding naming the type and the field: at Submit for an argument, on
// the future for a result; a type that marshals itself and time.Time cross.
func TestUnexportedFieldIsErrEncoding(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	ctx := ctxT(t)

	f, err := aplex.Submit(ctx, ex, pHiddenArg, hiddenArg{Name: "a", secret: 7})
	if !errors.Is(err, aplex.ErrEncoding) || f != nil {
		t.Fatalf("argument: Submit = %v, %v; want ErrEncoding", f, err)
	}
	for _, w := range []string{"aplex_test.hiddenArg", "secret"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("argument error %q does not mention %q", err, w)
		}
	}

	if v := mustGet(t, mustSubmit(t, ex, pSelfArg, selfArg{n: 5})); v != 5 {
		t.Errorf("self-marshaling argument: got %d, want 5", v)
	}

	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	if v := mustGet(t, mustSubmit(t, ex, pTimeArg, at)); !v.Equal(at.Add(time.Hour)) {
		t.Errorf("time.Time: got %v", v)
	}

	_, err = mustSubmit(t, ex, pHiddenResult, 3).Get(ctx)
	if !errors.Is(err, aplex.ErrEncoding) {
		t.Fatalf("result: %v; want ErrEncoding", err)
	}
	for _, w := range []string{"aplex_test.hiddenArg", "secret"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("result error %q does not mention %q", err, w)
		}
	}
}

// TestStringsThatAreNotUTF8CrossToAWorkerProcess: a Go string holds any
// bytes (a Linux file name need not be UTF-8). A goroutine executor hands
// one to its work as it is, but a process worker failed to decode it, so
// the same Submit ended in ErrEncoding there: the argument and the result
// now cross unchanged on both kinds.
func TestStringsThatAreNotUTF8CrossToAWorkerProcess(t *testing.T) {
	name := "caf\xe9-\xfe.txt"
	for _, kind := range threadAndProcess(t) {
		got := mustGet(t, mustSubmit(t, kind.ex, pRename, name))
		if want := name + "\xff"; got.Path != want {
			t.Errorf("%s executor: got %q, want %q", kind.name, got.Path, want)
		}
	}
}

// TestJSONLikeMapsCrossToAWorkerProcess: a map[string]any payload reached
// a process worker with its nested maps as map[interface{}]interface{},
// which encoding/json cannot marshal, where a goroutine worker gets the
// payload as it is: the same work failed on one kind only.
func TestJSONLikeMapsCrossToAWorkerProcess(t *testing.T) {
	body := map[string]any{"event": "push", "repo": map[string]any{"name": "aplex", "owner": map[string]any{"login": "ada"}}}
	want, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range threadAndProcess(t) {
		got, err := mustSubmit(t, kind.ex, pJSON, body).Get(ctxT(t))
		if err != nil || got != string(want) {
			t.Errorf("%s executor: %q, %v; want %s", kind.name, got, err, want)
		}
	}
}

// namedExecutor is an executor and the kind of worker it has, for tests
// that run the same work on each.
type namedExecutor struct {
	name string
	ex   *aplex.Executor
}

// threadAndProcess returns a goroutine executor and a process executor of
// one worker each, closed when t ends.
func threadAndProcess(t *testing.T) []namedExecutor {
	return []namedExecutor{
		{"goroutine", newThread(t, aplex.WithPoolSize(1))},
		{"process", newProcess(t, aplex.WithPoolSize(1))},
	}
}

// panickyResult's decoder panics in the executor's process, as a user
// type's may; its encoder works, so the worker sends it.
type panickyResult struct{ N int }

func (panickyResult) MarshalCBOR() ([]byte, error) { return cbor.Marshal(1) }
func (*panickyResult) UnmarshalCBOR([]byte) error  { panic("result decoder boom") }

// panickyArg's decoder panics in the worker process.
type panickyArg struct{ N int }

func (panickyArg) MarshalCBOR() ([]byte, error) { return cbor.Marshal(1) }
func (*panickyArg) UnmarshalCBOR([]byte) error  { panic("argument decoder boom") }

var (
	pPanickyResult = aplex.Register("test.panicky-result", func(_ context.Context, n int) (panickyResult, error) { return panickyResult{N: n}, nil })
	pPanickyArg    = aplex.Register("test.panicky-arg", func(_ context.Context, a panickyArg) (int, error) { return a.N, nil })
)

// TestAResultWhoseDecoderPanicsFailsItsFutureOnly: a result type whose
// UnmarshalCBOR panicked ended the executor's whole program, as the
// executor decoded the worker's reply (in a Get, or its reader goroutine).
// The future fails with ErrEncoding naming the panic, on either path, an
// argument whose decoder panics in the worker does the same, and the
// executor and its worker go on serving.
func TestAResultWhoseDecoderPanicsFailsItsFutureOnly(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	ctx := ctxT(t)
	_, err := mustSubmit(t, ex, pPanickyResult, 1).Get(ctx)
	if !errors.Is(err, aplex.ErrEncoding) || !strings.Contains(err.Error(), "result decoder boom") {
		t.Errorf("Get: %v; want ErrEncoding naming the panic", err)
	}
	f := mustSubmit(t, ex, pPanickyResult, 2)
	<-f.Done() // the reply is read by the executor's reader, not by a Get
	if err := f.Err(); !errors.Is(err, aplex.ErrEncoding) {
		t.Errorf("Done, then Err: %v; want ErrEncoding", err)
	}
	_, err = mustSubmit(t, ex, pPanickyArg, panickyArg{N: 3}).Get(ctx)
	if !errors.Is(err, aplex.ErrEncoding) || !strings.Contains(err.Error(), "argument decoder boom") {
		t.Errorf("argument: %v; want ErrEncoding naming the panic", err)
	}
	if v := mustGet(t, mustSubmit(t, ex, pRename, "x")); v.Path != "x\xff" {
		t.Errorf("after: got %q", v.Path)
	}
	if s := ex.Stats(); s.Restarts != 0 {
		t.Errorf("the worker restarted %d times", s.Restarts)
	}
}
