package main

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// With --meta, a world's creation places it first: a new world goes to
// the shard with the most headroom, concurrent creations of one name end
// in one world, and a world that exists on the shard its name hashes to
// (created before placement) stays there, its creation refused as before.
func TestRunThreeNodesWithMetaCreatePlacesNewWorlds(t *testing.T) {
	t.Parallel()
	mc := startMetaCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var err error
	require.Eventually(t, func() bool {
		_, err = mc.clients[0].CreateShard(ctx, wire.ShardCreate{ID: 3, Replicas: 2})
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "create shard 3: %v", err)

	// Three creations of "fresh" at once, one through each node.
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for _, c := range mc.clients {
		wg.Go(func() {
			var err error
			for ctx.Err() == nil {
				if err = c.CreateWorld(ctx, "fresh", wire.Rules{}); err == nil || client.Code(err) == "world_exists" {
					break
				}
			}
			mu.Lock()
			codes[client.Code(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	// One made the world (a creation retried after an unknown outcome
	// may answer world_exists to its own creation).
	require.Equal(t, 3, codes[""]+codes["world_exists"], "%v", codes)
	require.LessOrEqual(t, codes[""], 1, "%v", codes)
	m, err := mc.clients[2].Shards(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3), m.Worlds["fresh"], "the shard without worlds")
	for _, c := range mc.clients {
		require.Eventually(t, func() bool {
			_, err = c.Act(ctx, "fresh", incr("p1", 1, "e1", 1))
			return err == nil
		}, 30*time.Second, 20*time.Millisecond, "act on fresh: %v", err)
	}

	// Read-your-placement: a creation through any node (two of them do
	// not lead the meta group) places the world, and the very next
	// request through that node reaches it, with no wait in between (the
	// placement answers once the node's own copy of the map lists it).
	// A placement likewise: the node's map (GET /v1/cluster/shards answers
	// this node's own copy) lists the world as soon as it answered.
	for i, c := range mc.clients {
		world := "next-" + mc.ids[i]
		require.NoError(t, c.CreateWorld(ctx, world, wire.Rules{}))
		_, err = c.Act(ctx, world, incr("p1", 1, "e1", 1))
		require.NoError(t, err, "act on %s through %s right after its creation", world, mc.ids[i])

		world = "placed-" + mc.ids[i]
		placed, err := c.PlaceWorld(ctx, world, nil)
		require.NoError(t, err)
		m, err := c.Shards(ctx)
		require.NoError(t, err)
		require.Equal(t, placed, m.Worlds[world], "%s's map lists %s right after placing it", mc.ids[i], world)
	}

	// "old" created as before placement (the internal creation call, which
	// places nothing, at the leader of the shard its name hashes to).
	require.Eventually(t, func() bool {
		for _, id := range mc.ids {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+mc.httpAddrs[id]+"/internal/v1/worlds", bytes.NewReader([]byte(`{"id":"old"}`)))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Gsd-Forwarded", "1")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "create old unplaced")
	for _, c := range mc.clients {
		require.Equal(t, "world_exists", client.Code(c.CreateWorld(ctx, "old", wire.Rules{})))
	}
	m, err = mc.clients[0].Shards(ctx)
	require.NoError(t, err)
	_, listed := m.Worlds["old"]
	require.False(t, listed, "an existing world is never placed anew")
	_, err = mc.clients[1].Act(ctx, "old", incr("p1", 1, "e1", 1))
	require.NoError(t, err)
}
