// Package promaplex exports an aplex executor's activity as Prometheus
// metrics. A *Metrics is both the executor's aplex.Observer and a
// prometheus.Collector:
//
//	m := promaplex.New("resize")
//	prometheus.MustRegister(m)
//	ex, err := aplex.NewProcessExecutor(aplex.WithObserver(m))
//
// The metrics, each with the label executor (New's name):
//
//	aplex_works_total{executor,work,outcome}   counter: works ended, by outcome
//	aplex_work_queue_seconds{executor,work}    histogram: queued to started
//	aplex_work_run_seconds{executor,work}      histogram: started to ended
//	aplex_works_queued{executor}               gauge: works waiting for a worker
//	aplex_works_running{executor}              gauge: works holding a worker
//	aplex_workers{executor}                    gauge: workers in the pool
//	aplex_worker_restarts_total{executor}      counter: workers replaced
//
// A Map chunk counts as one work. outcome is "ok", "error", "cancelled" or
// "rejected" (aplex.Outcome). The work label is the work's registered name
// (for an aplex.Fn work, its function's name), never an argument, so the
// number of series stays bounded by the works the program registers.
//
// One Metrics serves one executor; executors registered with one registry
// need distinct names.
package promaplex

import (
	"context"

	"github.com/aplex-go/aplex"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is an aplex.Observer that keeps Prometheus metrics, and the
// prometheus.Collector that exports them. Make one with New; it is safe
// for concurrent use.
type Metrics struct {
	works    *prometheus.CounterVec
	queue    *prometheus.HistogramVec
	run      *prometheus.HistogramVec
	queued   prometheus.Gauge
	running  prometheus.Gauge
	workers  prometheus.Gauge
	restarts prometheus.Counter
}

var (
	_ aplex.Observer       = (*Metrics)(nil)
	_ prometheus.Collector = (*Metrics)(nil)
)

// buckets span 100 µs to 26 s, ×4 apart: a queue wait is often well under
// a millisecond, a run may take seconds.
var buckets = prometheus.ExponentialBuckets(0.0001, 4, 10)

// New returns the metrics of the executor named executorName (the value of
// the executor label: e.g. "resize", "crawl"). Pass it to the executor
// with aplex.WithObserver and register it with a prometheus.Registerer.
func New(executorName string) *Metrics {
	cl := prometheus.Labels{"executor": executorName}
	return &Metrics{
		works: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aplex_works_total", Help: "Works ended, by work and outcome (ok, error, cancelled, rejected). A Map chunk counts as one work.", ConstLabels: cl,
		}, []string{"work", "outcome"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aplex_work_queue_seconds", Help: "Time from a work's submission to its start on a worker.", ConstLabels: cl, Buckets: buckets,
		}, []string{"work"}),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aplex_work_run_seconds", Help: "Time from a work's start on a worker to its end.", ConstLabels: cl, Buckets: buckets,
		}, []string{"work"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aplex_works_queued", Help: "Works waiting for a worker.", ConstLabels: cl,
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aplex_works_running", Help: "Works holding a worker (or waiting to be sent again after their worker was lost).", ConstLabels: cl,
		}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aplex_workers", Help: "Workers in the pool: joined, not lost or recycled.", ConstLabels: cl,
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aplex_worker_restarts_total", Help: "Workers that replaced a lost or recycled one.", ConstLabels: cl,
		}),
	}
}

// ObserveWork updates the work metrics (aplex.Observer). It never blocks.
func (m *Metrics) ObserveWork(ctx context.Context, e aplex.WorkEvent) context.Context {
	switch e.Kind {
	case aplex.WorkQueued:
		m.queued.Inc()
	case aplex.WorkStarted:
		// A work sent again after its worker was lost still counts as
		// running from its first start: no event marks its return to the
		// queue.
		if e.Attempt == 1 {
			m.queued.Dec()
			m.running.Inc()
			m.queue.WithLabelValues(e.Work).Observe(e.QueueWait.Seconds())
		}
	case aplex.WorkFinished:
		if e.Attempt == 0 {
			m.queued.Dec() // never started
		} else {
			m.running.Dec()
			m.run.WithLabelValues(e.Work).Observe(e.RunTime.Seconds())
		}
		m.works.WithLabelValues(e.Work, e.Outcome.String()).Inc()
	}
	return ctx
}

// ObserveWorker updates the worker metrics (aplex.Observer).
func (m *Metrics) ObserveWorker(e aplex.WorkerEvent) {
	switch e.Kind {
	case aplex.WorkerJoined:
		m.workers.Inc()
	case aplex.WorkerRestarted:
		m.workers.Inc()
		m.restarts.Inc()
	case aplex.WorkerLost, aplex.WorkerRecycled:
		m.workers.Dec()
	}
}

// collectors lists the metrics, once, for Describe and Collect.
func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.works, m.queue, m.run, m.queued, m.running, m.workers, m.restarts}
}

// Describe sends the metrics' descriptions (prometheus.Collector).
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect sends the metrics' values (prometheus.Collector).
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}
