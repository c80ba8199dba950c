package aplex_test

import (
	"context"
	"testing"

	"github.com/aplex-go/aplex"
)

var pDouble = aplex.Register("test.double", func(_ context.Context, x int) (int, error) { return 2 * x, nil })

func TestProcessSmoke(t *testing.T) {
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	for i := range 10 {
		f, err := aplex.Submit(context.Background(), ex, pDouble, i)
		if err != nil {
			t.Fatal(err)
		}
		v, err := f.Get(ctxT(t))
		if err != nil || v != 2*i {
			t.Fatal(v, err)
		}
	}
	n := 0
	for v, err := range aplex.Map(ctxT(t), ex, pDouble, seq(1000, nil), aplex.ChunkSize(10)) {
		if err != nil || v != 2*n {
			t.Fatal(v, err)
		}
		n++
	}
	t.Log(ex.Stats())
}
