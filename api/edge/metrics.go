package edge

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the edge's Prometheus collectors.
type Metrics struct {
	Requests *prometheus.CounterVec
	Latency  *prometheus.HistogramVec
	Forwards *prometheus.CounterVec
	Streams  prometheus.Gauge
	// StreamDetaches counts event streams their fan-out let go because
	// they read too slowly (package fanout).
	StreamDetaches prometheus.Counter
	// StreamBytes counts the bytes of the events event streams wrote
	// (their lines, not the HTTP framing).
	StreamBytes prometheus.Counter
	// RateLimited counts actions the per-player rate limit refused, by
	// lane (http, play, udp).
	RateLimited *prometheus.CounterVec
}

func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_http_requests_total", Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gsd_http_request_duration_seconds", Help: "HTTP request latency (event streams: their lifetime), by route pattern and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"route", "code"}),
		Forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_http_forwards_total", Help: "Requests a follower forwarded to the leader, by result (ok, error, no_leader, loop).",
		}, []string{"result"}),
		Streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_http_event_streams", Help: "Open event streams.",
		}),
		StreamDetaches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_http_event_stream_detaches_total", Help: "Event streams that fell behind their world's shared fan-out and caught up from their own subscription.",
		}),
		StreamBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_http_event_stream_bytes_total", Help: "Bytes of the event lines written to event streams.",
		}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_edge_rate_limited_total", Help: "Actions the edge's per-player rate limit refused before the log, by lane (http, play, udp).",
		}, []string{"lane"}),
	}
	for _, c := range []prometheus.Collector{m.Requests, m.Latency, m.Forwards, m.Streams, m.StreamDetaches, m.StreamBytes, m.RateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) Observe(route string, code int, d time.Duration) {
	c := strconv.Itoa(code)
	m.Requests.WithLabelValues(route, c).Inc()
	m.Latency.WithLabelValues(route, c).Observe(d.Seconds())
}

// MetricsHandler serves reg in the Prometheus exposition format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
