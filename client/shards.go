package client

import (
	"context"
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// Shards returns the shard map as the node asked sees it (an admin call,
// GET /v1/cluster/shards); a node without one answers not_supported.
func (c *Client) Shards(ctx context.Context) (wire.ShardMap, error) {
	var m wire.ShardMap
	err := c.do(ctx, &request{method: http.MethodGet, path: wire.PathShards}, &m)
	return m, err
}
