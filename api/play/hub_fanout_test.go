package play

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// fanoutHub is a hub without a store: the tests and the benchmark call
// fanout and tick themselves, as run and ticker do.
func fanoutHub(t testing.TB, n int, codec playCodec, queue int) (*hub, []*playConn) {
	t.Helper()
	pm, err := newPlayMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	s := bareServer(pm)
	s.cfg = DefaultConfig()
	h := s.newHub("w", 0)
	conns := make([]*playConn, n)
	for i := range conns {
		c := &playConn{s: s, world: "w", player: fmt.Sprintf("p%d", i), ob: newOutbox(queue, codec), detached: make(chan struct{}, 1)}
		h.members[c] = memberAttached
		conns[i] = c
	}
	return h, conns
}

// fanoutBatch is one batch from seq on: a critical hit, then bulk moves of
// players p<first>.. .
func fanoutBatch(seq uint64, first, moves int) []*fsm.Event {
	evs := []*fsm.Event{critEv(seq, "boss")}
	for i := range moves {
		s := seq + 1 + uint64(i)
		evs = append(evs, moveEv(s, fmt.Sprintf("p%d", (first+i)%1000), int64(s)))
	}
	for _, ev := range evs {
		ev.World, ev.Status = "w", fsm.StatusApplied
	}
	return evs
}

