// The README's quickstart, verbatim and compiled (the root's
// TestREADMECodeBlocksAreCompiled fails when they drift apart). It fetches
// real URLs; examples/quickstart is the tour that needs no network.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"time"

	"github.com/aplex-go/aplex"
)

var fetch = aplex.Register("fetch", func(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return len(body), err
})

func main() {
	aplex.Main() // first thing: lets this binary serve as a worker process
	ctx := context.Background()
	urls := []string{"https://example.com", "https://example.org", "https://example.net"}

	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(4), aplex.WithMaxWorksPerWorker(100))
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Shutdown(ctx)

	f, err := aplex.Submit(ctx, ex, fetch, urls[0]) // → *aplex.Future[int]
	if err != nil {
		log.Fatal(err)
	}
	n, err := f.Get(ctx)
	fmt.Println(n, err)

	for n, err := range aplex.Map(ctx, ex, fetch, slices.Values(urls),
		aplex.ChunkSize(10), aplex.Timeout(5*time.Second)) {
		// results in input order; the first error ends the loop and cancels the rest
		fmt.Println(n, err)
	}

	slow, err := aplex.Submit(ctx, ex, fetch, "https://example.com/slow")
	if err != nil {
		log.Fatal(err)
	}
	select { // every future is awaitable in a select
	case <-slow.Done():
	case <-time.After(time.Second):
		slow.Cancel() // a running work sees its ctx cancelled, wherever it runs
	}
}
