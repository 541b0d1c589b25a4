package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/shard/meta/plan"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// fakeMover serves the shard map and the move route over it: a move
// relists the world on its target, except for the world named fail,
// which is refused.
type fakeMover struct {
	mu        sync.Mutex
	m         wire.ShardMap
	fail      string
	fenced    string // a world an earlier move fenced towards shard 7
	unmovable string // a world whose move is not_supported
	moves     []string
	// unlisted are worlds the nodes hold that the map does not list
	// (they hash over shards 1, 2 and 3); noList fails their listing.
	unlisted []string
	noList   bool
	pins     []string
	// meanwhile changes the map before its second read, atPin before a
	// pin is judged.
	meanwhile func(*wire.ShardMap)
	atPin     func(*wire.ShardMap)
	fetches   int
	// gate answers a conditional pin version_gate (a meta member on an
	// older gsd), old malformed (the node asked is on one).
	gate, old bool
	// pinNotFound answers every pin not_found.
	pinNotFound bool
	tries       []string // every pin asked for, conditional ones with "?"
}

func (f *fakeMover) serve(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet && r.URL.Path == wire.PathShards {
			if f.fetches++; f.fetches == 2 && f.meanwhile != nil {
				f.meanwhile(&f.m)
			}
			_ = json.NewEncoder(w).Encode(f.m)
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/v1/worlds" {
			if f.noList {
				w.WriteHeader(503)
				_, _ = w.Write([]byte(`{"code":"unavailable","error":"shutting down"}`))
				return
			}
			out := wire.Worlds{}
			for _, id := range slices.Sorted(maps.Keys(f.m.Worlds)) {
				out.Worlds = append(out.Worlds, wire.World{ID: id})
			}
			for _, id := range f.unlisted {
				if _, ok := f.m.Worlds[id]; !ok {
					out.Worlds = append(out.Worlds, wire.World{ID: id})
				}
			}
			_ = json.NewEncoder(w).Encode(out)
			return
		}
		if r.Method == http.MethodPost && r.URL.Path == wire.PathShardWorlds {
			var p wire.WorldPlacement
			if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Shard == nil {
				w.WriteHeader(400)
				return
			}
			if f.atPin != nil {
				f.atPin(&f.m)
			}
			if f.pinNotFound {
				w.WriteHeader(404)
				_, _ = w.Write([]byte(`{"code":"not_found","error":"gsd/meta: no shard 2"}`))
				return
			}
			if p.Expect != nil {
				f.tries = append(f.tries, p.World+"→"+itoa(*p.Shard)+"?"+itoa(*p.Expect))
				at, listed := f.m.Worlds[p.World]
				if !listed {
					at, _ = plan.Hashed(p.World, []uint64{1, 2, 3})
				}
				switch {
				case f.old:
					w.WriteHeader(400)
					_, _ = w.Write([]byte(`{"code":"malformed","error":"json: unknown field \"expect\""}`))
					return
				case f.gate:
					w.WriteHeader(409)
					_, _ = w.Write([]byte(`{"code":"version_gate","error":"member n3 reads 1"}`))
					return
				case at != *p.Expect:
					w.WriteHeader(409)
					_, _ = w.Write([]byte(`{"code":"conflict","error":"gsd/meta: the world is not on the expected shard"}`))
					return
				}
			} else {
				f.tries = append(f.tries, p.World+"→"+itoa(*p.Shard))
			}
			f.pins = append(f.pins, p.World+"→"+itoa(*p.Shard))
			f.m.Worlds[p.World] = *p.Shard
			_ = json.NewEncoder(w).Encode(p)
			return
		}
		world, ok := strings.CutPrefix(r.URL.Path, "/v1/cluster/worlds/")
		world, ok2 := strings.CutSuffix(world, "/move")
		if r.Method != http.MethodPost || !ok || !ok2 {
			http.NotFound(w, r)
			return
		}
		var body wire.WorldMove
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(400)
			return
		}
		f.moves = append(f.moves, world+"→"+itoa(body.To))
		if world == f.unmovable {
			w.WriteHeader(422)
			_, _ = w.Write([]byte(`{"code":"not_supported","error":"world salts its audit leaves: moving it is not built"}`))
			return
		}
		if world == f.fail {
			w.WriteHeader(409)
			_, _ = w.Write([]byte(`{"code":"conflict","error":"world fenced towards another shard"}`))
			return
		}
		if world == f.fenced {
			w.WriteHeader(421)
			_, _ = w.Write([]byte(`{"code":"world_moved","error":"gsd/fsm: world moved: ` + world + ` moved to shard 7 at seq 40"}`))
			return
		}
		from, listed := f.m.Worlds[world]
		if !listed {
			from, _ = plan.Hashed(world, []uint64{1, 2, 3})
		}
		for i := range f.m.Shards {
			switch f.m.Shards[i].ID {
			case from:
				f.m.Shards[i].Worlds--
			case body.To:
				f.m.Shards[i].Worlds++
			}
		}
		f.m.Worlds[world] = body.To
		_ = json.NewEncoder(w).Encode(wire.WorldMoved{World: world, From: from, To: body.To, Seq: 7})
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func unevenMap() wire.ShardMap {
	return wire.ShardMap{Meta: true,
		Shards: []wire.ShardInfo{{ID: 1, Worlds: 4, Players: 8}, {ID: 2}, {ID: 3, Worlds: 1}},
		Worlds: map[string]uint64{"a": 1, "b": 1, "c": 1, "d": 1, "e": 3}}
}

