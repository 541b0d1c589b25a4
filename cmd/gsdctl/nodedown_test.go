package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestNodeDownMarksEveryNodeGivenInOneCall(t *testing.T) {
	var got []wire.NodesDown
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != wire.PathShardNodesDown {
			http.NotFound(w, r)
			return
		}
		var d wire.NodesDown
		require.NoError(t, json.NewDecoder(r.Body).Decode(&d))
		got = append(got, d)
		if d.Nodes[0] == "n1" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "conflict", "error": `gsd/meta: refused: node "n1" answers (it reads level 5): it is not down`})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	addr := ts.Listener.Addr().String()

	out := mustRun(t, "--addr", addr, "node", "down", "n3", "n4")
	require.Equal(t, "node n3 marked down: it left the meta group\nnode n4 marked down: it left the meta group\n"+
		"next: gsdctl node evacuate n3 --remove\nnext: gsdctl node evacuate n4 --remove\n", out)
	require.Equal(t, []wire.NodesDown{{Nodes: []string{"n3", "n4"}}}, got)

	code, _, errOut := ctl(t, "", "--addr", addr, "node", "down", "n1")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "mark n1 down")
	require.Contains(t, errOut, "it is not down")

	code, _, errOut = ctl(t, "", "--addr", addr, "node", "down")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "requires at least 1 arg")
	require.Len(t, got, 2)
}
