// Package metrics holds what every mogway daemon shares to expose Prometheus metrics: a private
// registry with the Go runtime and process collectors, the /metrics handler for net/http and
// fasthttp servers, and a collector that reads a component's Stats at scrape time.
//
// There is no global registry: each daemon builds its own with NewRegistry, so many daemons can run
// in one process (the test cluster does). It imports no mogway package.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Namespace prefixes every mogway metric name.
const Namespace = "mogway"

// NewRegistry returns a fresh registry holding the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus exposition format. A collector that fails is reported in
// the answer and the other metrics are still served.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// FastHandler is Handler for a fasthttp server.
func FastHandler(reg *prometheus.Registry) fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(Handler(reg))
}

// Serve serves h on ln until ctx ends, then stops gracefully (for at most 5 seconds) and returns
// nil; it returns early with the error of a failing listener. It closes ln. The daemons use it for
// their side listeners (status pages, metrics), which carry small answers only.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Allowed reports whether addr (a client address) is in one of nets.
func Allowed(nets []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range nets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Loopback is the default allow list of the metrics endpoints.
var Loopback = []string{"127.0.0.0/8", "::1/128"}

// ParseNets reads CIDRs or single addresses; it returns the first entry that is neither, by index.
func ParseNets(list []string) ([]netip.Prefix, int, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, i, err
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, -1, nil
}

// Collector is a prometheus.Collector over values read at scrape time: Describe sends Descs and
// Collect calls Func. Use it to export a component's existing atomic counters without adding work
// to its hot paths.
type Collector struct {
	Descs []*prometheus.Desc
	Func  func(ch chan<- prometheus.Metric)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.Descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) { c.Func(ch) }

// Desc returns a description of the metric mogway_<subsystem>_<name> and adds it to c.
func (c *Collector) Desc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, name), help, labels, nil)
	c.Descs = append(c.Descs, d)
	return d
}

// Counter sends a counter value.
func Counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// Gauge sends a gauge value.
func Gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// Bool is 1 for true and 0 for false, for gauges such as "up".
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// LatencyBuckets are the histogram buckets of request latencies, in seconds: 0.5ms to 60s.
var LatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// LatencyHistogram returns a histogram of durations in seconds named mogway_<subsystem>_<name>,
// over LatencyBuckets, with the given labels. The caller registers it.
func LatencyHistogram(subsystem, name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help, Buckets: LatencyBuckets,
	}, labels)
}
