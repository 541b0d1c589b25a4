package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// A joiner opens the shard's group without bootstrap and expects no
// Raft state of its own: the leader gives it the shard's snapshot and
// log. A directory left from earlier (a shard removed and created again
// with the same id, whose old voters keep their data) would instead be
// opened as it is, with another group's configuration, term and log.
// So the joiner marks the directory it starts with the replacement it
// joins for (joinMarkFile: the shard, itself and Replacement.Since, the
// meta log index of the replace_voter), written before the group first
// opens; a directory without that mark is set aside
// (shard.Manager.SetAside, "<id>.before-join-<since>") and the group
// opens clean. Its own directory, from before a restart, keeps its
// mark and is opened again: once the joiner votes, its log counts for
// the shard's commits and must never be dropped. A replacement from a
// gsd that did not keep Since (0) is opened as it is, as before.
//
// Nor is a directory set aside, mark or not, while its group's Raft
// configuration (the running group's, or the last one its files
// record) lists this node as a voter, with another of the shard's
// voters in the map (liveMember): a node that got its replica by
// bootstrap has no mark, and one replaced out of a shard stays in the
// configuration until the shard's leader removes it; named the joiner
// again meanwhile, it would lose a voter's data and come back empty
// under the same id. It joins
// with that directory as it is (it is a member already). The shard's
// group always lists the map's voters (a joiner is added before it
// votes, an old voter removed after it is replaced), so only a group of
// none of them, another group's, is set aside. A directory whose
// configuration cannot be read is kept, and the join waits (logged).
const joinMarkFile = "joined"

// joinMark is the content of a joiner's mark.
type joinMark struct {
	Shard uint64 `json:"shard"`
	Node  string `json:"node"`
	Since uint64 `json:"since"`
}

// markOf is this node's mark for joining shard id by r.
func (g *Group) markOf(id uint64, r Replacement) []byte {
	b, _ := json.Marshal(joinMark{Shard: id, Node: g.cfg.ID, Since: r.Since}) // numbers and a string: cannot fail
	return b
}

// joinedHere reports whether shard id's directory on this node is the
// one this node started for joining by r (or r cannot tell: Since 0).
func (g *Group) joinedHere(id uint64, r Replacement) (bool, error) {
	if r.Since == 0 {
		return true, nil
	}
	b, err := os.ReadFile(filepath.Join(g.mgr.DataDir(id), joinMarkFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return bytes.Equal(b, g.markOf(id, r)), nil
}

// prepareJoin readies shard id's directory for this node's join by r,
// before the group opens: a directory that is not the join's own is set
// aside, and a new one gets the join's mark.
func (g *Group) prepareJoin(id uint64, r Replacement) error {
	if r.Since == 0 {
		return nil
	}
	dir := g.mgr.DataDir(id)
	if _, err := os.Stat(dir); err == nil {
		ours, err := g.joinedHere(id, r)
		if err != nil || ours {
			return err
		}
		config, err := diskMembers(dir)
		if err != nil {
			return fmt.Errorf("read the configuration of the directory left from earlier: %w", err)
		}
		if g.liveMember(id, config) {
			g.log.Warn("a shard this node joins has a directory whose configuration has this node a voter: kept as it is", "shard", id)
			return nil
		}
		to, err := g.mgr.SetAside(id, "before-join-"+strconv.FormatUint(r.Since, 10))
		if err != nil {
			return err
		}
		g.log.Warn("a shard this node joins had a directory left from earlier: set aside, the group starts clean",
			"shard", id, "moved_to", to)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeSynced(filepath.Join(dir, joinMarkFile), g.markOf(id, r))
}

// setAsideRunning stops shard id's group, which this node runs but did
// not start for joining by r (a removed shard's group that kept
// running), and sets its directory aside; the next tick opens the join.
func (g *Group) setAsideRunning(id uint64, r Replacement) error {
	ctx, cancel := context.WithTimeout(g.stopCtx, g.cfg.ApplyTimeout)
	defer cancel()
	if err := g.mgr.CloseGroup(ctx, id); err != nil {
		return fmt.Errorf("stop the group left from earlier: %w", err)
	}
	return g.prepareJoin(id, r)
}

// liveMember reports whether config, a Raft configuration of shard id's
// group on this node, is the shard's own with this node voting in it:
// it lists this node as a voter and another of the shard's voters in
// the map. Only a voter's data counts for the shard's commits; a group
// left from earlier that the shard's leader reached (it adds the joiner
// as a nonvoter before the joiner set it aside) lists this node as a
// nonvoter, and is still set aside.
func (g *Group) liveMember(id uint64, config []raft.Server) bool {
	sh, _ := g.fsm.View().Map.Shard(id)
	return slices.ContainsFunc(config, func(s raft.Server) bool {
		return string(s.ID) == g.cfg.ID && s.Suffrage == raft.Voter
	}) && slices.ContainsFunc(sh.Voters, func(v string) bool {
		return v != g.cfg.ID && listed(v, config)
	})
}

// diskMembers returns the Raft configuration last recorded in dir, a
// group's directory that is not open: the latest configuration entry of
// its log after its latest snapshot, else that snapshot's. Nil: the
// directory records none.
func diskMembers(dir string) (servers []raft.Server, err error) {
	var from uint64 // the first log index after the snapshot
	if _, err := os.Stat(filepath.Join(dir, "snapshots")); err == nil {
		snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, hclog.NewNullLogger())
		if err != nil {
			return nil, err
		}
		metas, err := snaps.List()
		if err != nil {
			return nil, err
		}
		if len(metas) > 0 {
			servers, from = metas[0].Configuration.Servers, metas[0].Index+1
		}
	}
	path := filepath.Join(dir, "raft.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return servers, nil
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bolt.Options{Timeout: time.Second}})
	if err != nil {
		return nil, err
	}
	defer logs.Close()
	first, err := logs.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil { // raft.DecodeConfiguration panics on bytes it cannot decode
			servers, err = nil, fmt.Errorf("decode a configuration entry: %v", p)
		}
	}()
	for i := last; i >= max(first, from, 1); i-- {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return nil, fmt.Errorf("log entry %d: %w", i, err)
		}
		if l.Type == raft.LogConfiguration {
			return raft.DecodeConfiguration(l.Data).Servers, nil
		}
	}
	return servers, nil
}

// writeSynced writes b to path and syncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
