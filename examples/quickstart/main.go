// Quickstart: the tour of aplex in one program. It needs nothing outside
// this repository: a local HTTP server stands in for the internet.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/aplex-go/aplex"
)

// fetch is a work: it downloads a URL and returns its body's length.
// Registering it by name makes it runnable by process and cluster
// executors too; a thread executor could also take aplex.Fn(fetch).
var fetch = aplex.Register("quickstart.fetch", func(ctx context.Context, url string) (int, error) {
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
	aplex.Main() // first thing: lets the same binary serve as a worker process

	base, stop := startSite()
	defer stop()
	ctx := context.Background()

	// 1. An executor of 2 workers, each running up to 100 works at once.
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(100))
	if err != nil {
		log.Fatal(err)
	}

	// 2. Submit one work and wait for its result.
	f, err := aplex.Submit(ctx, ex, fetch, base+"/page/0")
	if err != nil {
		log.Fatal(err)
	}
	n, err := f.Get(ctx)
	fmt.Printf("submit: fetched %d bytes (err=%v)\n", n, err)

	// 3. Map over ten URLs, in order, with a timeout for the whole map.
	var urls []string
	for i := range 10 {
		urls = append(urls, fmt.Sprintf("%s/page/%d", base, i))
	}
	start := time.Now()
	total := 0
	for n, err := range aplex.Map(ctx, ex, fetch, slices.Values(urls), aplex.Timeout(5*time.Second), aplex.ChunkSize(2)) {
		if err != nil {
			log.Fatal(err)
		}
		total += n
	}
	fmt.Printf("map: fetched 10 pages, %d bytes, in %v (each page takes 50ms; they ran concurrently)\n", total, time.Since(start).Round(time.Millisecond))

	// 4. Await a future in a select, beside a timer.
	slow, err := aplex.Submit(ctx, ex, fetch, base+"/slow")
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-slow.Done():
		fmt.Println("select: the slow page came first?")
	case <-time.After(100 * time.Millisecond):
		fmt.Println("select: still waiting for /slow after 100ms; cancelling it:", slow.Cancel())
	}
	_, err = slow.Get(ctx)
	fmt.Println("select: the cancelled future reports:", err)

	// 5. Shut down, then start over with the Average (least loaded) balancer.
	if err := ex.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	ex, err = aplex.NewThreadExecutor(aplex.WithPoolSize(2), aplex.WithLoadBalancer(aplex.Average()))
	if err != nil {
		log.Fatal(err)
	}
	var fs []*aplex.Future[int]
	for _, u := range urls {
		f, err := aplex.Submit(ctx, ex, fetch, u)
		if err != nil {
			log.Fatal(err)
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			log.Fatal(err)
		}
	}
	for _, w := range ex.Stats().Workers {
		fmt.Printf("average: worker %d completed %d works\n", w.ID, w.Completed)
	}

	// 6. Shut down: drain what is left, then stop every worker.
	shutdownCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ex.Shutdown(shutdownCtx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("shutdown: done")
}

// startSite serves /page/N (50ms, a small body) and /slow (until the client
// gives up) on 127.0.0.1, and returns its base URL.
func startSite() (string, func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("/page/{n}", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		fmt.Fprintf(w, "<html>page %s</html>\n", r.PathValue("n"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }
}
