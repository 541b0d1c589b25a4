package detect_test

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gsd-dev/gsd/anticheat/corpus"
	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// targets names the cheaters each detector is meant to find.
var targets = map[string][]corpus.Kind{
	detect.DetSpeed:    {corpus.SpeedHack},
	detect.DetJump:     {corpus.SpeedHack},
	detect.DetStraight: {corpus.BotRing},
	detect.DetReaction: {corpus.Aimbot},
	detect.DetAccuracy: {corpus.Aimbot},
	detect.DetSwitch:   {corpus.Aimbot},
	detect.DetEconomy:  {corpus.GoldFarm},
	detect.DetLockstep: {corpus.BotRing},
	detect.DetWinTrade: {corpus.WinTrade},
	detect.DetFunnel:   {corpus.Funnel},
}

// rate is one detector's measure on a corpus.
type rate struct {
	detector         string
	found, targets   int // target cheaters flagged, of all of them
	falsePos, honest int // honest players flagged, of all of them
}

func (r rate) detection() float64 { return float64(r.found) / float64(r.targets) }
func (r rate) fpRate() float64    { return float64(r.falsePos) / float64(r.honest) }

// measure runs a default Detector over the corpus of p, evaluating every
// cfg.Every events and at the end, and returns its rates per detector and
// the events observed.
func measure(t testing.TB, p corpus.Params) ([]rate, int) {
	rs, _, n, _ := measureAll(t, p)
	return rs, n
}

// measureAll is measure, plus per cheater kind the rate at which any
// detector flags it (and, under "honest", any honest player), and the time
// spent in the detector (timer overhead included: an upper bound).
func measureAll(t testing.TB, p corpus.Params) ([]rate, []rate, int, time.Duration) {
	d, err := detect.New(detect.DefaultConfig())
	require.NoError(t, err)
	every := detect.DefaultConfig().Every
	var flags []detect.Flag
	n := 0
	var spent time.Duration
	labels, err := corpus.Generate(p, func(ev *fsm.Event) {
		start := time.Now()
		d.Observe(ev)
		if n++; n%every == 0 {
			flags = append(flags, d.Evaluate()...)
		}
		spent += time.Since(start)
	})
	require.NoError(t, err)
	flags = append(flags, d.Evaluate()...)
	flagged := map[string]map[string]bool{}
	for _, f := range flags {
		if flagged[f.Detector] == nil {
			flagged[f.Detector] = map[string]bool{}
		}
		for _, p := range f.Players {
			flagged[f.Detector][p] = true
		}
	}
	var out []rate
	for _, det := range detect.Detectors {
		r := rate{detector: det}
		for id, k := range labels {
			hit := flagged[det][id]
			switch {
			case k.Honest():
				r.honest++
				if hit {
					r.falsePos++
				}
			case contains(targets[det], k):
				r.targets++
				if hit {
					r.found++
				}
			}
		}
		out = append(out, r)
	}
	var kinds []rate
	for _, k := range corpus.Kinds[3:] {
		r := rate{detector: string(k)}
		if k == corpus.Pro {
			r.detector = "honest"
		}
		for id, l := range labels {
			any := false
			for _, det := range detect.Detectors {
				any = any || flagged[det][id]
			}
			switch {
			case l.Honest() && k == corpus.Pro:
				r.targets++
				if any {
					r.found++
				}
			case l == k:
				r.targets++
				if any {
					r.found++
				}
			}
		}
		kinds = append(kinds, r)
	}
	return out, kinds, n, spent
}

