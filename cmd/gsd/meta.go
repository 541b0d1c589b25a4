package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/shard/meta"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// metaFlags registers --meta (issue 14).
func (s *shardOptions) metaFlags(f *pflag.FlagSet) {
	f.BoolVar(&s.meta, "meta", false, "with --shard-map: hold the shard map in the meta group (shard/meta), a Raft group of its own "+
		"seeded once from the file (later edits of the file change nothing), so every node routes every world; "+
		"the map's first nodes by id are its voters (5, or 3 with fewer than 5 nodes), the others nonvoters; "+
		"every node of the map must start with the same file")
	f.IntVar(&s.voters, "meta-voters", meta.DefaultConfig().Voters, "with --meta: the meta group's members follow the map: "+
		"its leader adds every node of the map as a member, promotes members up to this many voters (odd from 3 on, spread over regions; "+
		"all nodes when fewer; none is demoted), once caught up, and removes the nodes removed from the map "+
		"(gsdctl node remove); 0: the members stay as the file formed them")
	f.BoolVar(&s.join, "meta-join", false, "with --meta: this node joins a meta group that runs already instead of forming one "+
		"from the file: it waits until the meta group's leader adds it, after gsdctl node add (its file must list it)")
}

// checkMeta checks --meta against the loaded map (nil without --shard-map).
func (s *shardOptions) checkMeta(id string, m *shard.Map) error {
	if !s.meta {
		if s.join {
			return errors.New("--meta-join needs --meta")
		}
		return nil
	}
	if m == nil {
		return errors.New("--meta needs --shard-map")
	}
	if s.voters < 0 {
		return fmt.Errorf("--meta-voters %d: want 0 or more", s.voters)
	}
	if _, ok := m.Nodes[id]; !ok {
		return fmt.Errorf("--meta: node %s is not in the shard map's nodes", id)
	}
	return nil
}

// metaServers returns the meta group's first configuration from the map,
// the same on every node: the nodes in id order, the first 5 of them
// voters (3 with 3 or 4 nodes, all with fewer), the rest nonvoters.
func metaServers(m *shard.Map) []raft.Server {
	ids := slices.Sorted(maps.Keys(m.Nodes))
	voters := len(ids)
	switch {
	case voters >= 5:
		voters = 5
	case voters >= 3:
		voters = 3
	}
	out := make([]raft.Server, 0, len(ids))
	for i, id := range ids {
		suffrage := raft.Voter
		if i >= voters {
			suffrage = raft.Nonvoter
		}
		out = append(out, raft.Server{Suffrage: suffrage, ID: raft.ServerID(id), Address: raft.ServerAddress(m.Nodes[id].Raft)})
	}
	return out
}

// start opens the node's groups for the map, and with --meta the meta
// group, whose map the node then routes by.
func (s *shardOptions) start(dataDir string, scfg store.Config, mux *shard.Mux, reg prometheus.Registerer) (*shardGroups, error) {
	g, err := startShards(s.m, dataDir, scfg, mux, reg)
	if err != nil || !s.meta {
		return g, err
	}
	cfg := meta.DefaultConfig()
	cfg.ID, cfg.Bootstrap, cfg.Servers, cfg.Seed, cfg.OpenShards = scfg.ID, !s.join, metaServers(s.m), s.m, true
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = scfg.HeartbeatTimeout, scfg.ElectionTimeout, scfg.LeaderLeaseTimeout
	cfg.ApplyTimeout, cfg.NoSync, cfg.Logger = scfg.ApplyTimeout, scfg.NoSync, scfg.Logger
	cfg.Voters = s.voters
	mg, err := meta.Open(g.mgr, cfg)
	if err == nil {
		r := shard.NewRouterWith(g.mgr, mg)
		g.router = shardRouter{r}
		var b *shard.Backend
		if b, err = shard.NewBackend(r); err == nil {
			g.backend = metaBackend{Backend: b, g: mg, r: r}
		}
	}
	if err != nil {
		g.close(scfg.ApplyTimeout, scfg.Logger)
		return nil, fmt.Errorf("meta group: %w", err)
	}
	return g, nil
}

// metaBackend is the edge's backend with --meta: the shard Backend, and
// the admin routes' shard map editor over the meta group.
type metaBackend struct {
	*shard.Backend
	g *meta.Group
	r *shard.Router
}

// ShardMap is the shard Backend's map with the meta group's own
// members, and each node's region and down mark.
func (b metaBackend) ShardMap() wire.ShardMap {
	m := b.Backend.ShardMap()
	info := b.g.Nodes()
	for i, n := range m.Nodes {
		m.Nodes[i].Region, m.Nodes[i].Down = info[n.ID].Region, info[n.ID].Down
	}
	servers, err := b.g.Members()
	if err != nil {
		return m
	}
	for _, s := range servers {
		m.MetaMembers = append(m.MetaMembers, wire.MetaMember{ID: string(s.ID), Voter: s.Suffrage == raft.Voter})
	}
	slices.SortFunc(m.MetaMembers, func(a, b wire.MetaMember) int { return strings.Compare(a.ID, b.ID) })
	return m
}

// ShardOf is the shard the meta map places world on now.
func (b metaBackend) ShardOf(world string) (uint64, error) { return b.r.ShardOf(world) }

