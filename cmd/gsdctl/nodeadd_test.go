package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestNodeAddPutsTheNodeIntoTheShardMap(t *testing.T) {
	var got []wire.ShardNode
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == wire.PathShards {
			// The map holds what was added, with regions (gsd --meta).
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(wire.ShardMap{Meta: true, Nodes: got})
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != wire.PathShardNodes {
			http.NotFound(w, r)
			return
		}
		var n wire.ShardNode
		require.NoError(t, json.NewDecoder(r.Body).Decode(&n))
		if n.Raft == "bad" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "malformed", "error": `raft address "bad": missing port`})
			return
		}
		got = append(got, n)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	addr := ts.Listener.Addr().String()

	out := mustRun(t, "--addr", addr, "node", "add", "n4", "--raft", "10.0.0.4:7000", "--http", "10.0.0.4:8080", "--region", "eu")
	require.Equal(t, "node n4 added to the shard map\n"+
		"the meta group's leader takes it into the meta group's members (unless gsd runs with --meta-voters 0)\n", out)
	require.Equal(t, []wire.ShardNode{{ID: "n4", Raft: "10.0.0.4:7000", HTTP: "10.0.0.4:8080", Region: "eu"}}, got)

	code, _, errOut := ctl(t, "", "--addr", addr, "node", "add", "n5", "--raft", "bad", "--http", "h:1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "add n5 to the shard map")
	require.Contains(t, errOut, "missing port")

	code, _, errOut = ctl(t, "", "--addr", addr, "node", "add", "n5", "--http", "h:1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, `"raft" not set`)
	require.Len(t, got, 1)

	// Added again for a new address, n4 keeps its region (it was
	// cleared: review of dead14); --region "" clears it.
	out = mustRun(t, "--addr", addr, "node", "add", "n4", "--raft", "10.0.0.9:7000", "--http", "10.0.0.9:8080")
	require.Contains(t, out, "node n4 keeps its region eu\n")
	require.Equal(t, wire.ShardNode{ID: "n4", Raft: "10.0.0.9:7000", HTTP: "10.0.0.9:8080", Region: "eu"}, got[1])
	out = mustRun(t, "--addr", addr, "node", "add", "n4", "--raft", "10.0.0.9:7000", "--http", "10.0.0.9:8080", "--region", "")
	require.NotContains(t, out, "keeps its region")
	require.Equal(t, wire.ShardNode{ID: "n4", Raft: "10.0.0.9:7000", HTTP: "10.0.0.9:8080"}, got[2])
}