func contains(ks []corpus.Kind, k corpus.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func printRates(w io.Writer, name string, rs []rate, events int) {
	fmt.Fprintf(w, "corpus %s: %d events, %d honest players\n", name, events, rs[0].honest)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "detector\ttargets\tdetected\tdetection\tfalse positives\tFP rate\t")
	for _, r := range rs {
		var ks []string
		for _, k := range targets[r.detector] {
			ks = append(ks, string(k))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.1f%%\t%d/%d\t%.3f%%\t\n", r.detector, strings.Join(ks, ","), r.found, r.targets, 100*r.detection(), r.falsePos, r.honest, 100*r.fpRate())
	}
	tw.Flush()
}

var (
	tableHonest  = flag.Int("table.honest", 0, "print the detectors' rates on corpora A to F with this many honest players")
	tableCorpora = flag.String("table.corpora", "ABC", "the corpora -table.honest prints, of A, B, C, D, E, F, S, G, W, H, J, K and L")
)

// TestPrintTable prints the figures of docs/ANTICHEAT.md (corpus D, held
// out after the detectors were changed for C's findings, was measured
// once, alone, and so were E after the changes for D's and F after the
// reaction and accuracy redesign for E's):
//
//	go test ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000 -table.corpora=D
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000 -table.corpora=E
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000 -table.corpora=F
//
// S and G are in sessions (each player 3 to 5): G, held out after the
// reaction evidence was made to add up over a player's sessions, was
// measured once, alone:
//
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000 -table.corpora=G
//
// W and H have aimbots who switch on partway: H, held out after switch's
// threshold was fixed on W, was measured once, alone:
//
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000 -table.corpora=H
//
// J, held out after the busy rule (Reaction.Busy) was made for H's
// findings, was measured once, alone:
//
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000 -table.corpora=J
//
// K, held out after accuracy's hits were weighed by their age
// (Accuracy.HalfLife), was measured once, alone:
//
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000 -table.corpora=K
//
// L, held out after reaction's and accuracy's samples were weighed by
// the player's own later samples (half-lives in reactions and shots),
// was measured once, alone:
//
//	go test -count=1 -p 1 ./anticheat/detect -run TestPrintTable -v -args -table.honest=10000 -table.corpora=L
func TestPrintTable(t *testing.T) {
	if *tableHonest == 0 {
		t.Skip("no -table.honest")
	}
	for _, c := range []struct {
		name string
		p    corpus.Params
	}{{"A (seed 1, thresholds fixed here)", corpus.A(*tableHonest)}, {"B (seed 2, held out)", corpus.B(*tableHonest)}, {"C (seed 3, held out)", corpus.C(*tableHonest)}, {"D (seed 4, held out)", corpus.D(*tableHonest)}, {"E (seed 5, held out for the detectors before F)", corpus.E(*tableHonest)}, {"F (seed 6, held out)", corpus.F(*tableHonest)},
		{"S (seed 1: A in 3 to 5 sessions a player; thresholds of history fixed here)", corpus.S(*tableHonest)}, {"G (seed 7, in 3 to 5 sessions a player, held out)", corpus.G(*tableHonest)},
		{"W (seed 8: aimbots switching on after 1 to 4 of 4 to 7 sessions; switch's threshold fixed here)", corpus.W(*tableHonest)}, {"H (seed 9: aimbots switching on after 2 to 5 of 5 to 8 sessions, held out)", corpus.H(*tableHonest)},
		{"J (seed 10: aimbots switching on after 1 to 5 of 4 to 8 sessions, held out after the busy rule)", corpus.J(*tableHonest)},
		{"K (seed 11: aimbots cheating from the start, 4 to 8 sessions, held out after accuracy's fading)", corpus.K(*tableHonest)},
		{"L (seed 12: aimbots cheating from the start, 3 to 6 sessions of two minutes, held out after the half-lives in play)", corpus.L(*tableHonest)}} {
		if !strings.Contains(*tableCorpora, c.name[:1]) {
			continue
		}
		rs, kinds, n, spent := measureAll(t, c.p)
		printRates(os.Stdout, c.name, rs, n)
		fmt.Printf("detectors: %.0f ns per event, all together (timer included)\n", float64(spent.Nanoseconds())/float64(n))
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
		fmt.Fprintln(tw, "players\tflagged by any detector\t")
		for _, k := range kinds {
			fmt.Fprintf(tw, "%s\t%d/%d (%.2f%%)\t\n", k.detector, k.found, k.targets, 100*k.detection())
		}
		tw.Flush()
	}
}

// TestDetectorsMeetTheirBoundsOnAHeldOutCorpus runs the default
// thresholds (fixed on corpus A) over corpus B (held out when the first
// thresholds were fixed, looked at since: a regression test now; corpora
// C and D, measured once each in docs/ANTICHEAT.md, miss these bounds for
// some detectors) with 2,000 honest players
// (and 20 cheaters of each kind): every detector finds at least 85% of
// the cheaters it targets and flags at most 0.1% of the honest players (2
// of 2,000), but reaction, whose threshold is for a history of several
// sessions (10): one session of B's aimbots is enough for at least half
// of them, and every aimbot is flagged by reaction or accuracy.
// docs/ANTICHEAT.md has the figures at 10,000 honest players.
func TestDetectorsMeetTheirBoundsOnAHeldOutCorpus(t *testing.T) {
	rs, kinds, _, _ := measureAll(t, corpus.B(2000))
	for _, r := range rs {
		if r.detector == detect.DetSwitch { // one session a player: nothing to compare
			require.Zero(t, r.found+r.falsePos)
			continue
		}
		require.Positive(t, r.targets, r.detector)
		bound := 0.85
		if r.detector == detect.DetReaction {
			bound = 0.5
		}
		require.GreaterOrEqual(t, r.detection(), bound, "%s detection", r.detector)
		require.LessOrEqual(t, r.falsePos, 2, "%s false positives", r.detector)
	}
	for _, k := range kinds {
		if k.detector == string(corpus.Aimbot) {
			require.Equal(t, k.targets, k.found, "every aimbot flagged by some detector")
		}
	}
}

// TestSwitchFindsAimbotsWhoSwitchOnPartway runs the default thresholds
// over corpus W (where switch's threshold was fixed: a regression test,
// not a held-out figure; docs/ANTICHEAT.md has H's) with 1,000 honest
// players and 20 aimbots, each honest for 1 to 4 of their 4 to 7
// sessions: switch finds at least 90% of them and flags at most one
// honest player (0.1%).
func TestSwitchFindsAimbotsWhoSwitchOnPartway(t *testing.T) {
	rs, _ := measure(t, corpus.W(1000))
	for _, r := range rs {
		if r.detector == detect.DetSwitch {
			require.Equal(t, 20, r.targets)
			require.GreaterOrEqual(t, r.detection(), 0.9)
			require.LessOrEqual(t, r.falsePos, 1)
		}
	}
}

// BenchmarkDetectorsPerEvent gives the detectors' CPU per committed event,
// all together, evaluations every Config.Every events included, on corpus
// A with 1,000 honest players (about 400,000 events):
//
//	go test ./anticheat/detect -run '^$' -bench PerEvent -benchtime 3x
func BenchmarkDetectorsPerEvent(b *testing.B) { benchmarkPerEvent(b, corpus.A(1000)) }

// BenchmarkDetectorsPerEventInSessions is the same on corpus S (players in
// 3 to 5 sessions, where switch compares sessions) with 300 honest
// players (about 480,000 events):
//
//	go test ./anticheat/detect -run '^$' -bench PerEventInSessions -benchtime 3x -benchmem
func BenchmarkDetectorsPerEventInSessions(b *testing.B) { benchmarkPerEvent(b, corpus.S(300)) }

func benchmarkPerEvent(b *testing.B, p corpus.Params) {
	var evs []*fsm.Event
	_, err := corpus.Generate(p, func(ev *fsm.Event) { evs = append(evs, ev) })
	require.NoError(b, err)
	every := detect.DefaultConfig().Every
	b.ResetTimer()
	for range b.N {
		d, err := detect.New(detect.DefaultConfig())
		require.NoError(b, err)
		for i, ev := range evs {
			d.Observe(ev)
			if (i+1)%every == 0 {
				d.Evaluate()
			}
		}
		d.Evaluate()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