// BenchmarkHubFanoutTick: one op is one tick of a world with 1,000 attached
// play connections: 5 batches of one critical event and 10 bulk moves
// (1,100 events/s at the default 50 ms tick), the tick, and every
// connection's writer taking its frames.
func BenchmarkHubFanoutTick(b *testing.B) {
	for _, codec := range []playCodec{codecJSON, codecMsgpack} {
		name := "json"
		if codec == codecMsgpack {
			name = "msgpack"
		}
		b.Run(name, func(b *testing.B) {
			h, conns := fanoutHub(b, 1000, codec, 256)
			seq, first := uint64(1), 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for range 5 {
					evs := fanoutBatch(seq, first, 10)
					hevs, err := h.s.prepare(evs, true)
					if err != nil {
						b.Fatal(err)
					}
					h.fanout(evs, hevs)
					seq += uint64(len(evs))
					first += 10
				}
				h.tick()
				for _, c := range conns {
					if _, err := c.ob.take(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// fanLog feeds a hub batches of events, keeping them all to play a
// detached connection's own subscription.
type fanLog struct {
	t   *testing.T
	h   *hub
	seq uint64
	all []*fsm.Event
}

// batch commits evs (their seqs are given here) and fans them out.
func (l *fanLog) batch(evs ...*fsm.Event) {
	l.t.Helper()
	l.fan(l.commit(evs...))
}

// fan fans committed events out, as the hub's subscription delivers them.
func (l *fanLog) fan(evs []*fsm.Event) {
	l.t.Helper()
	hevs, err := l.h.s.prepare(evs, true)
	require.NoError(l.t, err)
	l.h.fanout(evs, hevs)
}

// commit gives evs their seqs and logs them.
func (l *fanLog) commit(evs ...*fsm.Event) []*fsm.Event {
	for _, ev := range evs {
		l.seq++
		ev.Seq, ev.World = l.seq, "w"
		if ev.Status == 0 {
			ev.Status = fsm.StatusApplied
		}
		for i := range ev.Changes {
			ev.Changes[i].Version = l.seq
		}
	}
	l.all = append(l.all, evs...)
	return evs
}

// catchUp plays c's pusher while detached: it offers c the events after
// its position from the log, as its own subscription would, and reports
// whether its queue took them all.
func (l *fanLog) catchUp(c *playConn) bool {
	l.t.Helper()
	var evs []*fsm.Event
	for _, ev := range l.all {
		if ev.Seq > c.ob.position() {
			evs = append(evs, ev)
		}
	}
	if len(evs) == 0 {
		return true
	}
	hevs, err := l.h.s.prepare(evs, true)
	require.NoError(l.t, err)
	return c.ob.offer(hevs, nil) == len(hevs)
}

func (l *fanLog) member(c *playConn) member {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	return l.h.members[c]
}

// fanClient reads a connection's frames as docs/PROTOCOL.md tells a
// client to, and fails on a gap, a repeated critical event or a covered
// seq that goes back.
type fanClient struct {
	t      *testing.T
	last   uint64
	events []uint64                    // the events received, in order
	fields map[string]map[string][]any // entity → field → [value, version]
}

func newFanClient(t *testing.T, from uint64) *fanClient {
	return &fanClient{t: t, last: from, fields: make(map[string]map[string][]any)}
}

func (cl *fanClient) read(c *playConn) {
	cl.t.Helper()
	cl.readFrames(frames(cl.t, c.ob))
}

func (cl *fanClient) readFrames(ms []map[string]any) {
	cl.t.Helper()
	for _, m := range ms {
		from, seq := uint64(m["from"].(float64)), uint64(m["seq"].(float64))
		require.Equal(cl.t, cl.last+1, from, "frames cover consecutive ranges: %v", m)
		require.GreaterOrEqual(cl.t, seq+1, from, "%v", m)
		switch m["type"] {
		case "events":
			for _, s := range eventSeqs(m) {
				if n := len(cl.events); n > 0 {
					require.Greater(cl.t, s, cl.events[n-1], "each event once, in order")
				}
				cl.events = append(cl.events, s)
			}
		case "delta":
			for id, e := range m["entities"].(map[string]any) {
				for f, fd := range e.(map[string]any)["fields"].(map[string]any) {
					v := fd.(map[string]any)
					if cl.fields[id] == nil {
						cl.fields[id] = make(map[string][]any)
					}
					if old := cl.fields[id][f]; old == nil || v["version"].(float64) > old[1].(float64) {
						cl.fields[id][f] = []any{v["value"], v["version"]}
					}
				}
			}
		}
		cl.last = max(cl.last, seq)
	}
}

// check compares what cl received with the log after from: every
// critical event once, the latest value of every field moved, all covered.
func (cl *fanClient) check(l *fanLog, from uint64) {
	cl.t.Helper()
	var crit []uint64
	latest := make(map[string]map[string][]any)
	for _, ev := range l.all {
		if ev.Seq <= from {
			continue
		}
		if ev.Priority == fsm.PriorityCritical {
			crit = append(crit, ev.Seq)
			continue
		}
		if ev.Status != fsm.StatusApplied {
			continue
		}
		for _, c := range ev.Changes {
			if latest[c.Entity] == nil {
				latest[c.Entity] = make(map[string][]any)
			}
			latest[c.Entity][c.Field] = []any{float64(c.Value.Int), float64(c.Version)}
		}
	}
	require.Equal(cl.t, crit, cl.events, "every critical event exactly once")
	require.Equal(cl.t, latest, cl.fields, "the latest bulk values")
	require.Equal(cl.t, l.seq, cl.last, "all covered")
}

func move(entity string, x int64) *fsm.Event {
	return &fsm.Event{Player: "bob", Priority: fsm.PriorityBulk,
		Changes: []fsm.Change{{Entity: entity, Field: "x", Op: fsm.OpSet, Value: fsm.Int(x)}}}
}

func hit(entity string) *fsm.Event {
	return &fsm.Event{Player: "bob", Priority: fsm.PriorityCritical,
		Changes: []fsm.Change{{Entity: entity, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1)}}}
}

func rejectedMove() *fsm.Event {
	return &fsm.Event{Player: "bob", Priority: fsm.PriorityBulk, Status: fsm.StatusRejected, Reason: "nope"}
}

func TestHubSharedMembersGetTheSameBytesAsAnOwnOutboxWouldMake(t *testing.T) {
	for _, codec := range []playCodec{codecJSON, codecMsgpack} {
		h, conns := fanoutHub(t, 4, codec, 8)
		l := &fanLog{t: t, h: h}
		ref := newOutbox(8, codec) // what one connection got by itself before
		step := func(evs ...*fsm.Event) {
			l.batch(evs...)
			hevs, err := h.s.prepare(evs, true)
			require.NoError(t, err)
			require.Equal(t, len(hevs), ref.offer(hevs, nil))
		}
		tick := func() {
			h.tick()
			ref.onTick(h.ticks)
		}
		// takeAll checks that every connection gets ref's frames and
		// returns them; same: the connections share the very bytes.
		takeAll := func(same bool) [][]byte {
			want := mustTake(t, ref)
			var first [][]byte
			for i, c := range conns {
				got := mustTake(t, c.ob)
				require.Equal(t, want, got)
				require.Equal(t, ref.coveredSeq(), c.ob.coveredSeq())
				if i == 0 {
					first = got
				} else if same {
					for j, b := range got {
						require.Same(t, &first[j][0], &b[0], "encoded once for all")
					}
				}
			}
			return want
		}
		members := func(m member) {
			for _, c := range conns {
				require.Equal(t, m, l.member(c))
			}
		}

		// Attached, before the first tick: each its own offers.
		step(hit("boss"), move("p1", 1), move("p2", 2))
		require.Len(t, takeAll(false), 1)
		members(memberAttached)
		// The tick: each seals its own delta and joins the shared stream.
		tick()
		require.Len(t, takeAll(false), 1)
		members(memberShared)
		// Shared: one events frame whose seq stops before the pending
		// bulk change, then one delta, encoded once.
		step(move("p1", 4), hit("boss"), move("p3", 5), rejectedMove())
		got := takeAll(true)
		require.Len(t, got, 1)
		tick()
		got = append(got, takeAll(true)...)
		require.Len(t, got, 2)
		if codec == codecJSON {
			var ev, d map[string]any
			require.NoError(t, json.Unmarshal(got[0], &ev))
			require.NoError(t, json.Unmarshal(got[1], &d))
			require.Equal(t, []any{float64(4), float64(3)}, []any{ev["from"], ev["seq"]})
			require.Equal(t, []uint64{5}, eventSeqs(ev))
			require.Equal(t, []any{float64(4), float64(7)}, []any{d["from"], d["seq"]})
			require.Equal(t, map[string]any{
				"p1": map[string]any{"fields": map[string]any{"x": map[string]any{"value": float64(4), "version": float64(4)}}},
				"p3": map[string]any{"fields": map[string]any{"x": map[string]any{"value": float64(5), "version": float64(6)}}},
			}, d["entities"])
		}
		// Only a rejection moves the position: a progress frame at the
		// 20th tick, as before.
		step(rejectedMove())
		for h.ticks%progressTicks != progressTicks-1 {
			tick()
			require.Empty(t, takeAll(true))
		}
		tick()
		require.Len(t, takeAll(true), 1)
		require.Equal(t, uint64(8), conns[0].ob.coveredSeq())
		members(memberShared)
	}
}

func TestHubMembersJoiningMidTickAndLeavingAFullQueueGetEveryEventOnce(t *testing.T) {
	h, conns := fanoutHub(t, 3, codecJSON, 2)
	a, b, c := conns[0], conns[1], conns[2] // a reads always; b and c stall
	l := &fanLog{t: t, h: h}
	cl := map[*playConn]*fanClient{}
	for _, x := range conns {
		cl[x] = newFanClient(t, 0)
	}
	joiner := func() *playConn {
		x := &playConn{s: h.s, world: "w", ob: newOutbox(2, codecJSON), detached: make(chan struct{}, 1)}
		h.mu.Lock()
		h.members[x] = memberDetached // as joinHub
		h.mu.Unlock()
		cl[x] = newFanClient(t, 0)
		return x
	}
	attach := func(x *playConn) {
		ok, err := h.attach(x)
		require.NoError(t, err)
		require.True(t, ok)
	}
	read := func(xs ...*playConn) {
		for _, x := range xs {
			cl[x].read(x)
		}
	}

	l.batch(hit("boss"), move("p1", 1))
	h.tick()
	read(a, b, c)
	require.Equal(t, memberShared, l.member(a))

	// x catches up by itself while the shared stream has bulk changes
	// pending, and attaches mid-tick: its own offers until the tick.
	x := joiner()
	l.batch(move("p2", 2), move("p1", 3))
	require.True(t, l.catchUp(x))
	read(x)
	attach(x)
	l.batch(hit("boss"), move("p2", 4))
	read(a, b, c, x)
	require.Equal(t, memberAttached, l.member(x))
	h.tick()
	require.Equal(t, memberShared, l.member(x))
	read(a, b, c, x)

	// y has read further than the hub when it attaches: it joins only at
	// a tick that finds it at the stream's position.
	y := joiner()
	ahead := l.commit(hit("boss"), move("p3", 5))
	require.True(t, l.catchUp(y))
	attach(y)
	h.tick()
	require.Equal(t, memberAttached, l.member(y))
	l.fan(ahead)
	read(a, b, c, x, y)
	h.tick()
	require.Equal(t, memberShared, l.member(y))
	read(a, b, c, x, y)

	// b stops reading: the critical frame it has no room for detaches it
	// before the batch, which it then reads from its own subscription.
	for l.member(b) == memberShared {
		l.batch(move("p1", int64(l.seq)), hit("boss"), move("p4", int64(l.seq)))
		read(a, c, x, y)
	}
	require.Len(t, b.detached, 1, "woken to read alone")
	// c stops reading too, filled up with critical frames: the tick's
	// delta detaches it, with the stream's pending bulk changes.
	require.Equal(t, memberShared, l.member(c))
	for len(c.ob.frames) < 2 {
		l.batch(hit("boss"))
		read(a, x, y)
	}
	l.batch(move("p5", 6), move("p1", 7))
	h.tick()
	require.Equal(t, memberDetached, l.member(c))
	read(a, x, y)

	// More events while b and c catch up by themselves (their pushers),
	// taking their frames; then they attach and join again.
	l.batch(hit("boss"), move("p5", 8))
	read(a, x, y)
	for _, z := range []*playConn{b, c} {
		for !l.catchUp(z) {
			read(z)
		}
		read(z)
		attach(z)
	}
	l.batch(move("p2", 9), hit("boss"), rejectedMove())
	read(a, x, y)
	h.tick()
	for _, z := range conns {
		require.Equal(t, memberShared, l.member(z))
	}
	read(a, b, c, x, y)
	l.batch(move("p6", 10), hit("boss"))
	read(a, b, c, x, y)
	h.tick()
	read(a, b, c, x, y)
	for _, z := range []*playConn{a, b, c, x, y} {
		require.Equal(t, memberShared, l.member(z))
		cl[z].check(l, 0)
	}
}

func TestSharedFrameBeginsWhereTheConnectionsPreviousFrameEnded(t *testing.T) {
	hevs := hubEvents(t, critEv(6, "boss"))
	sf := newSharedFrame(5, &outFrame{covered: 6, events: hevs})
	joined, steady := newOutbox(4, codecJSON), newOutbox(4, codecJSON)
	joined.start(2) // its last frame covered 2; 3 and 4 were filtered out
	steady.start(4)
	for _, o := range []*outbox{joined, steady} {
		o.push(sf.item, 6)
	}
	got := frames(t, joined)
	require.Len(t, got, 1)
	require.Equal(t, []any{float64(3), float64(6)}, []any{got[0]["from"], got[0]["seq"]})
	a := mustTake(t, steady)
	require.Len(t, a, 1)
	b, err := sf.encode(codecJSON, 5)
	require.NoError(t, err)
	require.Same(t, &a[0][0], &b[0], "the frame's own bytes, made once")
	require.Contains(t, string(b), `"from":5,"seq":6`)
	other, err := sf.encode(playCodec(len(sf.enc)), 5) // a codec without a cache slot
	require.NoError(t, err)
	require.Equal(t, b, other)
	require.NotSame(t, &b[0], &other[0])
	require.Equal(t, uint64(6), steady.coveredSeq())
	require.Equal(t, uint64(6), joined.coveredSeq())
}

func TestHubSharedMemberDeltasBehindLeavesAndCoalescesAlone(t *testing.T) {
	h, conns := fanoutHub(t, 2, codecJSON, 64)
	fast, slow := conns[0], conns[1]
	l := &fanLog{t: t, h: h}
	cl := map[*playConn]*fanClient{fast: newFanClient(t, 0), slow: newFanClient(t, 0)}
	h.tick()
	require.Equal(t, memberShared, l.member(slow))

	// slow's writer takes nothing for sharedLagDeltas ticks: as many
	// deltas queue up.
	for i := range sharedLagDeltas {
		l.batch(move("p1", int64(i)), hit("boss"), move("p2", int64(i)))
		h.tick()
		cl[fast].read(fast)
		require.Equal(t, memberShared, l.member(slow))
	}
	// Before a third, it leaves with the pending changes, and coalesces
	// them by itself from then on.
	l.batch(move("p1", 10), move("p3", 10))
	h.tick()
	require.Equal(t, memberDetached, l.member(slow))
	require.Len(t, slow.detached, 1)
	l.batch(move("p1", 11), move("p3", 11))
	last := float64(l.seq)
	require.True(t, l.catchUp(slow))
	h.tick()
	cl[fast].read(fast)
	got := frames(t, slow.ob)
	require.Len(t, got, 2*sharedLagDeltas+1, "its queued frames, then one delta of its own")
	require.Equal(t, map[string]any{
		"p1": map[string]any{"fields": map[string]any{"x": map[string]any{"value": float64(11), "version": last - 1}}},
		"p3": map[string]any{"fields": map[string]any{"x": map[string]any{"value": float64(11), "version": last}}},
	}, got[len(got)-1]["entities"])
	require.Equal(t, memberShared, l.member(fast), "the other stays")

	// slow reads on, attaches and joins the stream again.
	cl[slow].readFrames(got)
	ok, err := h.attach(slow)
	require.NoError(t, err)
	require.True(t, ok)
	l.batch(hit("boss"), move("p2", 12))
	h.tick()
	require.Equal(t, memberShared, l.member(slow))
	l.batch(move("p2", 13), hit("boss"))
	h.tick()
	cl[fast].read(fast)
	cl[slow].read(slow)
	cl[fast].check(l, 0)
	cl[slow].check(l, 0)
}
