package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A join names the versions the node reads: the version gate then knows
// them from the join on, instead of taking the new voter for the oldest
// binary until its reporter runs (which refused the sinks' replicated
// position writes in a new cluster's first seconds).
func TestJoinCarriesTheVersionsTheNodeReads(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []fsm.NodeInfo
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n fsm.NodeInfo
		if r.URL.Path != "/v1/cluster/join" || json.Unmarshal(b, &n) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}))
	defer srv.Close()
	o := &options{id: "n9", raftAdvertise: "127.0.0.1:7001", region: "eu", join: []string{srv.URL}, joinTimeout: 10 * time.Second}
	want := fsm.Versions{Log: 5, Snapshot: 6, Wire: 1}
	require.NoError(t, join(context.Background(), o, "127.0.0.1:7000", want, slog.New(slog.DiscardHandler)))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	require.Equal(t, fsm.NodeInfo{ID: "n9", RaftAddr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:7000", Region: "eu", Versions: want}, got[0])
}
