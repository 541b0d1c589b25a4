package client

import (
	"context"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestShardsReadsTheShardMap(t *testing.T) {
	want := wire.ShardMap{Meta: true, Nodes: []wire.ShardNode{{ID: "n1", Raft: "h:1", HTTP: "h:2"}},
		Shards: []wire.ShardInfo{{ID: 1, Voters: []string{"n1"}, Leader: "n1", Worlds: 1, Players: 2}}, Worlds: map[string]uint64{"w": 1}}
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, want) })
	got, err := newTestClient(t, []string{f.Listener.Addr().String()}).Shards(context.Background())
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, recorded{Method: "GET", Path: wire.PathShards}, f.requests()[0])

	none := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		writeErr(w, 422, "not_supported", "this node runs no shard map")
	})
	_, err = newTestClient(t, []string{none.Listener.Addr().String()}).Shards(context.Background())
	require.Equal(t, "not_supported", Code(err))
}

func TestShardWriteCalls(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			writeJSON(w, 201, wire.ShardInfo{ID: 4, Voters: []string{"n1"}})
		case 2:
			w.WriteHeader(204)
		case 3:
			writeJSON(w, 200, map[string]any{"world": "arena", "shard": 4})
		case 4:
			writeJSON(w, 200, map[string]any{"world": "arena"})
		default:
			writeErr(w, 409, "conflict", "shard 4 still holds 1 worlds")
		}
	})
	c := newTestClient(t, []string{f.Listener.Addr().String()})
	ctx := context.Background()
	info, err := c.CreateShard(ctx, wire.ShardCreate{ID: 4, Replicas: 1})
	require.NoError(t, err)
	require.Equal(t, wire.ShardInfo{ID: 4, Voters: []string{"n1"}}, info)
	require.NoError(t, c.RemoveShard(ctx, 4))
	zero := uint64(0)
	got, err := c.PlaceWorld(ctx, "arena", &zero)
	require.NoError(t, err)
	require.Equal(t, uint64(4), got)
	_, err = c.PlaceWorld(ctx, "arena", nil)
	require.ErrorContains(t, err, "answered no shard")
	err = c.RemoveShard(ctx, 4)
	require.Equal(t, "conflict", Code(err))
	reqs := f.requests()
	require.Equal(t, recorded{Method: "POST", Path: wire.PathShards, Body: `{"id":4,"replicas":1}`}, reqs[0])
	require.Equal(t, recorded{Method: "DELETE", Path: wire.PathShards + "/4"}, reqs[1])
	require.Equal(t, recorded{Method: "POST", Path: wire.PathShardWorlds, Body: `{"world":"arena","shard":0}`}, reqs[2])
}

func TestMoveWorldPostsTheTarget(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeJSON(w, 200, wire.WorldMoved{World: "arena", From: 1, To: 2, Seq: 40})
			return
		}
		writeErr(w, 404, "not_found", "shard 9 is not in the shard map")
	})
	c := newTestClient(t, []string{f.Listener.Addr().String()})
	got, err := c.MoveWorld(context.Background(), "arena", 2)
	require.NoError(t, err)
	require.Equal(t, wire.WorldMoved{World: "arena", From: 1, To: 2, Seq: 40}, got)
	_, err = c.MoveWorld(context.Background(), "arena", 9)
	require.Equal(t, "not_found", Code(err))
	require.Equal(t, recorded{Method: "POST", Path: "/v1/cluster/worlds/arena/move", Body: `{"to":2}`}, f.requests()[0])
}

func TestAssignWorldIfSendsTheExpectedShard(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			writeJSON(w, 200, map[string]any{"world": "arena", "shard": 2})
		case 2:
			writeJSON(w, 200, map[string]any{"world": "arena"})
		default:
			writeErr(w, 409, "conflict", "gsd/meta: the world is not on the expected shard")
		}
	})
	c := newTestClient(t, []string{f.Listener.Addr().String()})
	ctx := context.Background()
	got, err := c.AssignWorldIf(ctx, "arena", 2, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), got)
	_, err = c.AssignWorldIf(ctx, "arena", 2, 0)
	require.ErrorContains(t, err, "answered no shard")
	_, err = c.AssignWorldIf(ctx, "arena", 2, 0)
	require.Equal(t, "conflict", Code(err))
	require.Equal(t, recorded{Method: "POST", Path: wire.PathShardWorlds, Body: `{"world":"arena","shard":2,"expect":0}`}, f.requests()[0])
}

func TestRemoveMapNodeDeletesTheNodeFromTheMetaMap(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.WriteHeader(204)
			return
		}
		writeErr(w, 409, "conflict", `gsd/meta: refused: node "n1" is a voter of shards [1 4]`)
	})
	c := newTestClient(t, []string{f.Listener.Addr().String()})
	ctx := context.Background()
	require.NoError(t, c.RemoveMapNode(ctx, "n3"))
	err := c.RemoveMapNode(ctx, "n1")
	require.Equal(t, "conflict", Code(err))
	require.ErrorContains(t, err, "voter of shards [1 4]")
	reqs := f.requests()
	require.Equal(t, recorded{Method: "DELETE", Path: wire.PathShardNodes + "/n3"}, reqs[0])
	require.Equal(t, recorded{Method: "DELETE", Path: "/v1/cluster/shards/nodes/n1"}, reqs[1])
}
