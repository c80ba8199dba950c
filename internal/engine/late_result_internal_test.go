package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// handTransport is a one-worker transport driven by hand: the test sees
// each job sent and answers it when it likes.
type handTransport struct {
	sink xport.Sink
	w    *handWorker
}

type handWorker struct{ jobs chan uint64 }

func (tr *handTransport) Start(_ context.Context, sink xport.Sink) error {
	tr.sink = sink
	tr.w = &handWorker{jobs: make(chan uint64, 16)}
	sink.Join(tr.w)
	return nil
}
func (tr *handTransport) MaxMessage() int { return 1 << 20 }
func (tr *handTransport) Close(context.Context) error {
	tr.sink.Lost(tr.w, nil)
	return nil
}

func (w *handWorker) Slot() int        { return 0 }
func (w *handWorker) Info() xport.Info { return xport.Info{ID: "hand"} }
func (w *handWorker) Capacity() int    { return 4 }
func (w *handWorker) Send(jobs []*wire.Job) {
	for _, j := range jobs {
		w.jobs <- j.ID
	}
}
func (w *handWorker) Cancel([]uint64) {}
func (w *handWorker) Kill(error)      {}
func (w *handWorker) Close()          {}

// endedCtx reports that it ended (Err) while its Done channel never
// closes, so the core's watch on it never fires: it stands for the moment
// between a caller's ctx ending and that watch running.
type endedCtx struct{ context.Context }

func (endedCtx) Done() <-chan struct{} { return make(chan struct{}) }
func (endedCtx) Err() error            { return context.DeadlineExceeded }

// TestResultArrivingAfterCallerCtxEndedIsTheCtxError is the regression test
// for the parity flake: a remote result that arrives after the caller's ctx
// ended, but before the core's watch on that ctx has run, made the future
// succeed; a goroutine work in the same spot ends with ctx.Err().
func TestResultArrivingAfterCallerCtxEndedIsTheCtxError(t *testing.T) {
	cfg, err := buildConfig(kindProcess, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &handTransport{}
	ex, err := startRemote(cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ex.Close(); err != nil {
			t.Error(err)
		}
	}()
	w := &Work[int, int]{name: "late"}
	f, err := Submit(context.Background(), ex, w, 1)
	if err != nil {
		t.Fatal(err)
	}
	id := <-tr.w.jobs
	// Submit refuses an ended ctx, so the caller's ctx ends after it.
	f.t.parent = endedCtx{context.Background()}
	v, err := wire.MarshalValue(42)
	if err != nil {
		t.Fatal(err)
	}
	tr.sink.Done(tr.w, []wire.Result{{ID: id, Items: []wire.Outcome{{Value: v}}}})
	if _, err := f.Get(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("result after the caller's ctx ended: %v, want %v", err, context.DeadlineExceeded)
	}
}
