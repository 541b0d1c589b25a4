package play

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// cellsHub is a grid hub (cell 10, radius r, team field "team") without a
// store over state, with attached members for players, their whole
// enters taken.
func cellsHub(t require.TestingT, state fakeEntities, r int, players ...string) (*hub, map[string]*playConn) {
	return cellsHubOver(t, state.lookup, slices.Sorted(maps.Keys(state)), r, players...)
}

// cellsHubOver is cellsHub over the entities ids as lookup has them.
func cellsHubOver(t require.TestingT, lookup func(string) (fsm.EntityView, error), ids []string, r int, players ...string) (*hub, map[string]*playConn) {
	pm, err := newPlayMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	s := bareServer(pm)
	s.cfg = DefaultConfig()
	ic := InterestConfig{Cell: 10, X: "x", Y: "y", Radius: r, Team: "team"}
	h := s.newHubWith("w", 0, ic)
	h.idx = newInterestIndex(ic, lookup)
	var ents []fsm.EntityView
	for _, id := range ids {
		v, _ := lookup(id)
		ents = append(ents, v)
	}
	h.idx.seedAll(ents)
	conns := map[string]*playConn{}
	for _, p := range players {
		c := &playConn{s: s, world: "w", player: p, ob: newOutbox(1<<20, codecJSON), detached: make(chan struct{}, 1)}
		c.ob.start(0)
		h.mu.Lock()
		h.members[c] = memberDetached
		h.mu.Unlock()
		ok, err := h.attach(c)
		require.NoError(t, err)
		require.True(t, ok)
		_, err = c.ob.take()
		require.NoError(t, err)
		conns[p] = c
	}
	return h, conns
}

// groupOf returns c's cell group (nil: none).
func (h *hub) cellOf(c *playConn) *cellGroup {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.groupOf[c]
}

// Members of one cell with one team get the same frames, byte for byte,
// made once; a member of another team in the same cell gets its own
// group's, without what only the first team may see (a far entity of that
// team); a view is a hub of its own (views.go), so members of different
// views never share a stream.
func TestCellMembersShareFramesByteForByteAndOnlyWithTheirTeam(t *testing.T) {
	state := fakeEntities{
		"ann":  {"x": fsm.Int(5), "y": fsm.Int(5), "team": fsm.String("red")},
		"bea":  {"x": fsm.Int(6), "y": fsm.Int(7), "team": fsm.String("red")},
		"cid":  {"x": fsm.Int(7), "y": fsm.Int(6), "team": fsm.String("blue")},
		"dan":  {"x": fsm.Int(95), "y": fsm.Int(95), "team": fsm.String("red")},
		"near": {"x": fsm.Int(15), "y": fsm.Int(5)},
		"flag": {"x": fsm.Int(95), "y": fsm.Int(5), "team": fsm.String("red")},
		"base": {"x": fsm.Int(95), "y": fsm.Int(55), "team": fsm.String("blue")},
	}
	for _, codec := range []playCodec{codecJSON, codecMsgpack} {
		h, conns := cellsHub(t, state, 1, "ann", "bea", "cid", "dan")
		for _, c := range conns {
			c.ob.codec = codec
		}
		l := &fanLog{t: t, h: h}
		h.tick()
		for _, c := range conns {
			require.Equal(t, memberCell, l.member(c))
		}
		require.Same(t, h.cellOf(conns["ann"]), h.cellOf(conns["bea"]))
		require.NotSame(t, h.cellOf(conns["ann"]), h.cellOf(conns["cid"]))

		l.batch(move("near", 16), hit("flag"), hit("base"), move("near", 17))
		l.batch(hit("near"), move("flag", 94))
		h.tick()
		ann, bea, cid := mustTake(t, conns["ann"].ob), mustTake(t, conns["bea"].ob), mustTake(t, conns["cid"].ob)
		require.Len(t, ann, 3, "two events frames and the tick's delta")
		require.Equal(t, ann, bea, "byte for byte")
		for i := range ann {
			require.Same(t, &ann[i][0], &bea[i][0], "encoded once")
		}
		require.Len(t, cid, 3)
		for _, b := range cid {
			require.NotContains(t, string(b), "flag", "the red team's far flag")
		}
		if codec == codecJSON {
			require.Contains(t, string(ann[0]), `"flag"`)
			require.Contains(t, string(cid[0]), `"base"`)
			require.Contains(t, string(ann[2]), `"near"`)
			require.Contains(t, string(ann[2]), `"flag"`)
			require.Contains(t, string(cid[2]), `"near"`)
		}

		// What comes into and leaves the cell's area: one message for all.
		l.batch(&fsm.Event{Player: "gm", Priority: fsm.PriorityCritical, Changes: []fsm.Change{
			{Entity: "near", Field: "x", Op: fsm.OpSet, Value: fsm.Int(55)},
			{Entity: "base", Field: "x", Op: fsm.OpSet, Value: fsm.Int(15)},
			{Entity: "base", Field: "y", Op: fsm.OpSet, Value: fsm.Int(5)}}})
		ann, bea = mustTake(t, conns["ann"].ob), mustTake(t, conns["bea"].ob)
		require.Len(t, ann, 3, "the events frame, the leave and the enter")
		if codec == codecJSON {
			require.Contains(t, string(ann[1]), `"leave"`)
			require.Contains(t, string(ann[2]), `"enter"`)
		}
		require.Equal(t, ann, bea, "byte for byte")
		for i := range ann {
			require.Same(t, &ann[i][0], &bea[i][0], "encoded once")
		}
	}
}

