package spectator

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The bandwidth ruler (issue 13): the bytes a spectator of the public
// class receives against the bytes of the world's full event stream, for
// the same events, counted without a clock. The events are those of the
// bench load (loadgen's battle mix: 55% moves, 25% attacks, 15% item
// pickups and drops, 5% inventory adds) from a fixed seed, applied by a
// real FSM at 200 actions/s for 10 s, and the pipeline is stepped at the
// default tick. Print its figures with:
//
//	go test -run TestBandwidthRuler -v ./spectator

// rulerLoad is the ruler's workload: bench's --players 1000 --rate 200.
type rulerLoad struct {
	players, items int
	rate           int // actions per second
	seconds        int
	seed           uint64
}

var benchRulerLoad = rulerLoad{players: 1000, items: 64, rate: 200, seconds: 10, seed: 1}

// battleFields are loadgen.BattleRules' fields.
func battleFields() map[string]fsm.FieldRule {
	return map[string]fsm.FieldRule{
		"x": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative}, "y": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"hp": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}, "kills": {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"owner": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative}, "inventory": {Type: fsm.KindString, Policy: fsm.PolicySet},
		"best": {Type: fsm.KindInt, Policy: fsm.PolicyMax},
	}
}

// battleEvents applies l's actions to a fresh world "w" in a real FSM,
// one action per batch at its scheduled leader time, and returns the
// committed events (conflicts included, as the feed carries them).
func battleEvents(t testing.TB, l rulerLoad) []*fsm.Event {
	t.Helper()
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	index, now := uint64(1), t0
	res := f.ApplyBatch(index, &fsm.Batch{Time: now, Commands: []fsm.Command{{Kind: fsm.CmdCreateWorld,
		World: &fsm.WorldSpec{ID: "w", Origin: "local", Rules: fsm.Rules{Fields: battleFields()}}}}})
	require.NoError(t, res[0].Err)
	rng := rand.New(rand.NewPCG(l.seed, 0x9e3779b97f4a7c15))
	seqs := make([]uint64, l.players)
	held := map[int]int{} // item → holder
	n := l.rate * l.seconds
	evs := make([]*fsm.Event, 0, n)
	for range n {
		i := rng.IntN(l.players)
		id := "p" + strconv.Itoa(i)
		seqs[i]++
		var ops []fsm.Op
		switch r := rng.IntN(100); {
		case r < 55:
			ops = []fsm.Op{set(id, "x", fsm.Int(rng.Int64N(1000))), set(id, "y", fsm.Int(rng.Int64N(1000)))}
		case r < 80:
			target := "p" + strconv.Itoa(rng.IntN(l.players))
			ops = []fsm.Op{incr(target, "hp", -(1 + rng.Int64N(10))), set(id, "best", fsm.Int(1+rng.Int64N(10)))}
		case r < 95:
			item := rng.IntN(l.items)
			name := "item" + strconv.Itoa(item)
			if h, ok := held[item]; ok && h == i {
				ops = []fsm.Op{del(name)}
				delete(held, item)
			} else {
				ops = []fsm.Op{expect(set(name, "owner", fsm.String(id)), 0)}
				if _, ok := held[item]; !ok {
					held[item] = i
				}
			}
		default:
			ops = []fsm.Op{add(id, "inventory", fsm.String("gem"+strconv.Itoa(rng.IntN(20))))}
		}
		index++
		now += int64(time.Second) / int64(l.rate)
		res := f.ApplyBatch(index, &fsm.Batch{Time: now, Commands: []fsm.Command{{Kind: fsm.CmdAction,
			Action: &fsm.Action{World: "w", Player: id, Seq: seqs[i], Ops: ops}}}})
		require.Len(t, res, 1)
		if res[0].Event != nil {
			evs = append(evs, res[0].Event)
		}
	}
	return evs
}

// rulerBytes are one stream's bytes in each encoding.
type rulerBytes struct {
	json, msgpack int
	// permessage-deflate (RFC 7692) at coder/websocket's level
	// (flate.BestSpeed): each message alone (no context takeover), or
	// over one window kept across messages (context takeover)
	jsonDeflate, jsonDeflateCtx, msgpackDeflate, msgpackDeflateCtx int
	// gsd.watch.deflate.v1: Frame.Deflate, once per frame (spectators),
	// and with versions=false, raw and deflated
	frameDeflate, lean, leanDeflate int
}

// deflater counts a stream's messages compressed as permessage-deflate
// compresses them: each one flushed, without the 4 bytes of the flush's
// empty block that RFC 7692 leaves out.
type deflater struct {
	buf bytes.Buffer
	w   *flate.Writer
	ctx bool
	n   int
}

