package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gsd-dev/gsd/wire"
)

// Shards returns the shard map as the node asked sees it (an admin call,
// GET /v1/cluster/shards); a node without one answers not_supported.
func (c *Client) Shards(ctx context.Context) (wire.ShardMap, error) {
	var m wire.ShardMap
	err := c.do(ctx, &request{method: http.MethodGet, path: wire.PathShards}, &m)
	return m, err
}

// CreateShard adds a shard to the meta group's map (an admin call, gsd
// --meta): with c.Voters, or c.Replicas voters the meta group picks. Its
// voters start it.
func (c *Client) CreateShard(ctx context.Context, s wire.ShardCreate) (wire.ShardInfo, error) {
	var info wire.ShardInfo
	err := c.do(ctx, &request{method: http.MethodPost, path: wire.PathShards, body: s, write: true}, &info)
	return info, err
}

// RemoveShard removes a shard from the meta group's map; refused
// (conflict) while the map lists worlds on it.
func (c *Client) RemoveShard(ctx context.Context, id uint64) error {
	return c.do(ctx, &request{method: http.MethodDelete, path: wire.PathShards + "/" + strconv.FormatUint(id, 10), write: true}, nil)
}

// RemoveMapNode removes node from the meta group's map (an admin call,
// gsd --meta), after evacuating it: refused (conflict, naming the shards)
// while it is a shard's voter, not_found for a node the map does not
// hold. It does not take the node out of group 0 (Remove does).
func (c *Client) RemoveMapNode(ctx context.Context, node string) error {
	return c.do(ctx, &request{method: http.MethodDelete, path: wire.PathShardNode(node), write: true}, nil)
}

// MarkNodesDown declares nodes of the meta map dead (an admin call, gsd
// --meta): they leave the meta group, which then no longer waits for
// them, so their shards can be evacuated. Refused (conflict) for a node
// that answers; not_found for a node the map does not hold.
func (c *Client) MarkNodesDown(ctx context.Context, nodes []string) error {
	return c.do(ctx, &request{method: http.MethodPost, path: wire.PathShardNodesDown, body: wire.NodesDown{Nodes: nodes}, write: true}, nil)
}

// AddMapNode adds node n to the meta group's map (an admin call, gsd
// --meta), or changes its addresses there: the meta group then takes it
// into its own members (a node started with gsd --meta-join waits for
// that). A bad address is malformed.
func (c *Client) AddMapNode(ctx context.Context, n wire.ShardNode) error {
	return c.do(ctx, &request{method: http.MethodPost, path: wire.PathShardNodes, body: n, write: true}, nil)
}

// PlaceWorld puts world on shard, or, with shard nil, on the shard the
// meta group places it on, and returns that shard. Place a world before
// creating it.
func (c *Client) PlaceWorld(ctx context.Context, world string, shard *uint64) (uint64, error) {
	var p wire.WorldPlacement
	err := c.do(ctx, &request{method: http.MethodPost, path: wire.PathShardWorlds,
		body: wire.WorldPlacement{World: world, Shard: shard}, write: true}, &p)
	if err == nil && p.Shard == nil {
		err = fmt.Errorf("gsd/client: placement of %q answered no shard", world)
	}
	if err != nil {
		return 0, err
	}
	return *p.Shard, nil
}

// AssignWorldIf puts world on shard only while it is on shard expect now
// (listed in the map, or where its name hashes) and returns the shard:
// else a conflict error, nothing changed. Every meta member must read it
// (else version_gate); a node before it answers malformed.
func (c *Client) AssignWorldIf(ctx context.Context, world string, shard, expect uint64) (uint64, error) {
	var p wire.WorldPlacement
	err := c.do(ctx, &request{method: http.MethodPost, path: wire.PathShardWorlds,
		body: wire.WorldPlacement{World: world, Shard: &shard, Expect: &expect}, write: true}, &p)
	if err == nil && p.Shard == nil {
		err = fmt.Errorf("gsd/client: placement of %q answered no shard", world)
	}
	if err != nil {
		return 0, err
	}
	return *p.Shard, nil
}

// MoveWorld moves world to shard to (an admin call, gsd --meta) and
// answers where its events end at the old home. Safe to call again after
// an error: a move interrupted after its fence is completed, and a world
// already on to answers Done.
func (c *Client) MoveWorld(ctx context.Context, world string, to uint64) (wire.WorldMoved, error) {
	var m wire.WorldMoved
	err := c.do(ctx, &request{method: http.MethodPost, path: wire.PathWorldMove(world), body: wire.WorldMove{To: to}, write: true}, &m)
	return m, err
}

// ReplaceVoter lists, in the meta map, joiner taking old's seat in shard
// (empty joiner: the meta group picks it) and answers the pick and the
// shard's voters once done. The shard's nodes carry it out; the map's
// voters show when old has left.
func (c *Client) ReplaceVoter(ctx context.Context, shard uint64, old, joiner string) (wire.VoterReplaced, error) {
	var r wire.VoterReplaced
	err := c.do(ctx, &request{method: http.MethodPost, path: wire.PathShardReplace(shard),
		body: wire.VoterReplace{Old: old, New: joiner}, write: true}, &r)
	return r, err
}
