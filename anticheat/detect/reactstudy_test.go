package detect

import (
	"cmp"
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
	reactHonest = flag.Int("react.honest", 0, "print TestPrintReactionStudy's honest players with this many honest players")
	reactCorpus = flag.String("react.corpus", "W", "the development corpus -react.honest reads, S or W")
	reactFrom   = flag.Float64("react.from", 7, "the reaction score from which an honest player is printed")
)

// TestPrintReactionStudy prints every honest player whose reaction score
// reached -react.from at some evaluation (every Config.Every events) on a
// development corpus, with their timed reactions per session (count and
// geometric mean) and how many were under 100 ms: the reading that found
// why honest players trip reaction (docs/ANTICHEAT.md, "Why honest
// players tripped reaction"). Only the development corpora S and W:
//
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintReactionStudy -v -args -react.honest=10000 -react.corpus=W
func TestPrintReactionStudy(t *testing.T) {
	if *reactHonest == 0 {
		t.Skip("no -react.honest")
	}
	mk, ok := map[string]func(int) corpus.Params{"S": corpus.S, "W": corpus.W}[*reactCorpus]
	require.True(t, ok, "a development corpus: S or W")
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	type timed struct {
		world string
		log   float64
	}
	reactions := map[string][]timed{} // each player's timed reactions, kept here only
	best := map[string]float64{}
	n := 0
	labels, err := corpus.Generate(mk(*reactHonest), func(ev *fsm.Event) {
		var before float64
		var k int
		if p := d.players[ev.Player]; p != nil {
			before, k = p.logReact, p.reactions
		}
		d.Observe(ev)
		if p := d.players[ev.Player]; p != nil && p.reactions > k {
			reactions[ev.Player] = append(reactions[ev.Player], timed{ev.World, p.logReact - before})
		}
		if n++; n%d.cfg.Every == 0 {
			d.Evaluate()
			for id, p := range d.players {
				if z, ok := d.reactionScore(p); ok && z > best[id] {
					best[id] = z
				}
			}
		}
	})
	require.NoError(t, err)
	var ids []string
	for id, z := range best {
		if labels[id].Honest() && z >= *reactFrom {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(best[b], best[a]) })
	gm := func(sum float64, n int) float64 { return 200 * math.Exp(sum/float64(n)) }
	for _, id := range ids {
		rs := reactions[id]
		var all float64
		var sessions []string
		var fast int
		for i := 0; i < len(rs); {
			j, sum := i, 0.0
			for ; j < len(rs) && rs[j].world == rs[i].world; j++ {
				sum += rs[j].log
				if gm(rs[j].log, 1) < 100 {
					fast++
				}
			}
			sessions = append(sessions, fmt.Sprintf("%s %d@%.0fms", rs[i].world, j-i, gm(sum, j-i)))
			all += sum
			i = j
		}
		fmt.Printf("%s %-7s best %.2f, %d reactions, %.0f ms; %s; under 100 ms: %d\n", id, labels[id], best[id], len(rs), gm(all, len(rs)), strings.Join(sessions, ", "), fast)
	}
}
