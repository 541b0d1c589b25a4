package detect_test

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/corpus"
	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/fsm"
)

var scoresCorpus = flag.String("scores.corpus", "A", "the corpus TestPrintScores reads, A to L (thresholds are fixed on A, S and W only)")

// TestPrintScores prints, per detector on corpus A with every threshold off
// (each player's highest score over evaluations every Config.Every events),
// the honest players' scores (99th, 99.9th percentile, the third largest,
// max) and the targeted cheaters' (min, 5th percentile, median): each
// threshold of DefaultConfig is the smallest round value above the third
// largest honest score (docs/ANTICHEAT.md). With -scores.corpus=S, the
// same on corpus S (A in sessions).
//
//	go test ./anticheat/detect -run TestPrintScores -v -args -table.honest=10000
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintScores -v -args -table.honest=10000 -scores.corpus=S
func TestPrintScores(t *testing.T) {
	if *tableHonest == 0 {
		t.Skip("no -table.honest")
	}
	cfg := detect.DefaultConfig()
	cfg.Speed.Share, cfg.Jump.Z, cfg.Straight.Share, cfg.Reaction.Z = 0, -1e6, 0, -1e6
	cfg.Accuracy.Z, cfg.WinTrade.LLR, cfg.Funnel.MaxReverse, cfg.Economy.Share = -1e6, -1e6, 1, 0
	cfg.Lockstep.Share = 0
	cfg.Funnel.MinTransfers, cfg.Funnel.LLR, cfg.Switch.Z = 2, -1e6, -1e6
	d, _ := detect.New(cfg)
	// Each player's (or pair's) highest score over the evaluations a
	// Follow would make, every cfg.Every events: a threshold judges them
	// all, early ones on few samples too.
	type key struct{ det, players string }
	best := map[key]float64{}
	var flagsOf = map[key][]string{}
	evaluate := func() {
		d.ForgetFlags()
		for _, f := range d.Evaluate() {
			k := key{f.Detector, strings.Join(f.Players, "+")}
			if s, ok := best[k]; !ok || f.Score > s {
				best[k] = f.Score
			}
			flagsOf[k] = f.Players
		}
	}
	n := 0
	mk, ok := map[string]func(int) corpus.Params{"A": corpus.A, "B": corpus.B, "C": corpus.C, "D": corpus.D, "E": corpus.E, "F": corpus.F,
		"S": corpus.S, "G": corpus.G, "W": corpus.W, "H": corpus.H, "J": corpus.J, "K": corpus.K, "L": corpus.L}[*scoresCorpus]
	if !ok {
		t.Fatalf("no corpus %q", *scoresCorpus)
	}
	p := mk(*tableHonest)
	labels, _ := corpus.Generate(p, func(ev *fsm.Event) {
		d.Observe(ev)
		if n++; n%cfg.Every == 0 {
			evaluate()
		}
	})
	evaluate()
	hs := map[string][]float64{}
	cs := map[string][]float64{}
	for k, score := range best {
		honest, target := true, false
		for _, p := range flagsOf[k] {
			honest = honest && labels[p].Honest()
			target = target || slices.Contains(targets[k.det], labels[p])
		}
		if honest {
			hs[k.det] = append(hs[k.det], score)
		} else if target {
			cs[k.det] = append(cs[k.det], score)
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
		third := -1.0 // the third largest: a threshold above it flags at most two
		if len(h) >= 3 {
			third = h[len(h)-3]
		}
		fmt.Printf("%-9s honest n=%d p99=%.3f p99.9=%.3f 3rd=%.3f max=%.3f | target n=%d min=%.3f p5=%.3f p50=%.3f\n", det, len(h), q(h, .99), q(h, .999), third, q(h, 1), len(c), q(c, 0), q(c, .05), q(c, .5))
	}
}
