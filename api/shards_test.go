package api

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// shardFake is a backend with a shard map.
type shardFake struct {
	*apitest.Fake
	m wire.ShardMap
}

func (f shardFake) ShardMap() wire.ShardMap { return f.m }

func TestShardsRouteShowsTheShardMapToAdmins(t *testing.T) {
	t.Parallel()
	want := wire.ShardMap{Meta: true, Nodes: []wire.ShardNode{{ID: "n1", Raft: "h:1", HTTP: "h:2"}},
		Shards: []wire.ShardInfo{{ID: 1, Voters: []string{"n1"}, Leader: "n1", Worlds: 1}}, Worlds: map[string]uint64{"w": 1}}
	e := newEnvFor(t, shardFake{Fake: apitest.NewFake(), m: want}, withSecret)
	code, _, b := e.Do("GET", wire.PathShards, "", edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%s", b)
	var got wire.ShardMap
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, want, got)
	e.RequireError(401, edge.CodeUnauthorized, "GET", wire.PathShards, "")

	single := newEnv(t, apitest.NewFake())
	single.RequireError(422, fsm.CodeNotSupported, "GET", wire.PathShards, "")
}

// editFake is a backend whose shard map can be changed.
type editFake struct {
	shardFake
	created []wire.ShardCreate
	removed []uint64
	gone    []string
	err     error
}

// RemoveMapNode refuses as the meta group does (cmd/gsd's editError
// maps its refusals): a voter is a conflict naming its shards, a node
// the map does not hold not_found.
func (f *editFake) RemoveMapNode(_ context.Context, id string) error {
	if f.err != nil {
		return f.err
	}
	var voter []uint64
	for _, s := range f.m.Shards {
		if slices.Contains(s.Voters, id) {
			voter = append(voter, s.ID)
		}
	}
	i := slices.IndexFunc(f.m.Nodes, func(n wire.ShardNode) bool { return n.ID == id })
	switch {
	case i < 0:
		return fmt.Errorf("%w: no node %q", fsm.ErrNotFound, id)
	case len(voter) > 0:
		return fmt.Errorf("%w: node %q is a voter of shards %v", edge.ErrConflict, id, voter)
	}
	f.m.Nodes = slices.Delete(f.m.Nodes, i, i+1)
	f.gone = append(f.gone, id)
	return nil
}

// AddMapNode refuses a bad address as the meta group does (malformed).
func (f *editFake) AddMapNode(_ context.Context, n wire.ShardNode) error {
	if f.err != nil {
		return f.err
	}
	if !strings.Contains(n.Raft, ":") {
		return fmt.Errorf("%w: raft address %q", fsm.ErrMalformed, n.Raft)
	}
	f.m.Nodes = append(f.m.Nodes, n)
	return nil
}

func (f *editFake) CreateShard(_ context.Context, c wire.ShardCreate) (wire.ShardInfo, error) {
	f.created = append(f.created, c)
	return wire.ShardInfo{ID: c.ID, Voters: []string{"n1", "n2"}}, f.err
}

func (f *editFake) RemoveShard(_ context.Context, id uint64) error {
	f.removed = append(f.removed, id)
	return f.err
}

func (f *editFake) PlaceWorld(_ context.Context, p wire.WorldPlacement) (wire.WorldPlacement, error) {
	if p.Shard == nil {
		s := uint64(3)
		p.Shard = &s
	}
	return p, f.err
}