func newDeflater(t testing.TB, ctx bool) *deflater {
	d := &deflater{ctx: ctx}
	w, err := flate.NewWriter(&d.buf, flate.BestSpeed)
	require.NoError(t, err)
	d.w = w
	return d
}

func (d *deflater) message(t testing.TB, msg []byte) {
	d.buf.Reset()
	if !d.ctx {
		d.w.Reset(&d.buf)
	}
	_, err := d.w.Write(msg)
	require.NoError(t, err)
	require.NoError(t, d.w.Flush())
	d.n += d.buf.Len() - 4
}

// rulerStream counts the bytes of a stream's messages in every encoding.
type rulerStream struct {
	b                 rulerBytes
	jd, jdc, mpd, mpc *deflater
}

func newRulerStream(t testing.TB) *rulerStream {
	return &rulerStream{jd: newDeflater(t, false), jdc: newDeflater(t, true), mpd: newDeflater(t, false), mpc: newDeflater(t, true)}
}

func (s *rulerStream) message(t testing.TB, js, mp []byte) {
	s.b.json += len(js)
	s.b.msgpack += len(mp)
	s.jd.message(t, js)
	s.jdc.message(t, js)
	s.mpd.message(t, mp)
	s.mpc.message(t, mp)
}

func (s *rulerStream) bytes() rulerBytes {
	b := s.b
	b.jsonDeflate, b.jsonDeflateCtx, b.msgpackDeflate, b.msgpackDeflateCtx = s.jd.n, s.jdc.n, s.mpd.n, s.mpc.n
	return b
}

// fullStream is the full event stream's bytes of evs: an NDJSON line per
// event (GET /events), and as the play protocol's msgpack events frames,
// a message per tick's events (compressed per tick).
func fullStream(t testing.TB, evs []*fsm.Event, tick time.Duration) rulerBytes {
	s := newRulerStream(t)
	var js, mp []byte
	flush := func() {
		if len(js) > 0 {
			s.message(t, js, mp)
		}
		js, mp = js[:0], mp[:0]
	}
	end := evs[0].Time + int64(tick)
	for _, ev := range evs {
		for ev.Time > end {
			flush()
			end += int64(tick)
		}
		line, err := json.Marshal(ev.Wire())
		require.NoError(t, err)
		js = append(append(js, line...), '\n')
		m, err := wire.MarshalMsgpack(ev.Wire())
		require.NoError(t, err)
		mp = append(mp, m...)
	}
	flush()
	return s.bytes()
}

// rulerFrames are the frames a public viewer of evs is sent.
func rulerFrames(t testing.TB, evs []*fsm.Event) []*Frame {
	var fs []*Frame
	spectatorStream(t, evs, func(f *Frame) { fs = append(fs, f) }, nil)
	return fs
}

// spectatorStream runs evs through a pipeline of the battle's rules and
// returns the bytes a public viewer, joined before the first event, is
// sent, and the state it holds after the last frame.
func spectatorStream(t testing.TB, evs []*fsm.Event, sent func(*Frame), stepped func(*Pipeline)) (rulerBytes, *wire.Keyframe, *Pipeline) {
	return streamOf(t, fsm.Rules{Fields: battleFields()}, evs, sent, stepped)
}

// streamOf is spectatorStream under rules r.
func streamOf(t testing.TB, r fsm.Rules, evs []*fsm.Event, sent func(*Frame), stepped func(*Pipeline)) (rulerBytes, *wire.Keyframe, *Pipeline) {
	a, err := NewAccess(r)
	require.NoError(t, err)
	cfg := DefaultConfig()
	now := time.Unix(0, evs[0].Time)
	cfg.World, cfg.Access, cfg.Subscribe, cfg.Now = "w", a, newFeed().subscribe, func() time.Time { return now }
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	m, err := p.Join(View{})
	require.NoError(t, err)
	s := newRulerStream(t)
	var state *wire.Keyframe
	var deflated, lean, leanDeflated int
	read := func() {
		for len(m.ch) > 0 {
			f := <-m.ch
			if sent != nil {
				sent(f)
			}
			deflated += len(f.Deflate())
			lean += len(f.Lean())
			leanDeflated += len(f.LeanDeflate())
			mp, err := f.Msgpack()
			require.NoError(t, err)
			s.message(t, f.Data, mp)
			switch f.Type {
			case wire.TypeKeyframe:
				k := decodeKeyframe(t, f)
				state = &k
			case wire.TypeWatchDelta:
				require.NotNil(t, state, "a delta before the keyframe")
				d := decodeDelta(t, f)
				ApplyDelta(state, &d)
			}
		}
	}
	read()
	next := 0
	for next < len(evs) {
		now = now.Add(cfg.Tick)
		i := next
		for i < len(evs) && evs[i].Time <= now.UnixNano() {
			i++
		}
		p.delay.Push(evs[next:i]...)
		next = i
		require.NoError(t, p.step(now))
		read()
		if stepped != nil {
			stepped(p)
		}
	}
	b := s.bytes()
	b.frameDeflate, b.lean, b.leanDeflate = deflated, lean, leanDeflated
	return b, state, p
}