func TestPlacementRebalanceDryRunMovesNothing(t *testing.T) {
	f := &fakeMover{m: unevenMap()}
	addr := f.serve(t)
	out := mustRun(t, "--addr", addr, "placement", "rebalance", "--dry-run")
	require.Contains(t, out, "1/2: would move world a from shard 1 to shard 2 (then shard 1: 3 worlds, 6 players, 0 events/s; then shard 2: 1 worlds, 2 players, 0 events/s)")
	require.Contains(t, out, "2/2: would move world b from shard 1 to shard 3")
	out = mustRun(t, "--addr", addr, "-o", "json", "placement", "rebalance", "--dry-run", "--max-moves", "1")
	var got planOut
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, planOut{Moves: []planStep{{World: "a", From: 1, To: 2}}}, got)
	require.Empty(t, f.moves)
}

func TestPlacementRebalanceMovesOneWorldAtATime(t *testing.T) {
	f := &fakeMover{m: unevenMap()}
	addr := f.serve(t)
	out := mustRun(t, "--addr", addr, "placement", "rebalance")
	require.Contains(t, out, "1/2: world a moved from shard 1 to shard 2 after seq 7")
	require.Contains(t, out, "2/2: world b moved from shard 1 to shard 3 after seq 7")
	require.Equal(t, []string{"a→2", "b→3"}, f.moves)
	require.Contains(t, mustRun(t, "--addr", addr, "placement", "rebalance"), "nothing to move", "balanced now")
	require.Len(t, f.moves, 2)

	g := &fakeMover{m: unevenMap()}
	var done []wire.WorldMoved
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "--addr", g.serve(t), "-o", "json", "placement", "rebalance", "--max-moves", "1")), &done))
	require.Equal(t, []wire.WorldMoved{{World: "a", From: 1, To: 2, Seq: 7}}, done)
}

func TestPlacementRebalanceStopsAtAFailedMove(t *testing.T) {
	f := &fakeMover{m: unevenMap(), fail: "a"}
	addr := f.serve(t)
	code, _, errOut := ctl(t, "", "--addr", addr, "placement", "rebalance")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "move 1/2, world a from shard 1 to shard 2")
	require.Contains(t, errOut, "fenced towards another shard")
	require.Contains(t, errOut, "gsdctl world move a --to 2")
	require.Equal(t, []string{"a→2"}, f.moves, "nothing after the failed move")
}