// A member whose position moved over filtered events only before it
// joined its cell's stream is told so by the stream's progress frame.
func TestCellMemberJoiningAfterFilteredEventsGetsAProgressFrame(t *testing.T) {
	state := fakeEntities{"ann": {"x": fsm.Int(5), "y": fsm.Int(5)}, "far": {"x": fsm.Int(95), "y": fsm.Int(95)}}
	h, conns := cellsHub(t, state, 1, "ann")
	l := &fanLog{t: t, h: h}
	l.batch(hit("far"))
	h.tick()
	require.Equal(t, memberCell, l.member(conns["ann"]))
	for range progressTicks {
		h.tick()
	}
	fs := frames(t, conns["ann"].ob)
	require.Len(t, fs, 1)
	require.Equal(t, "delta", fs[0]["type"])
	require.Equal(t, float64(1), fs[0]["from"])
	require.Equal(t, float64(1), fs[0]["seq"])
}

// cellClient is what a client makes of a connection's frames: the
// critical events in order, its enter and leave messages in order, and
// the entities' fields from enters, leaves and deltas.
type cellClient struct {
	events []uint64
	areas  []string
	fields map[string]map[string]verValue
	seq    uint64
}

// verValue is a field's value (JSON) at a version.
type verValue struct {
	v   string
	ver uint64
}

// set keeps the newer of what cl has and v, as docs/PROTOCOL.md tells a
// client to.
func (cl *cellClient) set(id, f string, fv map[string]any) {
	if cl.fields[id] == nil {
		cl.fields[id] = map[string]verValue{}
	}
	v, _ := json.Marshal(fv["value"])
	ver := uint64(fv["version"].(float64))
	if old, ok := cl.fields[id][f]; !ok || ver >= old.ver {
		cl.fields[id][f] = verValue{string(v), ver}
	}
}

func (cl *cellClient) read(t require.TestingT, bs [][]byte) {
	for _, b := range bs {
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		switch m["type"] {
		case "events":
			cl.events = append(cl.events, eventSeqs(m)...)
		case "enter":
			ents := m["entities"].(map[string]any)
			cl.areas = append(cl.areas, fmt.Sprintf("enter %v %v", m["whole"], slices.Sorted(maps.Keys(ents))))
			if m["whole"] == true {
				for id := range cl.fields {
					if ents[id] == nil {
						delete(cl.fields, id)
					}
				}
			}
			for id, e := range ents {
				for f, fv := range e.(map[string]any)["fields"].(map[string]any) {
					cl.set(id, f, fv.(map[string]any))
				}
			}
		case "leave":
			cl.areas = append(cl.areas, fmt.Sprintf("leave %v", m["ids"]))
			for _, id := range m["ids"].([]any) {
				delete(cl.fields, id.(string))
			}
		case "delta":
			for id, e := range m["entities"].(map[string]any) {
				for f, fd := range e.(map[string]any)["fields"].(map[string]any) {
					cl.set(id, f, fd.(map[string]any))
				}
			}
		}
		if s, ok := m["seq"].(float64); ok && m["type"] != "enter" && m["type"] != "leave" {
			cl.seq = max(cl.seq, uint64(s))
		}
	}
}

