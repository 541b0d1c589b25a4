package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionsCoverWhatTheyReachInEveryFormat(t *testing.T) {
	v := Versions{Log: 2, Snapshot: 4, Wire: 1}
	require.True(t, v.Covers(Versions{Log: 1, Snapshot: 3, Wire: 1}))
	require.True(t, v.Covers(v))
	require.False(t, v.Covers(Versions{Log: 3, Snapshot: 4, Wire: 1}))
	require.False(t, v.Covers(Versions{Log: 2, Snapshot: 5, Wire: 1}))
	require.False(t, v.Covers(Versions{Log: 2, Snapshot: 4, Wire: 2}))
	require.Equal(t, "log 2, snapshot 4, wire 1", v.String())
	require.False(t, v.IsZero())
	require.True(t, Versions{}.IsZero())
}

func TestNodeInfoOmitsVersionsNotReported(t *testing.T) {
	b, err := json.Marshal(NodeInfo{ID: "n1", RaftAddr: "r", HTTPAddr: "h"})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"n1","raft_addr":"r","http_addr":"h"}`, string(b))
	b, err = json.Marshal(NodeInfo{ID: "n1", Versions: Versions{Log: 1, Snapshot: 3, Wire: 1}})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"n1","raft_addr":"","http_addr":"","versions":{"log":1,"snapshot":3,"wire":1}}`, string(b))
}
