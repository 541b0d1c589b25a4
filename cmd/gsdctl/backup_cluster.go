package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// clusterBackup is gsdctl backup --cluster's flags.
type clusterBackup struct {
	dir      string
	groups   []uint
	shardMap string
}

// shardMapFile is what a cluster backup reads of gsd's shard map (shard.Map,
// docs in shard/DESIGN.md): the groups and the nodes' HTTP addresses.
// gsdctl does not link shard, and ignores the other keys.
type shardMapFile struct {
	Membership uint64 `json:"membership"`
	Nodes      map[string]struct {
		HTTP string `json:"http"`
	} `json:"nodes"`
	Shards []struct {
		ID uint64 `json:"id"`
	} `json:"shards"`
}

// plan returns the groups to back up, in order, and the addresses to ask
// besides --addr.
func (cb clusterBackup) plan() (groups []uint64, addrs []string, err error) {
	for _, g := range cb.groups {
		groups = append(groups, uint64(g))
	}
	if cb.shardMap != "" {
		b, err := os.ReadFile(cb.shardMap)
		if err != nil {
			return nil, nil, fmt.Errorf("shard map: %w", err)
		}
		var m shardMapFile
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, nil, fmt.Errorf("shard map %s: %w", cb.shardMap, err)
		}
		if len(cb.groups) == 0 {
			groups = append(groups, m.Membership)
			for _, s := range m.Shards {
				groups = append(groups, s.ID)
			}
		}
		for _, n := range m.Nodes {
			addrs = append(addrs, n.HTTP)
		}
		slices.Sort(addrs)
	}
	if len(groups) == 0 {
		groups = []uint64{0}
	}
	slices.Sort(groups)
	return slices.Compact(groups), addrs, nil
}

// backupCluster writes one snapshot per group, each from its leader, into
// cb.dir and the manifest last: a directory with a manifest is a whole
// backup. A failure leaves no manifest (and removes what it wrote).
func (a *app) backupCluster(ctx context.Context, cb clusterBackup) (err error) {
	groups, mapAddrs, err := cb.plan()
	if err != nil {
		return usageError{err}
	}
	if err := os.MkdirAll(cb.dir, 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if entries, err := os.ReadDir(cb.dir); err != nil {
		return fmt.Errorf("backup: %w", err)
	} else if len(entries) > 0 {
		return fmt.Errorf("backup: %s is not empty: a cluster backup goes into a new directory", cb.dir)
	}
	defer func() {
		if err != nil {
			for _, g := range groups {
				os.Remove(filepath.Join(cb.dir, groupFile(g)))
			}
		}
	}()
	addrs := append(slices.Clone(a.addrs), mapAddrs...)
	c := a.clientFor(slices.Compact(addrs))
	defer c.Close()
	m := wire.BackupManifest{Format: wire.BackupManifestFormat, Created: time.Now().UTC().Format(time.RFC3339)}
	for _, g := range groups {
		gf, err := a.backupGroup(ctx, c, cb.dir, g)
		if err != nil {
			return err
		}
		m.Groups = append(m.Groups, gf)
		fmt.Fprintf(a.stdout, "group %d: node %s at index %d (term %d): %d worlds, %d bytes in %s\n",
			g, gf.Node, gf.Index, gf.Term, len(gf.Worlds), gf.Size, filepath.Join(cb.dir, gf.File))
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := writeFileSynced(cb.dir, wire.BackupManifestFile, append(b, '\n')); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(a.stdout, "cluster backup of %d groups in %s\n", len(groups), cb.dir)
	return nil
}

// groupFile is the name of group g's snapshot in a cluster backup.
func groupFile(g uint64) string { return fmt.Sprintf("group-%d.backup", g) }

// backupGroup streams group g's backup from its leader into dir.
func (a *app) backupGroup(ctx context.Context, c *client.Client, dir string, g uint64) (wire.BackupGroupFile, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(a.timeout, cancel) // until the answer starts
	b, err := c.BackupGroup(ctx, g)
	if !timer.Stop() && err == nil {
		b.Body.Close()
		err = context.DeadlineExceeded
	}
	if err != nil {
		return wire.BackupGroupFile{}, fmt.Errorf("backup: group %d: %w", g, err)
	}
	defer b.Body.Close()
	h := sha256.New()
	f, err := os.CreateTemp(dir, "."+groupFile(g)+".*.part")
	if err != nil {
		return wire.BackupGroupFile{}, fmt.Errorf("backup: %w", err)
	}
	defer func() {
		f.Close()           // a second Close fails harmlessly
		os.Remove(f.Name()) // nothing there once renamed
	}()
	n, err := io.Copy(io.MultiWriter(f, h), b.Body)
	if err != nil {
		return wire.BackupGroupFile{}, fmt.Errorf("backup: group %d: stream broke after %d of %d bytes: %w", g, n, b.Size, err)
	}
	if n != b.Size {
		return wire.BackupGroupFile{}, fmt.Errorf("backup: group %d: got %d of %d bytes", g, n, b.Size)
	}
	worlds, err := b.Worlds()
	if err != nil {
		return wire.BackupGroupFile{}, fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		return wire.BackupGroupFile{}, fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return wire.BackupGroupFile{}, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, groupFile(g))); err != nil {
		return wire.BackupGroupFile{}, fmt.Errorf("backup: %w", err)
	}
	return wire.BackupGroupFile{Group: g, File: groupFile(g), Size: n, SHA256: hex.EncodeToString(h.Sum(nil)),
		Index: b.Index, Term: b.Term, Node: b.Node, Worlds: worlds}, nil
}

// writeFileSynced writes name in dir through a synced temporary file.
func writeFileSynced(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".*.part")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}
