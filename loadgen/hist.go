package loadgen

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Hist is an HdrHistogram of latencies in microseconds (1 µs .. 5 min, 3
// significant digits), safe for concurrent use.
type Hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewHist returns an empty histogram.
func NewHist() *Hist {
	return &Hist{h: hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)}
}

// Record adds one latency; values outside the range are clamped.
func (h *Hist) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	us = max(us, 1)
	h.mu.Lock()
	if err := h.h.RecordValue(us); err != nil {
		_ = h.h.RecordValue(h.h.HighestTrackableValue())
	}
	h.mu.Unlock()
}

// Count is the number of recorded values.
func (h *Hist) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	o.mu.Lock()
	c := hdrhistogram.Import(o.h.Export())
	o.mu.Unlock()
	h.mu.Lock()
	h.h.Merge(c)
	h.mu.Unlock()
}

// PlotPercentiles are the percentiles a Summary keeps for the plot.
var PlotPercentiles = []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100}

// Point is one percentile of a distribution.
type Point struct {
	Percentile float64 `json:"p"`
	Ms         float64 `json:"ms"`
}

// Summary is a histogram's figures in milliseconds.
type Summary struct {
	Count  int64   `json:"count"`
	Mean   float64 `json:"mean_ms"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Max    float64 `json:"max_ms"`
	Points []Point `json:"points,omitempty"`
}

// Summary returns h's figures.
func (h *Hist) Summary() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	if h.h.TotalCount() == 0 {
		return Summary{}
	}
	s := Summary{
		Count: h.h.TotalCount(),
		Mean:  h.h.Mean() / 1000,
		P50:   ms(h.h.ValueAtQuantile(50)),
		P90:   ms(h.h.ValueAtQuantile(90)),
		P99:   ms(h.h.ValueAtQuantile(99)),
		P999:  ms(h.h.ValueAtQuantile(99.9)),
		Max:   ms(h.h.Max()),
	}
	for _, p := range PlotPercentiles {
		v := h.h.ValueAtQuantile(p)
		if p == 0 {
			v = h.h.Min()
		}
		s.Points = append(s.Points, Point{Percentile: p, Ms: ms(v)})
	}
	return s
}