func TestBandwidthRuler(t *testing.T) {
	evs := battleEvents(t, benchRulerLoad)
	full := fullStream(t, evs, DefaultConfig().Tick)
	spec, state, p := spectatorStream(t, evs, nil, nil)
	// The viewer's state is the world's: the ruler counts frames that
	// carry everything.
	want := Keyframe(p.cfg.Access, p.ticker.State(), nil, View{})
	require.Equal(t, want.Seq, state.Seq)
	requireSameEntities(t, want.Entities, state.Entities)

	secs := float64(benchRulerLoad.seconds)
	t.Logf("%d events over %d s; bytes/s of the full event stream (NDJSON) and of a public spectator:", len(evs), benchRulerLoad.seconds)
	row := func(name string, f, s int) {
		t.Logf("%-26s full %8.1f kB/s  spectator %7.1f kB/s  %5.1f%% of full NDJSON", name, float64(f)/secs/1e3, float64(s)/secs/1e3, 100*float64(s)/float64(full.json))
	}
	row("json", full.json, spec.json)
	row("json deflate", full.jsonDeflate, spec.jsonDeflate)
	row("json deflate ctx", full.jsonDeflateCtx, spec.jsonDeflateCtx)
	row("msgpack", full.msgpack, spec.msgpack)
	row("msgpack deflate", full.msgpackDeflate, spec.msgpackDeflate)
	row("msgpack deflate ctx", full.msgpackDeflateCtx, spec.msgpackDeflateCtx)
	row("gsd.watch.deflate.v1", full.jsonDeflate, spec.frameDeflate)
	row("json versions=false", full.json, spec.lean)
	row("deflate versions=false", full.jsonDeflate, spec.leanDeflate)
	// The HTTP segments' bytes: the same frames as NDJSON, cut every
	// 2 s (the default), each opening with a keyframe, gzipped for a
	// client that accepts gzip.
	var segs []*Segment
	cur := &Segment{}
	steps := 0
	spectatorStream(t, evs, func(f *Frame) {
		if steps > 0 { // the join keyframe is the first segment's
			cur.Data = append(append(cur.Data, f.Data...), '\n')
		}
	}, func(p *Pipeline) {
		steps++
		if steps%int(DefaultSegmentDuration/p.cfg.Tick) == 1 {
			if len(cur.Data) > 0 {
				segs = append(segs, cur)
			}
			kf, err := encode(wire.TypeKeyframe, p.ticker.State().Seq(), Keyframe(p.cfg.Access, p.ticker.State(), nil, View{}))
			require.NoError(t, err)
			cur = &Segment{Data: append(kf.Data, '\n')}
		}
	})
	segs = append(segs, cur)
	var plain, gzipped int
	for _, sg := range segs {
		gz, _ := sg.Gzip()
		plain, gzipped = plain+len(sg.Data), gzipped+len(gz)
	}
	t.Logf("as %d HTTP segments of %s: NDJSON %.1f%%, gzipped %.1f%% of full NDJSON", len(segs), DefaultSegmentDuration, 100*float64(plain)/float64(full.json), 100*float64(gzipped)/float64(full.json))
	require.Less(t, gzipped, plain/3)

	// A late joiner's (or a slow viewer's) keyframe of the world then.
	kf, err := encode(wire.TypeKeyframe, want.Seq, want)
	require.NoError(t, err)
	t.Logf("a keyframe of the world at the end: json %d B, deflate %d B, deflate versions=false %d B", len(kf.Data), len(kf.Deflate()), len(kf.LeanDeflate()))
	require.Less(t, len(kf.LeanDeflate()), len(kf.Deflate()))
	require.Less(t, len(kf.Deflate()), len(kf.Data))
	require.Less(t, spec.json, full.json, "a tick's delta holds no more than its events")
	require.LessOrEqual(t, 10*spec.frameDeflate, full.json, "issue 13's goal: a spectator stream of at most 10%% of the full event stream's bytes")
}
