package feed

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Gauges are the series every sink publishes about the worlds it
// follows: per world its position, its lag behind the node's seq and
// whether it is stuck at an archive gap, and how many worlds it follows.
// Per-world series exist only for the worlds followed now (Forget).
type Gauges struct {
	Position, Lag, Gap *prometheus.GaugeVec
	Worlds             prometheus.Gauge
}

// GaugeSpec is one of a sink's Gauges: its metric name and help.
type GaugeSpec struct{ Name, Help string }

// NewGauges returns the Gauges: position, lag and gap labelled by world,
// worlds a plain gauge.
func NewGauges(position, lag, gap, worlds GaugeSpec) Gauges {
	vec := func(g GaugeSpec) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: g.Name, Help: g.Help}, []string{"world"})
	}
	return Gauges{
		Position: vec(position),
		Lag:      vec(lag),
		Gap:      vec(gap),
		Worlds:   prometheus.NewGauge(prometheus.GaugeOpts{Name: worlds.Name, Help: worlds.Help}),
	}
}

// Register registers the Gauges and the sink's own collectors with reg
// (none: nothing), naming what for in an error.
func Register(reg prometheus.Registerer, what string, g Gauges, own ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range append([]prometheus.Collector{g.Position, g.Lag, g.Gap, g.Worlds}, own...) {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("%s metrics: %w", what, err)
		}
	}
	return nil
}

// Publish sets world's gauges: its position pos, its lag behind the
// node's seq, and whether it is stuck at an archive gap.
func (g Gauges) Publish(world string, pos, seq uint64, gap bool) {
	g.SetGap(world, gap)
	g.Position.WithLabelValues(world).Set(float64(pos))
	g.Lag.WithLabelValues(world).Set(float64(seq - min(pos, seq)))
}

// SetGap publishes whether world's export is stuck at an archive gap.
func (g Gauges) SetGap(world string, gap bool) {
	v := 0.0
	if gap {
		v = 1
	}
	g.Gap.WithLabelValues(world).Set(v)
}

// Followed publishes how many worlds the sink follows.
func (g Gauges) Followed(n int) { g.Worlds.Set(float64(n)) }

// Forget drops world's series when the sink stops following it.
func (g Gauges) Forget(world string) {
	g.Position.DeleteLabelValues(world)
	g.Lag.DeleteLabelValues(world)
	g.Gap.DeleteLabelValues(world)
}