// The cells' shared streams give every member what its own offers would:
// the same critical events in order, the same enters and leaves, the same
// entities' fields and the same covered seq, for random worlds (players
// and entities moving across cells, switching teams, acting on far
// entities, rejected) and random ticks and writer takes.
func TestCellStreamsGiveEachMemberWhatItsOwnOffersWould(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := rapid.IntRange(0, 1).Draw(t, "radius")
		players := []string{"p0", "p1", "p2", "p3", "p4", "p5"}
		names := append(slices.Clone(players), "e0", "e1", "e2")
		teams := []string{"", "red", "blue"}
		coord := rapid.Int64Range(0, 39) // 4×4 cells: most players share one
		state := verEntities{}
		for _, n := range names {
			state.set(n, "x", fsm.Int(coord.Draw(t, n+"x")), 0)
			state.set(n, "y", fsm.Int(coord.Draw(t, n+"y")), 0)
			if team := rapid.SampledFrom(teams).Draw(t, n+"team"); team != "" {
				state.set(n, "team", fsm.String(team), 0)
			}
		}
		shared, sc := cellsHubOver(t, state.lookup, names, r, players...)
		own, oc := cellsHubOver(t, state.lookup, names, r, players...)
		own.ownOffers = true
		clients := map[*playConn]*cellClient{}
		for _, p := range players {
			clients[sc[p]] = &cellClient{fields: map[string]map[string]verValue{}}
			clients[oc[p]] = &cellClient{fields: map[string]map[string]verValue{}}
		}
		var seq uint64
		for b := range rapid.IntRange(1, 25).Draw(t, "batches") {
			var evs []*fsm.Event
			for i := range rapid.IntRange(1, 4).Draw(t, fmt.Sprint("events", b)) {
				seq++
				by := rapid.SampledFrom(players).Draw(t, fmt.Sprint("by", b, i))
				ent := rapid.SampledFrom(names).Draw(t, fmt.Sprint("ent", b, i))
				ev := &fsm.Event{Seq: seq, World: "w", Player: by, Status: fsm.StatusApplied, Priority: fsm.PriorityBulk}
				switch rapid.IntRange(0, 9).Draw(t, fmt.Sprint("kind", b, i)) {
				case 0, 1, 2, 3, 4:
					x, y := coord.Draw(t, fmt.Sprint("x", b, i)), coord.Draw(t, fmt.Sprint("y", b, i))
					ev.Changes = []fsm.Change{{Entity: ent, Field: "x", Op: fsm.OpSet, Value: fsm.Int(x), Version: seq},
						{Entity: ent, Field: "y", Op: fsm.OpSet, Value: fsm.Int(y), Version: seq}}
					state.set(ent, "x", fsm.Int(x), seq)
					state.set(ent, "y", fsm.Int(y), seq)
				case 5, 6:
					ev.Priority = fsm.PriorityCritical
					ev.Changes = []fsm.Change{{Entity: ent, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1), Version: seq}}
					state.set(ent, "hp", fsm.Int(-1), seq)
				case 7:
					team := rapid.SampledFrom(teams[1:]).Draw(t, fmt.Sprint("team", b, i))
					ev.Priority = fsm.PriorityCritical
					ev.Changes = []fsm.Change{{Entity: ent, Field: "team", Op: fsm.OpSet, Value: fsm.String(team), Version: seq}}
					state.set(ent, "team", fsm.String(team), seq)
				default:
					ev.Priority, ev.Status, ev.Reason = fsm.PriorityCritical, fsm.StatusRejected, "nope"
				}
				evs = append(evs, ev)
			}
			for _, h := range []*hub{shared, own} {
				hevs, err := h.s.prepare(evs, true)
				require.NoError(t, err)
				h.fanout(evs, hevs)
			}
			if rapid.Bool().Draw(t, fmt.Sprint("tick", b)) {
				// The writers keep up: one that does not leaves its
				// cell's stream for its own subscription (tested apart).
				for _, p := range players {
					if lagging(sc[p].ob) {
						clients[sc[p]].read(t, mustTakeT(t, sc[p].ob))
						clients[oc[p]].read(t, mustTakeT(t, oc[p].ob))
					}
				}
				shared.tick()
				own.tick()
			}
			for _, p := range players {
				if rapid.Bool().Draw(t, fmt.Sprint("take", b, p)) {
					clients[sc[p]].read(t, mustTakeT(t, sc[p].ob))
					clients[oc[p]].read(t, mustTakeT(t, oc[p].ob))
				}
			}
		}
		// Two rounds: a progress frame waits for an empty queue.
		for range 2 {
			for range progressTicks {
				shared.tick()
				own.tick()
				for _, p := range players {
					if lagging(sc[p].ob) {
						clients[sc[p]].read(t, mustTakeT(t, sc[p].ob))
						clients[oc[p]].read(t, mustTakeT(t, oc[p].ob))
					}
				}
			}
			for _, p := range players {
				clients[sc[p]].read(t, mustTakeT(t, sc[p].ob))
				clients[oc[p]].read(t, mustTakeT(t, oc[p].ob))
			}
		}
		inCells := 0
		for _, p := range players {
			got, want := clients[sc[p]], clients[oc[p]]
			require.Equal(t, want.events, got.events, "player %s's critical events", p)
			require.Equal(t, want.areas, got.areas, "player %s's enters and leaves", p)
			require.Equal(t, want.fields, got.fields, "player %s's fields", p)
			require.Equal(t, want.seq, got.seq, "player %s's covered seq", p)
			require.Equal(t, seq, got.seq, "player %s: all covered", p)
			require.NotEqual(t, memberCell, own.members[oc[p]])
			if shared.members[sc[p]] == memberCell {
				inCells++
			}
		}
		t.Logf("%d of %d in a cell's stream at the end", inCells, len(players))
	})
}

