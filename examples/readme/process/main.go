// The README's process-workers block, verbatim and compiled (the root's
// TestREADMECodeBlocksAreCompiled fails when they drift apart).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/aplex-go/aplex"
)

// Image names a picture to resize and the width it should have.
type Image struct {
	Path  string
	Width int
}

// resize stands in for real image work: it returns the path the resized
// picture would be written to.
func resize(ctx context.Context, img Image) (string, error) {
	return fmt.Sprintf("%s.%dw", img.Path, img.Width), ctx.Err()
}

var Resize = aplex.Register("resize", resize) // package level: worker processes register it too

func main() {
	aplex.Main() // first thing: in a worker process this serves works and never returns
	ctx := context.Background()
	ex, err := aplex.NewProcessExecutor(
		aplex.WithPoolSize(4),
		aplex.WithKillGrace(2*time.Second),   // a cancelled work that ignores ctx this long is killed
		aplex.WithRecycleAfter(10_000),       // replace a worker after 10k works (max_tasks_per_child)
		aplex.WithWorkerMemoryLimit(512<<20), // Linux only: GOMEMLIMIT in the child + a hard RSS check
		aplex.WithWorkerOutput(os.Stderr),    // children's stdout/stderr, each line labelled
	)
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Shutdown(ctx)

	img := Image{Path: "cat.jpg", Width: 640}
	f, err := aplex.Submit(ctx, ex, Resize, img, aplex.Deadline(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Get(ctx))
}