// A world that cannot move (not_supported: a salted one) is left where
// it is, said on stderr, and the others move.
func TestPlacementRebalanceLeavesAWorldThatCannotMoveAndGoesOn(t *testing.T) {
	f := &fakeMover{m: unevenMap(), unmovable: "a"}
	addr := f.serve(t)
	code, out, errOut := ctl(t, "", "--addr", addr, "placement", "rebalance")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "1/2: world a left on shard 1")
	require.Contains(t, out, "2/2: world b moved from shard 1 to shard 3 after seq 7")
	require.Equal(t, []string{"a→2", "b→3"}, f.moves)
}

func TestPlacementRebalanceNamesTheShardAnEarlierMoveFencedTowards(t *testing.T) {
	f := &fakeMover{m: unevenMap(), fenced: "a"}
	addr := f.serve(t)
	code, _, errOut := ctl(t, "", "--addr", addr, "--timeout", "1s", "placement", "rebalance")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "move 1/2, world a from shard 1 to shard 2")
	require.Contains(t, errOut, "an earlier move fenced world a towards shard 7: finish it with `gsdctl world move a --to 7`")
	require.NotContains(t, f.moves, "b→3", "nothing after the failed move")
}

func TestShardDrainEmptiesTheShard(t *testing.T) {
	f := &fakeMover{m: unevenMap()}
	addr := f.serve(t)
	out := mustRun(t, "--addr", addr, "shard", "drain", "1")
	require.Contains(t, out, "4/4: world d moved from shard 1")
	require.Contains(t, out, "shard 1 lists no worlds: gsdctl shard remove 1 removes it")
	for w, g := range f.m.Worlds {
		require.NotEqual(t, uint64(1), g, "world %s", w)
	}
	require.Len(t, f.moves, 4)
}

// hashingTo returns a world name that hashes to shard g of 1, 2 and 3.
func hashingTo(t *testing.T, g uint64) string {
	for i := range 1000 {
		w := fmt.Sprintf("u%d", i)
		if h, _ := plan.Hashed(w, []uint64{1, 2, 3}); h == g {
			return w
		}
	}
	t.Fatalf("no name hashes to %d", g)
	return ""
}

