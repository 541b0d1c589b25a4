package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// shardMapServer answers the shard map route with m.
func shardMapServer(t *testing.T, m wire.ShardMap) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wire.PathShards {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m)
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

func TestShardsPlacementAndWorldsPrintTheShardMap(t *testing.T) {
	addr := shardMapServer(t, wire.ShardMap{Meta: true,
		Nodes:       []wire.ShardNode{{ID: "n1", Raft: "h:1", HTTP: "h:2"}, {ID: "n2", Raft: "h:3", HTTP: "h:4"}, {ID: "n3", Raft: "h:5", HTTP: "h:6"}},
		Shards:      []wire.ShardInfo{{ID: 1, Voters: []string{"n1", "n2"}, Leader: "n2", Worlds: 2, Players: 9, Events: 30}, {ID: 2, Voters: []string{"n1"}}},
		Worlds:      map[string]uint64{"b": 1, "a": 1},
		MetaMembers: []wire.MetaMember{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}, {ID: "n3"}}})
	out := mustRun(t, "--addr", addr, "shards")
	require.Regexp(t, `SHARD\s+VOTERS\s+LEADER\s+WORLDS\s+PLAYERS\s+\(map: meta group\)`, out)
	require.Regexp(t, `1\s+n1,n2\s+n2\s+2\s+9`, out)
	require.Regexp(t, `2\s+n1\s+-\s+0\s+0`, out)
	require.Regexp(t, `n3\s+h:5\s+h:6`, out)
	require.Contains(t, out, "meta group: voters n1,n2; nonvoters n3\n")

	out = mustRun(t, "--addr", addr, "shards", "worlds")
	require.Regexp(t, `(?s)WORLD\s+SHARD\s+a\s+1\s+b\s+1`, out)

	out = mustRun(t, "--addr", addr, "placement")
	require.Regexp(t, `1\s+2\s+9\s+30\s+2`, out)
	require.Regexp(t, `n1\s+2\s+1,2`, out)
	require.Regexp(t, `n3\s+0\s+-`, out)

	out = mustRun(t, "--addr", addr, "-o", "json", "shards")
	var m wire.ShardMap
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	require.Len(t, m.Shards, 2)
}

func TestShardsNamesTheNodesMarkedDown(t *testing.T) {
	addr := shardMapServer(t, wire.ShardMap{Meta: true,
		Nodes: []wire.ShardNode{{ID: "n1", Raft: "h:1", HTTP: "h:2"}, {ID: "n3", Raft: "h:5", HTTP: "h:6", Down: true}}})
	out := mustRun(t, "--addr", addr, "shards")
	require.Contains(t, out, "marked down (gsdctl node down; evacuate and remove them): n3\n")
	addr = shardMapServer(t, wire.ShardMap{Meta: true, Nodes: []wire.ShardNode{{ID: "n1", Raft: "h:1", HTTP: "h:2"}}})
	require.NotContains(t, mustRun(t, "--addr", addr, "shards"), "marked down")
}

func TestShardsWithoutAShardMapFails(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(422)
		_, _ = w.Write([]byte(`{"code":"not_supported","error":"this node runs no shard map"}`))
	}))
	t.Cleanup(ts.Close)
	code, _, errOut := ctl(t, "", "--addr", ts.Listener.Addr().String(), "shards")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "no shard map")
}

func TestShardCreateRemoveAndPlaceCallTheNode(t *testing.T) {
	var got []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == wire.PathShards:
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"id":4,"voters":["n1","n2"],"worlds":0,"players":0}`))
		case r.Method == "DELETE":
			w.WriteHeader(409)
			_, _ = w.Write([]byte(`{"code":"conflict","error":"shard 4 still holds 1 worlds"}`))
		default:
			_, _ = w.Write([]byte(`{"world":"arena","shard":4}`))
		}
	}))
	t.Cleanup(ts.Close)
	addr := ts.Listener.Addr().String()
	require.Contains(t, mustRun(t, "--addr", addr, "shard", "create", "4", "--replicas", "2"), "shard 4: voters n1,n2")
	require.Contains(t, mustRun(t, "--addr", addr, "shard", "create", "4", "--voters", "n1,n2", "-o", "json"), `"voters"`)
	require.Contains(t, mustRun(t, "--addr", addr, "shard", "place", "arena"), "world arena: shard 4")
	mustRun(t, "--addr", addr, "shard", "place", "arena", "--on", "0")
	code, _, errOut := ctl(t, "", "--addr", addr, "shard", "remove", "4")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "still holds 1 worlds")
	require.Equal(t, []string{
		"POST " + wire.PathShards + ` {"id":4,"replicas":2}`,
		"POST " + wire.PathShards + ` {"id":4,"voters":["n1","n2"]}`,
		"POST " + wire.PathShardWorlds + ` {"world":"arena"}`,
		"POST " + wire.PathShardWorlds + ` {"world":"arena","shard":0}`,
		"DELETE " + wire.PathShards + "/4 ",
	}, got)

	for _, args := range [][]string{
		{"shard", "create", "4"},
		{"shard", "create", "4", "--replicas", "1", "--voters", "a"},
		{"shard", "create", "x", "--replicas", "1"},
		{"shard", "remove", "-1"},
		{"shard", "place", "w", "--on", "y"},
	} {
		code, _, errOut := ctl(t, "", append([]string{"--addr", addr}, args...)...)
		require.Equal(t, 1, code, "%v", args)
		require.Contains(t, errOut, "for usage", "%v", args)
	}
	require.Len(t, got, 5, "a command line error sends nothing")
}
