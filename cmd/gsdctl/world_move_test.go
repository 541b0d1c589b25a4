package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWorldMoveCallsTheNode(t *testing.T) {
	var got []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		switch len(got) {
		case 1, 2:
			_, _ = w.Write([]byte(`{"world":"arena","from":1,"to":2,"seq":40}`))
		case 3:
			_, _ = w.Write([]byte(`{"world":"arena","from":2,"to":2,"seq":0,"done":true}`))
		default:
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"code":"not_found","error":"shard 9 is not in the shard map"}`))
		}
	}))
	t.Cleanup(ts.Close)
	addr := ts.Listener.Addr().String()
	require.Contains(t, mustRun(t, "--addr", addr, "world", "move", "arena", "--to", "2"), "world arena: moved from shard 1 to shard 2 after seq 40")
	require.Contains(t, mustRun(t, "--addr", addr, "world", "move", "arena", "--to", "2", "-o", "json"), `"seq": 40`)
	require.Contains(t, mustRun(t, "--addr", addr, "world", "move", "arena", "--to", "2"), "on shard 2 already")
	code, _, errOut := ctl(t, "", "--addr", addr, "world", "move", "arena", "--to", "9")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "not in the shard map")
	require.Equal(t, "POST /v1/cluster/worlds/arena/move {\"to\":2}", got[0])
	for _, args := range [][]string{{"world", "move", "arena"}, {"world", "move", "arena", "--to", "x"}, {"world", "move", "--to", "2"}} {
		code, _, errOut := ctl(t, "", append([]string{"--addr", addr}, args...)...)
		require.Equal(t, 1, code, "%v", args)
		require.Contains(t, errOut, "gsdctl: ", "%v", args)
	}
	require.Len(t, got, 4, "a command line error sends nothing")
}
