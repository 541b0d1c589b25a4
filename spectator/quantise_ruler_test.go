package spectator

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The quantum's ruler (issue 13's bandwidth): the bytes per event a
// public spectator is sent of a synthetic moving-entity world, with and
// without a quantum on the positions. 200 entities walk at 200 moves/s
// for 10 s (each move sets one entity's x and y: a step of up to 0.05 in
// a heading that turns a little each move, positions in 0..1000 with all
// their float digits), from a seeded source, applied by a real FSM; the
// pipeline steps at the default tick, as the bandwidth ruler's does.
// Print its figures with:
//
//	go test -run '^$' -bench QuantumRuler -benchtime 1x ./spectator

// movingEvents returns the moving world's committed events under rules r.
func movingEvents(tb testing.TB, r fsm.Rules) []*fsm.Event {
	tb.Helper()
	const ents, rate, seconds = 200, 200, 10
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(tb, err)
	index, now := uint64(1), t0
	res := f.ApplyBatch(index, &fsm.Batch{Time: now, Commands: []fsm.Command{{Kind: fsm.CmdCreateWorld,
		World: &fsm.WorldSpec{ID: "w", Origin: "local", Rules: r}}}})
	require.NoError(tb, res[0].Err)
	rng := rand.New(rand.NewPCG(13, 16))
	type walker struct{ x, y, dx, dy float64 }
	ws := make([]walker, ents)
	for i := range ws {
		ws[i] = walker{x: rng.Float64() * 1000, y: rng.Float64() * 1000, dx: rng.Float64()*0.1 - 0.05, dy: rng.Float64()*0.1 - 0.05}
	}
	evs := make([]*fsm.Event, 0, rate*seconds)
	for k := range rate * seconds {
		i := k % ents
		w := &ws[i]
		w.dx += (rng.Float64() - 0.5) * 0.01
		w.dy += (rng.Float64() - 0.5) * 0.01
		w.x, w.y = w.x+w.dx, w.y+w.dy
		id := "e" + strconv.Itoa(i)
		index++
		now += int64(time.Second) / rate
		res := f.ApplyBatch(index, &fsm.Batch{Time: now, Commands: []fsm.Command{{Kind: fsm.CmdAction,
			Action: &fsm.Action{World: "w", Player: id, Seq: uint64(k/ents + 1), Ops: []fsm.Op{
				set(id, "x", fsm.Float(w.x)), set(id, "y", fsm.Float(w.y))}}}}})
		require.NoError(tb, res[0].Err)
		evs = append(evs, res[0].Event)
	}
	return evs
}

// movingRules are the moving world's rules: x and y rounded to q (0: none).
func movingRules(q float64) fsm.Rules {
	float := fsm.FieldRule{Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}
	r := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": float, "y": float}}
	if q != 0 {
		r.Schema.Access = map[string]fsm.FieldAccess{"x": {Quantum: q}, "y": {Quantum: q}}
	}
	return r
}

// quantumRuler returns the full event stream's and a public spectator's
// bytes of the moving world under quantum q, and checks the spectator's
// state against the pipeline's keyframe.
func quantumRuler(tb testing.TB, q float64) (full, spec rulerBytes, events int) {
	r := movingRules(q)
	evs := movingEvents(tb, r)
	full = fullStream(tb, evs, DefaultConfig().Tick)
	spec, state, p := streamOf(tb, r, evs, nil, nil)
	want := Keyframe(p.cfg.Access, p.ticker.State(), nil, View{})
	// Ticks whose moves all stayed within the quantum sent nothing: the
	// viewer's seq may be behind, its entities are the same.
	require.LessOrEqual(tb, state.Seq, want.Seq)
	require.Len(tb, state.Entities, len(want.Entities))
	for id, we := range want.Entities {
		for n, f := range we.Fields {
			require.InDelta(tb, f.Value.Float, num(*state.Entities[id].Fields[n].Value), 1e-9, "%s.%s", id, n)
		}
	}
	return full, spec, len(evs)
}

var rulerQuanta = []struct {
	name string
	q    float64
}{{"none", 0}, {"0.01", 0.01}, {"0.1", 0.1}, {"1", 1}}

func BenchmarkQuantumRuler(b *testing.B) {
	for _, c := range rulerQuanta {
		b.Run("quantum="+c.name, func(b *testing.B) {
			var full, spec rulerBytes
			var n int
			for b.Loop() {
				full, spec, n = quantumRuler(b, c.q)
			}
			per := func(x int) float64 { return float64(x) / float64(n) }
			b.ReportMetric(per(full.json), "full-B/event")
			b.ReportMetric(per(spec.json), "json-B/event")
			b.ReportMetric(per(spec.frameDeflate), "deflate-B/event")
			b.ReportMetric(per(spec.leanDeflate), "lean-deflate-B/event")
			b.ReportMetric(per(spec.msgpack), "msgpack-B/event")
		})
	}
}

// TestQuantumRulerSendsFewerBytesTheCoarserTheQuantum: the ruler's
// stream is the same events' in every run; a coarser quantum sends fewer
// bytes (moves within it are not sent, rounded values are shorter).
func TestQuantumRulerSendsFewerBytesTheCoarserTheQuantum(t *testing.T) {
	var last rulerBytes
	for i, c := range rulerQuanta {
		full, spec, n := quantumRuler(t, c.q)
		t.Logf("quantum %-4s: full %6.1f B/event, spectator json %6.1f, deflate %6.1f, lean deflate %6.1f B/event (%d events)", c.name,
			float64(full.json)/float64(n), float64(spec.json)/float64(n), float64(spec.frameDeflate)/float64(n), float64(spec.leanDeflate)/float64(n), n)
		if i > 0 {
			require.Less(t, spec.json, last.json, c.name)
			require.Less(t, spec.frameDeflate, last.frameDeflate, c.name)
		}
		last = spec
	}
}

// num is a number value read back from JSON (1000.0 reads as an int).
func num(v fsm.Value) float64 {
	if v.Kind == fsm.KindInt {
		return float64(v.Int)
	}
	return v.Float
}