func TestShardDrainMovesTheUnlistedWorldsOnItAndPinsTheOthers(t *testing.T) {
	on1, on2 := hashingTo(t, 1), hashingTo(t, 2)
	f := &fakeMover{m: unevenMap(), unlisted: []string{on1, on2, "gsd.sinks"}}
	addr := f.serve(t)
	f.m.Nodes = []wire.ShardNode{{ID: "n1", HTTP: addr}, {ID: "n2", HTTP: addr}}

	out := mustRun(t, "--addr", addr, "shard", "drain", "1", "--dry-run")
	require.Contains(t, out, "would list world "+on2+" on shard 2, where its name hashes now")
	require.Contains(t, out, "would move world "+on1+" from shard 1")
	require.Empty(t, f.pins)

	out = mustRun(t, "--addr", addr, "shard", "drain", "1")
	require.Contains(t, out, "world "+on2+": listed on shard 2, where its name hashes")
	require.Contains(t, out, "5/5: world ")
	require.Equal(t, []string{on2 + "→2"}, f.pins, "gsd's own records are left alone")
	require.Equal(t, []string{on2 + "→2?2"}, f.tries, "pinned only while it is on shard 2")
	require.NotContains(t, strings.Join(f.moves, " "), "gsd.sinks")
	require.Contains(t, f.moves, on1+"→"+itoa(f.m.Worlds[on1]), "the unlisted world on shard 1 moved")
	for w, g := range f.m.Worlds {
		require.NotEqual(t, uint64(1), g, "world %s", w)
	}

	// A world listed between the plan and its pin stays where it is.
	g := &fakeMover{m: unevenMap(), unlisted: []string{on2}, meanwhile: func(m *wire.ShardMap) { m.Worlds[on2] = 3 }}
	gaddr := g.serve(t)
	g.m.Nodes = []wire.ShardNode{{ID: "n1", HTTP: gaddr}}
	mustRun(t, "--addr", gaddr, "shard", "drain", "1")
	require.Empty(t, g.pins)
	require.Equal(t, uint64(3), g.m.Worlds[on2])

	// A move published between that read and the pin: the pin, which
	// expects the world where its name hashes, is refused and reported,
	// the move stays, and the drain goes on.
	h := &fakeMover{m: unevenMap(), unlisted: []string{on2}, atPin: func(m *wire.ShardMap) { m.Worlds[on2] = 3 }}
	haddr := h.serve(t)
	h.m.Nodes = []wire.ShardNode{{ID: "n1", HTTP: haddr}}
	out = mustRun(t, "--addr", haddr, "shard", "drain", "1")
	require.Equal(t, []string{on2 + "→2?2"}, h.tries)
	require.Empty(t, h.pins)
	require.Equal(t, uint64(3), h.m.Worlds[on2], "the concurrent move stays")
	require.Contains(t, out, "world "+on2+": not listed on shard 2: it is no longer there")
	require.Contains(t, out, "4/4: world ", "the drain went on")

	broken := &fakeMover{m: unevenMap(), noList: true}
	baddr := broken.serve(t)
	broken.m.Nodes = []wire.ShardNode{{ID: "n1", HTTP: baddr}}
	code, _, errOut := ctl(t, "", "--addr", baddr, "--timeout", "1s", "shard", "drain", "1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "list the worlds of node n1")
	require.Empty(t, broken.moves)
}

func TestShardDrainRefusesTheLastShardAndStaticMaps(t *testing.T) {
	f := &fakeMover{m: wire.ShardMap{Meta: true, Shards: []wire.ShardInfo{{ID: 1, Worlds: 1}}, Worlds: map[string]uint64{"a": 1}}}
	addr := f.serve(t)
	code, _, errOut := ctl(t, "", "--addr", addr, "shard", "drain", "1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "the last shard")
	code, _, errOut = ctl(t, "", "--addr", addr, "shard", "drain", "9")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "no shard 9")

	static := &fakeMover{m: unevenMap()}
	static.m.Meta = false
	code, _, errOut = ctl(t, "", "--addr", static.serve(t), "placement", "rebalance")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "needs gsd --meta")

	for _, args := range [][]string{{"shard", "drain"}, {"shard", "drain", "x"}, {"placement", "rebalance", "--max-moves", "-1"}} {
		code, _, errOut := ctl(t, "", append([]string{"--addr", addr}, args...)...)
		require.Equal(t, 1, code, "%v", args)
		require.Contains(t, errOut, "gsdctl: ", "%v", args)
	}
	require.Empty(t, f.moves)
	require.Empty(t, static.moves)
}

// A cluster that cannot take a conditional pin yet (a meta member, or the
// node asked, on an older gsd) gets the unconditional one, with a
// warning; any other failed pin stops the drain before it moves anything.
func TestShardDrainPinsUnconditionallyWhenTheClusterCannotYet(t *testing.T) {
	on2 := hashingTo(t, 2)
	for name, f := range map[string]*fakeMover{
		"gate": {m: unevenMap(), unlisted: []string{on2}, gate: true},
		"old":  {m: unevenMap(), unlisted: []string{on2}, old: true},
	} {
		addr := f.serve(t)
		f.m.Nodes = []wire.ShardNode{{ID: "n1", HTTP: addr}}
		code, out, errOut := ctl(t, "", "--addr", addr, "shard", "drain", "1")
		require.Equal(t, 0, code, "%s: %s", name, errOut)
		require.Equal(t, []string{on2 + "→2?2", on2 + "→2"}, f.tries, name)
		require.Equal(t, []string{on2 + "→2"}, f.pins, name)
		require.Contains(t, errOut, "pinning it unconditionally: run no other moves during the drain", name)
		require.Contains(t, out, "world "+on2+": listed on shard 2", name)
	}

	bad := &fakeMover{m: unevenMap(), unlisted: []string{on2}, pinNotFound: true}
	addr := bad.serve(t)
	bad.m.Nodes = []wire.ShardNode{{ID: "n1", HTTP: addr}}
	code, _, errOut := ctl(t, "", "--addr", addr, "--timeout", "1s", "shard", "drain", "1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "list world "+on2+" on shard 2, where its name hashes")
	require.Contains(t, errOut, "no shard 2")
	require.Empty(t, bad.pins)
	require.Empty(t, bad.moves, "a failed pin stops the drain before its moves")
}
