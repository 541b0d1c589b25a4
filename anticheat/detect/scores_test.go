package detect_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/corpus"
	"github.com/gsd-dev/gsd/anticheat/detect"
)

// TestPrintScores prints, per detector on corpus A with every threshold off,
// the honest players' scores (99th, 99.9th percentile, max) and the targeted
// cheaters' (min, 5th percentile, median): the thresholds of DefaultConfig
// sit between the honest max and the cheaters' min.
//
//	go test ./anticheat/detect -run TestPrintScores -v -args -table.honest=10000
func TestPrintScores(t *testing.T) {
	if *tableHonest == 0 {
		t.Skip("no -table.honest")
	}
	cfg := detect.DefaultConfig()
	cfg.Speed.Share, cfg.Jump.Share, cfg.Straight.Share, cfg.Reaction.Share = 0, 0, 0, 0
	cfg.Accuracy.Z, cfg.WinTrade.Z, cfg.Funnel.MaxReverse = -100, -100, 1
	cfg.Lockstep.Share, cfg.Lockstep.MinTogether = 0, 1
	cfg.Funnel.MinTransfers, cfg.WinTrade.MinMatches = 2, 2
	d, _ := detect.New(cfg)
	labels, _ := corpus.Generate(corpus.A(*tableHonest), d.Observe)
	hs := map[string][]float64{}
	cs := map[string][]float64{}
	for _, f := range d.Evaluate() {
		honest := true
		target := false
		for _, p := range f.Players {
			honest = honest && labels[p].Honest()
			target = target || slices.Contains(targets[f.Detector], labels[p])
		}
		if honest {
			hs[f.Detector] = append(hs[f.Detector], f.Score)
		} else if target {
			cs[f.Detector] = append(cs[f.Detector], f.Score)
		}
	}
	for _, det := range detect.Detectors {
		h, c := hs[det], cs[det]
		slices.Sort(h)
		slices.Sort(c)
		q := func(s []float64, f float64) float64 {
			if len(s) == 0 {
				return -1
			}
			return s[min(int(f*float64(len(s))), len(s)-1)]
		}
		fmt.Printf("%-9s honest n=%d p99=%.3f p99.9=%.3f max=%.3f | target n=%d min=%.3f p5=%.3f p50=%.3f\n", det, len(h), q(h, .99), q(h, .999), q(h, 1), len(c), q(c, 0), q(c, .05), q(c, .5))
	}
}
