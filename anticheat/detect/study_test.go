package detect

import (
	"flag"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/corpus"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

var (
	studyHonest  = flag.Int("study.honest", 0, "print TestPrintAimStudy's figures with this many honest players")
	studyCorpora = flag.String("study.corpora", "A", "the corpora -study.honest prints, of A, B, C and D")
)

// TestPrintAimStudy prints, per corpus at the end of its run, the honest
// pros' and the aimbots' mean log reaction against Reaction.Median, their
// own spread of log reactions (the square root of the mean squared
// deviation from their own mean) and their hit ratios: the study that
// led to the redesign of reaction and accuracy after corpus E
// (docs/ANTICHEAT.md, "Corpus F"). Only the development corpora A to D:
//
//	go test ./anticheat/detect -run TestPrintAimStudy -v -args -study.honest=10000 -study.corpora=A
//	go test ./anticheat/detect -run TestPrintAimStudy -v -args -study.honest=3000 -study.corpora=BCD
func TestPrintAimStudy(t *testing.T) {
	if *studyHonest == 0 {
		t.Skip("no -study.honest")
	}
	for _, c := range []struct {
		name string
		p    func(int) corpus.Params
	}{{"A", corpus.A}, {"B", corpus.B}, {"C", corpus.C}, {"D", corpus.D}} {
		if !strings.Contains(*studyCorpora, c.name) {
			continue
		}
		d, err := New(DefaultConfig())
		require.NoError(t, err)
		// Each reaction's log, kept here only: the Detector keeps their sum.
		logs := map[string][]float64{}
		labels, err := corpus.Generate(c.p(*studyHonest), func(ev *fsm.Event) {
			var before float64
			var n int
			if p := d.players[ev.Player]; p != nil {
				before, n = p.logReact, p.reactions
			}
			d.Observe(ev)
			if p := d.players[ev.Player]; p != nil && p.reactions > n {
				logs[ev.Player] = append(logs[ev.Player], p.logReact-before)
			}
		})
		require.NoError(t, err)
		for _, k := range []corpus.Kind{corpus.Pro, corpus.Aimbot} {
			var mean, spread, ratio []float64
			for id, p := range d.players {
				if labels[id] != k {
					continue
				}
				if ls := logs[id]; len(ls) >= d.cfg.Reaction.MinSamples {
					m := p.logReact / float64(len(ls))
					ss := 0.0
					for _, l := range ls {
						ss += (l - m) * (l - m)
					}
					mean, spread = append(mean, m), append(spread, math.Sqrt(ss/float64(len(ls))))
				}
				if p.shots >= d.cfg.Accuracy.MinShots {
					ratio = append(ratio, float64(p.hits)/float64(p.shots))
				}
			}
			for _, s := range [][]float64{mean, spread, ratio} {
				slices.Sort(s)
			}
			q := func(s []float64, f float64) float64 { return s[min(int(f*float64(len(s))), len(s)-1)] }
			fmt.Printf("%s %-6s mean ln(r/median) p5=%.3f p95=%.3f | own spread p50=%.3f | hit ratio min=%.3f max=%.3f\n",
				c.name, k, q(mean, .05), q(mean, .95), q(spread, .5), ratio[0], ratio[len(ratio)-1])
		}
	}
}
