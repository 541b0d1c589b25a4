package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// A cluster restore (gsd restore --cluster DIR) writes a cluster backup
// (gsdctl backup --cluster: one snapshot per group and a manifest) into
// this node's data directory: every group of the manifest that the shard
// map makes this node a voter of, into groups/<id>/, with all the group's
// voters in its configuration. Each node of the map restores the same
// directory, so each group starts on its voters at the backup's index, as
// one group; gsd then starts with the same --shard-map and no --join. The
// membership group's voters are its shard's in the map, or every node of
// the map when the map lists no shard of that id. Without a shard map the
// manifest must hold group 0 alone: a one-node restore, as with --from.

// restorePlan is one group to restore on this node.
type restorePlan struct {
	file   wire.BackupGroupFile
	data   []byte
	voters map[string]string // id -> raft address; nil: this node alone
	dir    string
}

// restoreCluster restores the cluster backup in o.cluster for this node
// and returns what it wrote, one line per group. Every group's file is
// checked (length, SHA-256, each world's seq and hash as the manifest
// records them) before anything is written.
func (o *restoreOptions) restoreCluster(cfg store.RestoreConfig) ([]string, error) {
	m, err := readManifest(o.cluster)
	if err != nil {
		return nil, err
	}
	var smap *shard.Map
	if o.shardMap != "" {
		if smap, err = shard.LoadMap(o.shardMap); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		n, ok := smap.Nodes[cfg.ID]
		if !ok {
			return nil, fmt.Errorf("restore: node %s is not in the shard map %s", cfg.ID, o.shardMap)
		}
		cfg.Advertise = n.Raft
	} else if len(m.Groups) != 1 || m.Groups[0].Group != 0 {
		return nil, fmt.Errorf("restore: the backup in %s holds %d groups: give the cluster's --shard-map", o.cluster, len(m.Groups))
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "raft.db")); err == nil {
		return nil, fmt.Errorf("%w: %s", store.ErrDataDirInUse, cfg.Dir)
	}
	var plans []restorePlan
	var out []string
	for _, g := range m.Groups {
		p := restorePlan{file: g, dir: cfg.Dir}
		if smap != nil {
			if p.voters = groupVoters(smap, g.Group); p.voters[cfg.ID] == "" {
				out = append(out, fmt.Sprintf("group %d: skipped, node %s is not its voter", g.Group, cfg.ID))
				continue
			}
			p.dir = shard.GroupDir(cfg.Dir, g.Group)
			if _, err := os.Stat(filepath.Join(p.dir, "raft.db")); err == nil {
				// Refused before any group is written (store.Restore
				// would refuse it only in the loop below).
				return nil, fmt.Errorf("restore group %d: %w: %s", g.Group, store.ErrDataDirInUse, p.dir)
			}
		}
		if p.data, err = readGroupFile(o.cluster, g, cfg.FSM); err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	for _, p := range plans {
		c := cfg
		c.Dir, c.Voters = p.dir, p.voters
		index, err := store.Restore(c, bytes.NewReader(p.data))
		if err != nil {
			return nil, fmt.Errorf("restore group %d: %w", p.file.Group, err)
		}
		out = append(out, fmt.Sprintf("group %d: restored (index %d, %d worlds) into %s with voters %v",
			p.file.Group, index, len(p.file.Worlds), p.dir, slices.Sorted(maps.Keys(p.voters))))
	}
	return out, nil
}

// groupVoters returns group g's voters by the map: its shard's, else every
// node's (the membership group when no shard has its id).
func groupVoters(m *shard.Map, g uint64) map[string]string {
	voters := map[string]string{}
	if s, ok := m.Shard(g); ok {
		for _, id := range s.Voters {
			voters[id] = m.Nodes[id].Raft
		}
		return voters
	}
	if g != m.Membership {
		return voters
	}
	for id, n := range m.Nodes {
		voters[id] = n.Raft
	}
	return voters
}

// readManifest reads a cluster backup's manifest.
func readManifest(dir string) (*wire.BackupManifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, wire.BackupManifestFile))
	if err != nil {
		return nil, fmt.Errorf("restore: %w (a cluster backup's directory has a manifest: gsdctl backup --cluster)", err)
	}
	var m wire.BackupManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("restore: manifest %s: %w", dir, err)
	}
	if m.Format != wire.BackupManifestFormat {
		return nil, fmt.Errorf("restore: manifest format %d, this binary reads %d", m.Format, wire.BackupManifestFormat)
	}
	if len(m.Groups) == 0 {
		return nil, fmt.Errorf("restore: the manifest in %s lists no group", dir)
	}
	return &m, nil
}

// readGroupFile reads g's snapshot and checks it against the manifest.
func readGroupFile(dir string, g wire.BackupGroupFile, cfg fsm.Config) ([]byte, error) {
	if g.File == "" || filepath.Base(g.File) != g.File {
		return nil, fmt.Errorf("restore: group %d: file %q is not a file name in the backup's directory", g.Group, g.File)
	}
	data, err := os.ReadFile(filepath.Join(dir, g.File))
	if err != nil {
		return nil, fmt.Errorf("restore: group %d: %w", g.Group, err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != g.Size || hex.EncodeToString(sum[:]) != g.SHA256 {
		return nil, fmt.Errorf("restore: group %d: %s has %d bytes and SHA-256 %x, the manifest says %d and %s",
			g.Group, g.File, len(data), sum, g.Size, g.SHA256)
	}
	f, err := fsm.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := f.Restore(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("restore: group %d: %s does not load: %w", g.Group, g.File, err)
	}
	var got []wire.BackupWorld
	for _, wi := range f.Worlds() {
		got = append(got, wire.BackupWorld{ID: wi.ID, Seq: wi.Seq, Index: wi.Index, Hash: wire.Hash(wire.HashString(wi.Hash)), Incarnation: wi.Incarnation})
	}
	want := g.Worlds
	if len(want) == 0 {
		want = nil
	}
	if !slices.Equal(got, want) {
		return nil, fmt.Errorf("restore: group %d: the worlds in %s differ from the manifest's: %v, want %v", g.Group, g.File, got, want)
	}
	return data, nil
}

// errClusterAndFrom refuses both sources at once.
var errClusterAndFrom = errors.New("give --from FILE or --cluster DIR, not both")