// GroupRoute is where shard g's commands go (a move's import): this
// node's group when it leads g, else g's leader; a shard the map does not
// have is not_found.
func (b metaBackend) GroupRoute(g uint64) (edge.Route, error) {
	if _, ok := b.r.Map().Shard(g); !ok {
		return edge.Route{}, fmt.Errorf("%w: shard %d is not in the shard map", fsm.ErrNotFound, g)
	}
	loc, err := b.r.LocateGroup(g)
	if err != nil {
		return edge.Route{}, err
	}
	return edgeRoute(loc), nil
}

// Listed reports whether the meta map lists world (placed or assigned).
func (b metaBackend) Listed(world string) bool {
	_, ok := b.r.Map().Worlds[world]
	return ok
}

// PlaceNew places world, about to be created, where the meta group
// places it (a world placed already keeps its shard).
func (b metaBackend) PlaceNew(ctx context.Context, world string) (uint64, error) {
	res, err := b.g.Propose(ctx, meta.Command{Op: meta.OpPlaceWorld, World: world})
	if err != nil {
		return 0, editError(err)
	}
	return res.Shard, nil
}

// PublishWorld assigns a moved world to its new shard in the meta map.
func (b metaBackend) PublishWorld(ctx context.Context, world string, shard uint64) error {
	return editError(b.g.Publish(ctx, world, shard))
}

// CreateShard adds a shard to the meta map; its voters start it.
func (b metaBackend) CreateShard(ctx context.Context, c wire.ShardCreate) (wire.ShardInfo, error) {
	res, err := b.g.Propose(ctx, meta.Command{Op: meta.OpCreateShard, Shard: c.ID, Voters: c.Voters, Replicas: c.Replicas})
	if err != nil {
		return wire.ShardInfo{}, editError(err)
	}
	return wire.ShardInfo{ID: res.Shard, Voters: res.Voters}, nil
}

// RemoveShard removes a shard that lists no worlds from the meta map.
func (b metaBackend) RemoveShard(ctx context.Context, id uint64) error {
	_, err := b.g.Propose(ctx, meta.Command{Op: meta.OpRemoveShard, Shard: id})
	return editError(err)
}

// RemoveMapNode removes a node that is no shard's voter from the meta map.
func (b metaBackend) RemoveMapNode(ctx context.Context, id string) error {
	_, err := b.g.Propose(ctx, meta.Command{Op: meta.OpRemoveNode, Node: id})
	return editError(err)
}

// MarkNodesDown declares nodes of the meta map dead (mark_down).
func (b metaBackend) MarkNodesDown(ctx context.Context, d wire.NodesDown) error {
	_, err := b.g.Propose(ctx, meta.Command{Op: meta.OpMarkDown, Nodes: d.Nodes})
	return editError(err)
}

// AddMapNode adds a node to the meta map (or changes its addresses).
func (b metaBackend) AddMapNode(ctx context.Context, n wire.ShardNode) error {
	_, err := b.g.Propose(ctx, meta.Command{Op: meta.OpAddNode, Node: n.ID, Raft: n.Raft, HTTP: n.HTTP, Region: n.Region})
	return editError(err)
}

// PlaceWorld puts a world on the shard named (with Expect, only while it
// is on shard Expect), or where the meta group places it.
func (b metaBackend) PlaceWorld(ctx context.Context, p wire.WorldPlacement) (wire.WorldPlacement, error) {
	c := meta.Command{Op: meta.OpPlaceWorld, World: p.World}
	if p.Shard != nil {
		c = meta.Command{Op: meta.OpAssignWorld, World: p.World, Shard: *p.Shard, Expect: p.Expect}
	}
	res, err := b.g.Propose(ctx, c)
	if err != nil {
		return wire.WorldPlacement{}, editError(err)
	}
	return wire.WorldPlacement{World: p.World, Shard: &res.Shard}, nil
}

// ReplaceVoter lists a voter replacement in the meta map (node
// evacuation); the shard's nodes carry it out.
func (b metaBackend) ReplaceVoter(ctx context.Context, shard uint64, r wire.VoterReplace) (wire.VoterReplaced, error) {
	res, err := b.g.Propose(ctx, meta.Command{Op: meta.OpReplaceVoter, Shard: shard, Node: r.Old, New: r.New})
	if err != nil {
		return wire.VoterReplaced{}, editError(err)
	}
	return wire.VoterReplaced{Shard: shard, Old: r.Old, New: res.New, Voters: res.Voters}, nil
}

// editError maps the meta group's errors to the edge's.
func editError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, meta.ErrBadCommand):
		return fmt.Errorf("%w: %w", fsm.ErrMalformed, err)
	case errors.Is(err, meta.ErrNotFound):
		return fmt.Errorf("%w: %w", fsm.ErrNotFound, err)
	case errors.Is(err, meta.ErrRefused):
		return fmt.Errorf("%w: %w", edge.ErrConflict, err)
	case errors.Is(err, meta.ErrNotLeader):
		return fmt.Errorf("%w: %w", store.ErrNotLeader, err)
	case errors.Is(err, meta.ErrGate):
		return fmt.Errorf("%w: %w", store.ErrVersionGate, err)
	case errors.Is(err, meta.ErrBehind):
		// Applied at the meta leader; this node cannot route by it yet.
		return fmt.Errorf("%w: %w", edge.ErrUnavailable, err)
	}
	return err
}
