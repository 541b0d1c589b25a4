package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the edge's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	forwards *prometheus.CounterVec
	streams  prometheus.Gauge
	// streamDetaches counts event streams their fan-out let go because
	// they read too slowly (package fanout).
	streamDetaches prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_http_requests_total", Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gsd_http_request_duration_seconds", Help: "HTTP request latency (event streams: their lifetime), by route pattern and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"route", "code"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_http_forwards_total", Help: "Requests a follower forwarded to the leader, by result (ok, error, no_leader, loop).",
		}, []string{"result"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_http_event_streams", Help: "Open event streams.",
		}),
		streamDetaches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_http_event_stream_detaches_total", Help: "Event streams that fell behind their world's shared fan-out and caught up from their own subscription.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.forwards, m.streams, m.streamDetaches} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(route, c).Inc()
	m.latency.WithLabelValues(route, c).Observe(d.Seconds())
}

// metricsHandler serves reg in the Prometheus exposition format.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
