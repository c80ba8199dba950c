package promaplex_test

import (
	"context"
	"fmt"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/promaplex"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics observe an executor and are registered with a Prometheus
// registry, which an HTTP handler (promhttp.HandlerFor) serves as /metrics.
func ExampleNew() {
	m := promaplex.New("resize")
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)

	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2), aplex.WithObserver(m))
	if err != nil {
		panic(err)
	}
	defer ex.Close()
	ctx := context.Background()
	for v, err := range aplex.Map(ctx, ex, double, func(yield func(int) bool) {
		for i := range 3 {
			yield(i)
		}
	}) {
		fmt.Println(v, err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "aplex_works_total" {
			for _, s := range mf.GetMetric() {
				fmt.Print(mf.GetName(), "{")
				for i, l := range s.GetLabel() {
					if i > 0 {
						fmt.Print(",")
					}
					fmt.Printf("%s=%q", l.GetName(), l.GetValue())
				}
				fmt.Println("}", s.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// 0 <nil>
	// 2 <nil>
	// 4 <nil>
	// aplex_works_total{executor="resize",outcome="ok",work="promaplex.double"} 3
}