func TestShardWriteRoutesChangeTheMetaMap(t *testing.T) {
	t.Parallel()
	f := &editFake{shardFake: shardFake{Fake: apitest.NewFake()}}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}

	code, _, b := e.Do("POST", wire.PathShards, `{"id":4,"replicas":2}`, admin...)
	require.Equal(t, 201, code, "%s", b)
	require.JSONEq(t, `{"id":4,"voters":["n1","n2"],"worlds":0,"players":0,"events_per_sec":0}`, string(b))
	require.Equal(t, []wire.ShardCreate{{ID: 4, Replicas: 2}}, f.created)
	code, _, b = e.Do("DELETE", wire.PathShards+"/4", "", admin...)
	require.Equal(t, 204, code, "%s", b)
	require.Equal(t, []uint64{4}, f.removed)
	code, _, b = e.Do("POST", wire.PathShardWorlds, `{"world":"arena"}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","shard":3}`, string(b))
	code, _, b = e.Do("POST", wire.PathShardWorlds, `{"world":"arena","shard":0}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","shard":0}`, string(b), "shard 0 is a shard")
	code, _, b = e.Do("POST", wire.PathShardWorlds, `{"world":"arena","shard":2,"expect":0}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","shard":2,"expect":0}`, string(b), "the condition reaches the backend")
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardWorlds, `{"world":"arena","expect":1}`, admin...)

	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShards, `{"id":4,"colour":1}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "DELETE", wire.PathShards+"/x", "", admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardWorlds, `{"world":""}`, admin...)
	for _, r := range [][2]string{{"POST", wire.PathShards}, {"DELETE", wire.PathShards + "/4"}, {"POST", wire.PathShardWorlds}} {
		e.RequireError(401, edge.CodeUnauthorized, r[0], r[1], `{}`)
	}
	f.err = fmt.Errorf("create: %w", edge.ErrConflict)
	e.RequireError(409, edge.CodeConflict, "POST", wire.PathShards, `{"id":4,"replicas":2}`, admin...)
	f.err = fmt.Errorf("remove: %w", fsm.ErrNotFound)
	e.RequireError(404, fsm.CodeNotFound, "DELETE", wire.PathShards+"/9", "", admin...)
	f.err = fmt.Errorf("pin: %w", store.ErrVersionGate)
	e.RequireError(409, edge.CodeVersionGate, "POST", wire.PathShardWorlds, `{"world":"arena","shard":2,"expect":2}`, admin...)
	f.err = fmt.Errorf("place: %w", store.ErrNotLeader)
	e.RequireError(503, edge.CodeNotLeader, "POST", wire.PathShardWorlds, `{"world":"arena"}`, admin...)

	static := newEnvFor(t, shardFake{Fake: apitest.NewFake()})
	static.RequireError(422, fsm.CodeNotSupported, "POST", wire.PathShards, `{"id":1,"replicas":1}`)
	static.RequireError(422, fsm.CodeNotSupported, "DELETE", wire.PathShards+"/1", "")
	static.RequireError(422, fsm.CodeNotSupported, "POST", wire.PathShardWorlds, `{"world":"w"}`)
}

func TestTheRemoveNodeRouteTakesAnEvacuatedNodeOutOfTheMetaMap(t *testing.T) {
	t.Parallel()
	f := &editFake{shardFake: shardFake{Fake: apitest.NewFake(), m: wire.ShardMap{Meta: true,
		Nodes:  []wire.ShardNode{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}},
		Shards: []wire.ShardInfo{{ID: 1, Voters: []string{"n1", "n2"}}, {ID: 4, Voters: []string{"n1", "n3"}}}}}}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}

	code, _, b := e.Do("DELETE", wire.PathShardNode("n1"), "", admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), `"code":"conflict"`)
	require.Contains(t, string(b), `is a voter of shards [1 4]`, "the refusal names the shards left to evacuate")
	e.RequireError(404, fsm.CodeNotFound, "DELETE", wire.PathShardNode("n9"), "", admin...)
	e.RequireError(401, edge.CodeUnauthorized, "DELETE", wire.PathShardNode("n1"), "")
	e.RequireError(400, fsm.CodeMalformed, "DELETE", wire.PathShardNode(strings.Repeat("n", fsm.MaxNameLen+1)), "", admin...)

	// Evacuated: n1 votes in no shard, so the map lets it go.
	f.m.Shards = []wire.ShardInfo{{ID: 1, Voters: []string{"n2", "n3"}}, {ID: 4, Voters: []string{"n2", "n3"}}}
	code, _, b = e.Do("DELETE", wire.PathShardNode("n1"), "", admin...)
	require.Equal(t, 204, code, "%s", b)
	require.Equal(t, []string{"n1"}, f.gone)
	e.RequireError(404, fsm.CodeNotFound, "DELETE", wire.PathShardNode("n1"), "", admin...)

	f.err = fmt.Errorf("remove: %w", store.ErrNotLeader)
	e.RequireError(503, edge.CodeNotLeader, "DELETE", wire.PathShardNode("n2"), "", admin...)
	static := newEnvFor(t, shardFake{Fake: apitest.NewFake()})
	static.RequireError(422, fsm.CodeNotSupported, "DELETE", wire.PathShardNode("n1"), "")
}

// A node joins the meta map through the add route (id, addresses,
// region), which an admin only may call.
func TestTheAddNodeRouteAddsANodeToTheMetaMap(t *testing.T) {
	t.Parallel()
	f := &editFake{shardFake: shardFake{Fake: apitest.NewFake(), m: wire.ShardMap{Meta: true}}}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}

	code, _, b := e.Do("POST", wire.PathShardNodes, `{"id":"n4","raft":"h:7000","http":"h:8080","region":"eu"}`, admin...)
	require.Equal(t, 204, code, "%s", b)
	require.Equal(t, []wire.ShardNode{{ID: "n4", Raft: "h:7000", HTTP: "h:8080", Region: "eu"}}, f.m.Nodes)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardNodes, `{"id":"n5","raft":"nope","http":"h:8080"}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardNodes, `{"id":"","raft":"h:1","http":"h:2"}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardNodes, `{"id":"n5","colour":1}`, admin...)
	e.RequireError(401, edge.CodeUnauthorized, "POST", wire.PathShardNodes, `{"id":"n5","raft":"h:1","http":"h:2"}`)
	f.err = fmt.Errorf("add: %w", store.ErrNotLeader)
	e.RequireError(503, edge.CodeNotLeader, "POST", wire.PathShardNodes, `{"id":"n5","raft":"h:1","http":"h:2"}`, admin...)
	static := newEnvFor(t, shardFake{Fake: apitest.NewFake()})
	static.RequireError(422, fsm.CodeNotSupported, "POST", wire.PathShardNodes, `{"id":"n5","raft":"h:1","http":"h:2"}`)
}
