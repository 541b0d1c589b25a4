package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// clusterBackupDir writes a cluster backup of groups, each holding one
// world named after it with seq events, and returns its directory and
// manifest (the tests edit and rewrite it).
func clusterBackupDir(t *testing.T, groups ...uint64) (string, *wire.BackupManifest) {
	t.Helper()
	dir := t.TempDir()
	m := &wire.BackupManifest{Format: wire.BackupManifestFormat}
	for _, g := range groups {
		f, err := fsm.New(fsm.DefaultConfig())
		require.NoError(t, err)
		world := fmt.Sprintf("w%d", g)
		cmds := []fsm.Command{{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: world}}}
		for seq := uint64(1); seq <= 3; seq++ {
			cmds = append(cmds, fsm.Command{Kind: fsm.CmdAction, Action: &fsm.Action{World: world, Player: "p1", Seq: seq,
				Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "n", By: 1}}}})
		}
		for i, c := range cmds {
			for _, r := range f.Apply(uint64(i+1), fsm.EncodeBatch(&fsm.Batch{Time: 1, Commands: []fsm.Command{c}})) {
				require.NoError(t, r.Err)
			}
		}
		var buf bytes.Buffer
		_, err = f.Snapshot().WriteTo(&buf)
		require.NoError(t, err)
		name := fmt.Sprintf("group-%d.backup", g)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o600))
		sum := sha256.Sum256(buf.Bytes())
		wi, err := f.World(world)
		require.NoError(t, err)
		m.Groups = append(m.Groups, wire.BackupGroupFile{Group: g, File: name, Size: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:]),
			Index: f.AppliedIndex(), Term: 1, Node: "n1",
			Worlds: []wire.BackupWorld{{ID: world, Seq: wi.Seq, Index: wi.Index, Hash: wire.Hash(wire.HashString(wi.Hash)), Incarnation: wi.Incarnation}}})
	}
	writeManifest(t, dir, m)
	return dir, m
}

func writeManifest(t *testing.T, dir string, m *wire.BackupManifest) {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, wire.BackupManifestFile), b, 0o600))
}

// TestRestoreClusterWritesTheGroupsOfThisNodeWithTheirVoters: with a
// shard map, a node restores the groups it is a voter of into groups/<id>
// (the membership group with every node of the map) and skips the others;
// without one, a backup of group 0 alone restores as with --from.
func TestRestoreClusterWritesTheGroupsOfThisNodeWithTheirVoters(t *testing.T) {
	t.Parallel()
	dir, _ := clusterBackupDir(t, 0, 1, 2)
	smap := writeFile(t, `{
  "nodes": {"n1": {"raft": "127.0.0.1:7001", "http": "127.0.0.1:8001"}, "n2": {"raft": "127.0.0.1:7002", "http": "127.0.0.1:8002"}},
  "shards": [{"id": 1, "voters": ["n1", "n2"]}, {"id": 2, "voters": ["n1"]}]
}`)
	data := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"restore", "--cluster", dir, "--shard-map", smap, "--data-dir", data, "--id", "n2"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	requireContains(t, out.String(), "group 0: restored", "voters [n1 n2]", "group 1: restored", "group 2: skipped, node n2 is not its voter")
	require.FileExists(t, filepath.Join(shard.GroupDir(data, 0), "raft.db"))
	require.FileExists(t, filepath.Join(shard.GroupDir(data, 1), "raft.db"))
	require.NoDirExists(t, shard.GroupDir(data, 2))

	one, _ := clusterBackupDir(t, 0)
	data = t.TempDir()
	out.Reset()
	code = run(context.Background(), []string{"restore", "--cluster", one, "--data-dir", data, "--id", "n1", "--raft-addr", "127.0.0.1:7001"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.FileExists(t, filepath.Join(data, "raft.db"), "no shard map: the single-group layout")
	requireContains(t, out.String(), "group 0: restored")
}

func TestRestoreClusterRefusesABackupThatDiffersFromItsManifest(t *testing.T) {
	t.Parallel()
	smap := writeFile(t, `{"nodes": {"n1": {"raft": "127.0.0.1:7001", "http": "127.0.0.1:8001"}}, "shards": [{"id": 1, "voters": ["n1"]}]}`)
	for _, tc := range []struct {
		name string
		edit func(dir string, m *wire.BackupManifest)
		args []string
		want string
	}{
		{"no manifest", func(dir string, _ *wire.BackupManifest) { os.Remove(filepath.Join(dir, wire.BackupManifestFile)) }, nil, "a cluster backup's directory has a manifest"},
		{"bad manifest", func(dir string, _ *wire.BackupManifest) {
			os.WriteFile(filepath.Join(dir, wire.BackupManifestFile), []byte("{"), 0o600)
		}, nil, "manifest"},
		{"newer format", func(_ string, m *wire.BackupManifest) { m.Format = 2 }, nil, "manifest format 2"},
		{"no groups", func(_ string, m *wire.BackupManifest) { m.Groups = nil }, nil, "lists no group"},
		{"several groups without a map", nil, []string{"--shard-map", ""}, "give the cluster's --shard-map"},
		{"node not in the map", nil, []string{"--id", "n9"}, "node n9 is not in the shard map"},
		{"bad map", nil, []string{"--shard-map", writeFile(t, "{")}, "shard map"},
		{"changed file", func(dir string, _ *wire.BackupManifest) {
			os.WriteFile(filepath.Join(dir, "group-1.backup"), []byte("junk"), 0o600)
		}, nil, "the manifest says"},
		{"missing file", func(dir string, _ *wire.BackupManifest) { os.Remove(filepath.Join(dir, "group-1.backup")) }, nil, "no such file"},
		{"file outside", func(_ string, m *wire.BackupManifest) { m.Groups[1].File = "../group-1.backup" }, nil, "not a file name"},
		{"other worlds", func(_ string, m *wire.BackupManifest) { m.Groups[1].Worlds[0].Seq = 2 }, nil, "differ from the manifest's"},
		{"not a snapshot", func(dir string, m *wire.BackupManifest) {
			os.WriteFile(filepath.Join(dir, "group-1.backup"), []byte("junk"), 0o600)
			sum := sha256.Sum256([]byte("junk"))
			m.Groups[1].Size, m.Groups[1].SHA256 = 4, hex.EncodeToString(sum[:])
		}, nil, "does not load"},
		{"both sources", nil, []string{"--from", "f"}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, m := clusterBackupDir(t, 0, 1)
			if tc.edit != nil {
				tc.edit(dir, m)
				if _, err := os.Stat(filepath.Join(dir, wire.BackupManifestFile)); err == nil && tc.name != "bad manifest" {
					writeManifest(t, dir, m)
				}
			}
			data := t.TempDir()
			args := append([]string{"restore", "--cluster", dir, "--shard-map", smap, "--data-dir", data, "--id", "n1"}, tc.args...)
			var errb bytes.Buffer
			require.Equal(t, 1, run(context.Background(), args, io.Discard, &errb))
			requireContains(t, errb.String(), tc.want)
			entries, err := os.ReadDir(data)
			require.NoError(t, err)
			require.Empty(t, entries, "nothing is written")
		})
	}

	// A data dir in the single-group layout is in use.
	dir, _ := clusterBackupDir(t, 0, 1)
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "raft.db"), nil, 0o600))
	var errb bytes.Buffer
	require.Equal(t, 1, run(context.Background(), []string{"restore", "--cluster", dir, "--shard-map", smap, "--data-dir", data, "--id", "n1"}, io.Discard, &errb))
	requireContains(t, errb.String(), "already holds raft state")
}
