package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// fakeMeta is a shard map that carries out a voter replacement after the
// map was read twice since it was asked, and records the calls.
type fakeMeta struct {
	mu      sync.Mutex
	m       wire.ShardMap
	pending map[uint64]wire.VoterReplaced
	reads   map[uint64]int
	calls   []string
}

func (f *fakeMeta) serve(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == wire.PathShards:
			for id, p := range f.pending {
				if f.reads[id]++; f.reads[id] >= 2 {
					for i := range f.m.Shards {
						if f.m.Shards[i].ID == id {
							f.m.Shards[i].Voters = p.Voters
						}
					}
					delete(f.pending, id)
				}
			}
			_ = json.NewEncoder(w).Encode(f.m)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/replace"):
			var body wire.VoterReplace
			require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
			f.calls = append(f.calls, r.URL.Path+" "+body.Old)
			require.Empty(t, f.pending, "one shard at a time")
			var id uint64
			for _, s := range f.m.Shards {
				if wire.PathShardReplace(s.ID) == r.URL.Path {
					id = s.ID
				}
			}
			next := slices.DeleteFunc(slices.Clone(f.shard(id).Voters), func(v string) bool { return v == body.Old })
			res := wire.VoterReplaced{Shard: id, Old: body.Old, New: "n5", Voters: append(next, "n5")}
			f.pending[id] = res
			_ = json.NewEncoder(w).Encode(res)
		case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, wire.PathShardNodes+"/"):
			f.calls = append(f.calls, "DELETE "+r.URL.Path)
			f.removeNode(w, strings.TrimPrefix(r.URL.Path, wire.PathShardNodes+"/"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// removeNode answers DELETE /v1/cluster/shards/nodes/{id} as the meta
// group does: conflict naming the shards while node votes in one,
// not_found for a node the map does not hold.
func (f *fakeMeta) removeNode(w http.ResponseWriter, node string) {
	var voter []uint64
	for _, s := range f.m.Shards {
		if slices.Contains(s.Voters, node) {
			voter = append(voter, s.ID)
		}
	}
	i := slices.IndexFunc(f.m.Nodes, func(n wire.ShardNode) bool { return n.ID == node })
	refuse := func(status int, code, msg string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "error": msg})
	}
	switch {
	case i < 0:
		refuse(http.StatusNotFound, "not_found", fmt.Sprintf("gsd/meta: refused: gsd/meta: no such node or shard: no node %q", node))
	case len(voter) > 0:
		refuse(http.StatusConflict, "conflict", fmt.Sprintf("gsd/meta: refused: node %q is a voter of shards %v", node, voter))
	default:
		f.m.Nodes = slices.Delete(f.m.Nodes, i, i+1)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeMeta) shard(id uint64) wire.ShardInfo {
	for _, s := range f.m.Shards {
		if s.ID == id {
			return s
		}
	}
	return wire.ShardInfo{}
}

func newFakeMeta(nodes int, shards ...wire.ShardInfo) *fakeMeta {
	m := wire.ShardMap{Meta: true, Shards: shards}
	for i := 1; i <= nodes; i++ {
		id := "n" + string(rune('0'+i))
		m.Nodes = append(m.Nodes, wire.ShardNode{ID: id, Raft: id + ":1", HTTP: id + ":2"})
	}
	return &fakeMeta{m: m, pending: map[uint64]wire.VoterReplaced{}, reads: map[uint64]int{}}
}

func TestEvacuateReplacesTheNodeInEachShardOneAtATime(t *testing.T) {
	f := newFakeMeta(5,
		wire.ShardInfo{ID: 2, Voters: []string{"n1", "n3", "n4"}},
		wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2", "n3"}},
		wire.ShardInfo{ID: 3, Voters: []string{"n2", "n3", "n4"}})
	addr := f.serve(t)

	out := mustRun(t, "--addr", addr, "node", "evacuate", "n1", "--dry-run")
	require.Contains(t, out, "shard 1: would replace n1 (voters n1,n2,n3)")
	require.Contains(t, out, "shard 2: would replace n1 (voters n1,n3,n4)")
	require.NotContains(t, out, "shard 3")
	require.Empty(t, f.calls, "a dry run changes nothing")

	out = mustRun(t, "--addr", addr, "node", "evacuate", "n1")
	require.Equal(t, []string{"/v1/cluster/shards/1/replace n1", "/v1/cluster/shards/2/replace n1"}, f.calls)
	require.Equal(t, "shard 1: n5 takes n1's seat\nshard 1: done, voters n2,n3,n5\n"+
		"shard 2: n5 takes n1's seat\nshard 2: done, voters n3,n4,n5\n", out)

	out = mustRun(t, "--addr", addr, "node", "evacuate", "n1")
	require.Equal(t, "node n1 votes in no shard: nothing to do\n", out)
}

func TestEvacuateLeavesTheMembershipGroupAlone(t *testing.T) {
	f := newFakeMeta(3, wire.ShardInfo{ID: 0, Voters: []string{"n1", "n2", "n3"}}, wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2"}})
	out := mustRun(t, "--addr", f.serve(t), "node", "evacuate", "n1")
	require.Equal(t, "shard 0: the membership group: not replaced (gsdctl remove n1 takes the node out of it)\n"+
		"shard 1: n5 takes n1's seat\nshard 1: done, voters n2,n5\n", out)
	require.Equal(t, []string{"/v1/cluster/shards/1/replace n1"}, f.calls)
}

func TestEvacuateRefusesWithoutAReplacementOrAMetaMap(t *testing.T) {
	f := newFakeMeta(3, wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2", "n3"}})
	addr := f.serve(t)
	code, _, errOut := ctl(t, "", "--addr", addr, "node", "evacuate", "n1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "shard 1 has 3 voters on 3 nodes: no node can take n1's seat")
	require.Empty(t, f.calls)

	// A node marked down takes no seat; the node evacuated may be one.
	down := newFakeMeta(4, wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2", "n3"}})
	down.m.Nodes[3].Down = true
	code, _, errOut = ctl(t, "", "--addr", down.serve(t), "node", "evacuate", "n1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "shard 1 has 3 voters on 4 nodes (1 marked down): no node can take n1's seat")
	down.m.Nodes[3].Down, down.m.Nodes[0].Down = false, true
	out := mustRun(t, "--addr", down.serve(t), "node", "evacuate", "n1", "--dry-run")
	require.Contains(t, out, "shard 1: would replace n1")

	code, _, errOut = ctl(t, "", "--addr", addr, "node", "evacuate", "n9")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, `no node "n9" in the shard map`)

	static := newFakeMeta(4, wire.ShardInfo{ID: 1, Voters: []string{"n1"}})
	static.m.Meta = false
	code, _, errOut = ctl(t, "", "--addr", static.serve(t), "node", "evacuate", "n1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "static file")
}

func TestEvacuateStopsAtTheFirstShardThatDoesNotFinish(t *testing.T) {
	f := newFakeMeta(4, wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2", "n3"}}, wire.ShardInfo{ID: 2, Voters: []string{"n1", "n2"}})
	f.reads[1] = -1 << 30 // shard 1's replacement never finishes
	addr := f.serve(t)
	code, out, errOut := ctl(t, "", "--addr", addr, "--timeout", "500ms", "node", "evacuate", "n1")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "shard 1: n5 takes n1's seat")
	require.Contains(t, errOut, "shard 1: n1 is still a voter after 500ms")
	require.Contains(t, errOut, "run evacuate again to resume")
	require.Equal(t, []string{"/v1/cluster/shards/1/replace n1"}, f.calls, "shard 2 is not started")
}

func TestEvacuateWithRemoveTakesTheNodeOutOfTheMapAfterItsShards(t *testing.T) {
	f := newFakeMeta(4, wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2", "n3"}}, wire.ShardInfo{ID: 2, Voters: []string{"n2", "n3"}})
	addr := f.serve(t)

	out := mustRun(t, "--addr", addr, "node", "evacuate", "n1", "--remove", "--dry-run")
	require.Equal(t, "shard 1: would replace n1 (voters n1,n2,n3) with a node the meta group picks\n"+
		"would remove n1 from the shard map\n", out)
	require.Empty(t, f.calls, "a dry run changes nothing")

	out = mustRun(t, "--addr", addr, "node", "evacuate", "n1", "--remove")
	require.Equal(t, []string{"/v1/cluster/shards/1/replace n1", "DELETE /v1/cluster/shards/nodes/n1"}, f.calls,
		"the node leaves the map only after its last shard")
	require.Equal(t, "shard 1: n5 takes n1's seat\nshard 1: done, voters n2,n3,n5\n"+
		"node n1 removed from the shard map\n"+
		"the meta group's leader takes it out of the meta group's members (unless gsd runs with --meta-voters 0)\n"+
		"it is still a member of group 0: check gsdctl status (if n1 leads, run gsdctl transfer-leader first), then run gsdctl remove n1\n", out)
	require.False(t, slices.ContainsFunc(f.m.Nodes, func(n wire.ShardNode) bool { return n.ID == "n1" }))

	// A node that votes in no shard goes at once; run again, it is gone.
	out = mustRun(t, "--addr", addr, "node", "evacuate", "n4", "--remove")
	require.Contains(t, out, "node n4 removed from the shard map\n")
	code, _, errOut := ctl(t, "", "--addr", addr, "node", "evacuate", "n4", "--remove")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, `no node "n4" in the shard map`)
}

func TestEvacuateWithRemoveStopsBeforeRemovingWhenAShardFails(t *testing.T) {
	f := newFakeMeta(4, wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2", "n3"}})
	f.reads[1] = -1 << 30 // shard 1's replacement never finishes
	code, _, errOut := ctl(t, "", "--addr", f.serve(t), "--timeout", "500ms", "node", "evacuate", "n1", "--remove")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "run evacuate again to resume")
	require.Equal(t, []string{"/v1/cluster/shards/1/replace n1"}, f.calls, "n1 is not removed while it votes")
}

func TestNodeRemoveIsRefusedWhileTheNodeVotesAndForAnUnknownNode(t *testing.T) {
	f := newFakeMeta(4, wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2"}}, wire.ShardInfo{ID: 3, Voters: []string{"n1", "n3"}})
	addr := f.serve(t)
	code, _, errOut := ctl(t, "", "--addr", addr, "node", "remove", "n1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, `remove n1 from the shard map`)
	require.Contains(t, errOut, `node "n1" is a voter of shards [1 3]`)
	code, _, errOut = ctl(t, "", "--addr", addr, "node", "remove", "n9")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "not_found")

	out := mustRun(t, "--addr", addr, "node", "remove", "n4")
	require.Contains(t, out, "node n4 removed from the shard map\n")
	require.Contains(t, out, "gsdctl remove n4")
	require.Equal(t, []string{"DELETE /v1/cluster/shards/nodes/n1", "DELETE /v1/cluster/shards/nodes/n9", "DELETE /v1/cluster/shards/nodes/n4"}, f.calls)
}

func TestEvacuateWithRemoveKeepsANodeThatShardZeroLists(t *testing.T) {
	f := newFakeMeta(4, wire.ShardInfo{ID: 0, Voters: []string{"n1", "n2", "n3"}}, wire.ShardInfo{ID: 1, Voters: []string{"n1", "n2"}})
	code, out, errOut := ctl(t, "", "--addr", f.serve(t), "node", "evacuate", "n1", "--remove")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "shard 1: done, voters n2,n5", "the other shards are evacuated")
	require.Contains(t, errOut, "not removed from the shard map: it lists n1 as a voter of shard 0, the membership group")
	require.Equal(t, []string{"/v1/cluster/shards/1/replace n1"}, f.calls, "no removal is tried")
}
