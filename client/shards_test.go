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