// mustTakeT is o.take without an error, for rapid's T too.
func mustTakeT(t require.TestingT, o *outbox) [][]byte {
	bs, err := o.take()
	require.NoError(t, err)
	return bs
}

// verEntities serves an interest index's lookups with the fields'
// versions.
type verEntities map[string]map[string]fsm.FieldView

func (s verEntities) set(id, field string, v fsm.Value, ver uint64) {
	if s[id] == nil {
		s[id] = map[string]fsm.FieldView{}
	}
	s[id][field] = fsm.FieldView{Name: field, Value: v, Version: ver}
}

func (s verEntities) lookup(id string) (fsm.EntityView, error) {
	fields, ok := s[id]
	if !ok {
		return fsm.EntityView{}, fmt.Errorf("%w: %s", fsm.ErrNotFound, id)
	}
	v := fsm.EntityView{ID: id}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		v.Fields = append(v.Fields, fields[name])
		v.Version = max(v.Version, fields[name].Version)
	}
	return v, nil
}

// lagging reports whether o holds one delta frame short of making its
// connection leave a shared stream.
func lagging(o *outbox) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.deltas >= sharedLagDeltas-1
}

// A member that falls behind its cell's stream, its queue full of the
// stream's events frames or holding sharedLagDeltas of its delta frames,
// goes on alone from the stream's position with a copy of its pending
// delta, catches up by itself and joins again: it gets every critical
// event once and every field's latest value, like the member that kept up.
func TestCellMemberThatFallsBehindGoesOnAloneAndMissesNothing(t *testing.T) {
	for _, full := range []string{"events", "deltas"} {
		t.Run(full, func(t *testing.T) {
			state := fakeEntities{"ann": {"x": fsm.Int(5), "y": fsm.Int(5)}, "bea": {"x": fsm.Int(6), "y": fsm.Int(6)}, "rock": {"x": fsm.Int(7), "y": fsm.Int(7)}}
			h, conns := cellsHub(t, state, 1, "ann", "bea")
			ann, bea := conns["ann"], conns["bea"]
			if full == "events" {
				ann.ob.limit = 2
			}
			l := &fanLog{t: t, h: h}
			h.tick()
			require.Equal(t, memberCell, l.member(ann))
			slow, fast := &cellClient{fields: map[string]map[string]verValue{}}, &cellClient{fields: map[string]map[string]verValue{}}
			for i := range 6 {
				l.batch(move("rock", int64(i)), hit("rock"))
				h.tick()
				fast.read(t, mustTake(t, bea.ob))
				if l.member(ann) == memberDetached {
					break
				}
			}
			require.Equal(t, memberDetached, l.member(ann), "it fell behind")
			require.Equal(t, memberCell, l.member(bea), "the other stays")
			l.batch(move("rock", 9), hit("rock"))
			for l.member(ann) == memberDetached {
				slow.read(t, mustTake(t, ann.ob))
				require.True(t, l.catchUp(ann))
				_, err := h.attach(ann)
				require.NoError(t, err)
			}
			slow.read(t, mustTake(t, ann.ob))
			h.tick()
			require.Equal(t, memberCell, l.member(ann), "it joins again")
			l.batch(move("rock", 10), hit("rock"))
			h.tick()
			slow.read(t, mustTake(t, ann.ob))
			fast.read(t, mustTake(t, bea.ob))
			require.Equal(t, fast.events, slow.events)
			require.Equal(t, fast.fields["rock"]["x"].v, slow.fields["rock"]["x"].v)
			require.Equal(t, "10", slow.fields["rock"]["x"].v)
		})
	}
}
