package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// shardOptions are the flags of many groups per node (issue 14). Without
// --shard-map the node runs its one group as before shards: group 0, its
// files at the top of the data dir.
type shardOptions struct {
	mapFile string
	meta    bool       // --meta (meta.go)
	voters  int        // --meta-voters (meta.go)
	join    bool       // --meta-join (meta.go)
	m       *shard.Map // loaded by options.complete
}

func (s *shardOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&s.mapFile, "shard-map", "", "JSON shard map (nodes, shards and their voters, worlds; see shard/DESIGN.md): "+
		"run this node's shards as Raft groups over --raft-addr, each in <data-dir>/groups/<id> "+
		"(a single-group data dir moves to groups/0 on first start). Default: one group")
	s.metaFlags(f)
}

// load reads the shard map, or returns nil when --shard-map is not set.
// gsd forms its membership group as group 0 (bootstrap or --join), so the
// map must name it so, and must give this node the addresses it runs on:
// the other voters of its shards dial them.
func (s *shardOptions) load(o *options) (*shard.Map, error) {
	if s.mapFile == "" {
		return nil, s.checkMeta(o.id, nil)
	}
	m, err := shard.LoadMap(s.mapFile)
	if err != nil {
		return nil, err
	}
	var errs []error
	if m.Membership != 0 {
		errs = append(errs, fmt.Errorf("membership is %d: gsd runs the membership group as group 0", m.Membership))
	}
	if n, ok := m.Nodes[o.id]; ok && n.Raft != o.raftAdvertise {
		errs = append(errs, fmt.Errorf("node %s has raft address %s in the map, but runs on %s (--raft-advertise)", o.id, n.Raft, o.raftAdvertise))
	}
	if err := s.checkMeta(o.id, m); err != nil {
		errs = append(errs, err)
	}
	if len(m.ShardsOf(o.id)) > 0 {
		if _, ok := m.Nodes[o.id]; !ok {
			errs = append(errs, fmt.Errorf("node %s is a voter but not in nodes", o.id))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("shard map %s: %w", s.mapFile, err)
	}
	return m, nil
}

// stateDir returns the directory of group 0's Raft state: the data dir
// itself without a shard map; with one, groups/0, after moving a
// single-group data dir there.
func stateDir(dataDir string, m *shard.Map) (string, error) {
	if m == nil {
		return dataDir, nil
	}
	if _, err := shard.MigrateLegacyLayout(dataDir); err != nil {
		return "", err
	}
	return shard.GroupDir(dataDir, 0), nil
}

// shardGroups are a node's groups when it runs a shard map: group 0 (the
// membership group, formed by bootstrap or --join as before) and the
// shards the map makes this node a voter of, each bootstrapped with its
// voters on first start.
type shardGroups struct {
	mgr     *shard.Manager
	zero    *store.Store
	router  shardRouter
	backend edge.Backend // *shard.Backend, or metaBackend with --meta
}

var _ edge.Backend = (*shard.Backend)(nil)

// startShards opens the node's groups over mux. scfg is group 0's config,
// as a single-group node would run it.
func startShards(smap *shard.Map, dataDir string, scfg store.Config, mux *shard.Mux, reg prometheus.Registerer) (*shardGroups, error) {
	tmpl := scfg
	tmpl.Dir, tmpl.RaftAddr, tmpl.Advertise, tmpl.StreamLayer, tmpl.Transport = "", "", "", nil, nil
	tmpl.Bootstrap, tmpl.Voters = false, nil
	mgr, err := shard.NewManager(shard.ManagerConfig{DataDir: dataDir, Store: tmpl}, mux, reg)
	if err != nil {
		return nil, err
	}
	g := &shardGroups{mgr: mgr}
	if g.zero, err = mgr.Open(0, shard.GroupOptions{Bootstrap: scfg.Bootstrap}); err != nil {
		return nil, err
	}
	for _, id := range smap.ShardsOf(scfg.ID) {
		if id == 0 {
			continue // group 0's voters are whoever joined it
		}
		voters, err := smap.Voters(id)
		if err == nil {
			_, err = mgr.Open(id, shard.GroupOptions{Bootstrap: true, Voters: voters})
		}
		if err != nil {
			g.close(time.Minute, scfg.Logger)
			return nil, err
		}
	}
	r := shard.NewRouter(mgr, smap)
	g.router = shardRouter{r}
	if g.backend, err = shard.NewBackend(r); err != nil {
		g.close(time.Minute, scfg.Logger)
		return nil, err
	}
	return g, nil
}

// close stops every group (group 0 may be closed already: closing a
// Store twice is harmless).
func (g *shardGroups) close(timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := g.mgr.Close(ctx); err != nil {
		log.Error("shard groups close", "err", err)
	}
}

// refillGroups returns the node's groups for the archive refillers
// (archive.go), as they are when it is called: group 0 refills as
// without a shard map (from the nodes of its node table, every node, by
// the route older nodes serve too); every other group from its other
// voters in the current map, each page asked of their replica of that
// group by name.
func (g *shardGroups) refillGroups(peers groupArchives) func() []refillGroup {
	return func() []refillGroup {
		var out []refillGroup
		for _, id := range g.mgr.Groups() {
			st, ok := g.mgr.Group(id)
			switch {
			case !ok:
			case id == 0:
				out = append(out, refillGroup{st: st, peers: peers})
			default:
				out = append(out, refillGroup{st: st, peers: groupPeers{fetch: peers, group: id}, members: g.voters(id)})
			}
		}
		return out
	}
}

// voters returns the voters of group id in the current shard map, each
// at its HTTP address in the map (none: the group left the map, and its
// refiller has no one to ask until it is closed here).
func (g *shardGroups) voters(id uint64) func() []fsm.NodeInfo {
	return func() []fsm.NodeInfo {
		m := g.router.r.Map()
		sh, _ := m.Shard(id)
		out := make([]fsm.NodeInfo, 0, len(sh.Voters))
		for _, v := range sh.Voters {
			out = append(out, fsm.NodeInfo{ID: v, HTTPAddr: m.Nodes[v].HTTP})
		}
		return out
	}
}

// shardRouter is the edge's Router over shard.Router.
type shardRouter struct{ r *shard.Router }

var _ edge.GroupRouter = shardRouter{}

// Route answers where world's commands go; every kind alike for now.
func (s shardRouter) Route(world string, _ edge.Kind) (edge.Route, error) {
	loc, err := s.r.Locate(world)
	if err != nil {
		return edge.Route{}, err
	}
	return edgeRoute(loc), nil
}

// RouteGroup routes world to group when this node's map does not place
// world by name (edge.GroupRouter); group is a forwarding node's
// Route.GroupID. One that is not a shard id routes as Route does.
func (s shardRouter) RouteGroup(world string, _ edge.Kind, group string) (edge.Route, error) {
	g, err := strconv.ParseUint(group, 10, 64)
	if err != nil {
		return s.Route(world, edge.KindWrite)
	}
	loc, err := s.r.LocateIn(world, g)
	if err != nil {
		return edge.Route{}, err
	}
	return edgeRoute(loc), nil
}

// edgeRoute is loc as the edge's Route.
func edgeRoute(loc shard.Location) edge.Route {
	rt := edge.Route{GroupID: strconv.FormatUint(loc.Group, 10), Node: loc.Node, Addr: loc.Addr}
	if loc.Store != nil { // never a typed nil in the interface
		rt.Group = loc.Store
	}
	return rt
}
