package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/testbin"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// shardNode is a gsd process of a sharded test cluster.
type shardNode struct {
	id, http, raft string
	cmd            *exec.Cmd
	log            bytes.Buffer
}

func (n *shardNode) start(t *testing.T, bin, dir, smap string, extra ...string) {
	t.Helper()
	n.log.Reset()
	args := append([]string{"--id", n.id, "--data-dir", dir, "--http-addr", n.http, "--raft-addr", n.raft, "--shard-map", smap,
		"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--no-sync", "--disk-stall-timeout", "0"}, extra...)
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = &n.log, &n.log
	require.NoError(t, n.cmd.Start())
	t.Cleanup(func() { n.stop(t) })
}

func (n *shardNode) stop(t *testing.T) {
	t.Helper()
	if n.cmd == nil {
		return
	}
	require.NoError(t, n.cmd.Process.Signal(os.Interrupt))
	require.NoError(t, n.cmd.Wait(), "gsd %s: %s", n.id, n.log.String())
	n.cmd = nil
}

// waitStatus polls n's status until ok accepts it.
func (n *shardNode) waitStatus(t *testing.T, what string, ok func(client.Status) bool) {
	t.Helper()
	c := client.New([]string{n.http})
	defer c.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := c.Status(ctx)
		return err == nil && ok(s)
	}, time.Minute, 20*time.Millisecond, "%s: %s", n.id, what)
}

// TestClusterBackupRestoresEveryShardWithTheSameHashes: a cluster of two
// nodes running groups 0, 1 and 2 (a shard map) is backed up with one
// snapshot per group from its leader; the nodes lose their data, each
// restores the backup with gsd restore --cluster, and the cluster comes
// back with every world at the seq and hash the manifest recorded.
func TestClusterBackupRestoresEveryShardWithTheSameHashes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gsd processes")
	}
	bin := testbin.GSD(t)
	t.Setenv("GOCOVERDIR", testbin.CoverDir(t))
	nodes := []*shardNode{{id: "n1", http: freeAddr(t), raft: freeAddr(t)}, {id: "n2", http: freeAddr(t), raft: freeAddr(t)}}
	b, err := json.Marshal(map[string]any{
		"nodes": map[string]any{
			"n1": map[string]string{"raft": nodes[0].raft, "http": nodes[0].http},
			"n2": map[string]string{"raft": nodes[1].raft, "http": nodes[1].http},
		},
		"shards": []map[string]any{{"id": 1, "voters": []string{"n1", "n2"}}, {"id": 2, "voters": []string{"n1", "n2"}}},
		"worlds": map[string]uint64{"a": 1, "b": 2, "c": 2},
	})
	require.NoError(t, err)
	smap := filepath.Join(t.TempDir(), "shards.json")
	require.NoError(t, os.WriteFile(smap, b, 0o600))
	nodes[0].start(t, bin, filepath.Join(t.TempDir(), "n1"), smap)
	nodes[0].waitStatus(t, "leads", func(s client.Status) bool { return s.Leader == "n1" })
	nodes[1].start(t, bin, filepath.Join(t.TempDir(), "n2"), smap, "--join", nodes[0].http)
	nodes[0].waitStatus(t, "group 0 has two voters", func(s client.Status) bool { return len(s.Servers) == 2 })

	c := client.New([]string{nodes[0].http, nodes[1].http}, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	worlds := map[string]uint64{"a": 1, "b": 2, "c": 2}
	for w := range worlds {
		require.NoError(t, c.CreateWorld(ctx, w, wire.Rules{}))
		for seq := uint64(1); seq <= 4; seq++ {
			_, err := c.Act(ctx, w, client.ActionRequest{Player: "p1", Seq: seq, Ops: []wire.Op{client.Incr("e1", "n", int64(seq))}})
			require.NoError(t, err)
		}
	}

	dir := filepath.Join(t.TempDir(), "backup")
	out := mustRun(t, "--addr", nodes[1].http, "backup", "--cluster", dir, "--shard-map", smap)
	require.Contains(t, out, "cluster backup of 3 groups in "+dir)
	raw, err := os.ReadFile(filepath.Join(dir, wire.BackupManifestFile))
	require.NoError(t, err)
	var m wire.BackupManifest
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Equal(t, wire.BackupManifestFormat, m.Format)
	require.Len(t, m.Groups, 3)
	recorded := map[string]wire.BackupWorld{}
	for i, g := range m.Groups {
		require.Equal(t, uint64(i), g.Group)
		require.FileExists(t, filepath.Join(dir, g.File))
		require.Len(t, g.SHA256, 64)
		for _, w := range g.Worlds {
			require.Equal(t, worlds[w.ID], g.Group, "world %s in group %d", w.ID, g.Group)
			recorded[w.ID] = w
		}
	}
	require.Len(t, recorded, 3)
	for w := range worlds {
		h, err := c.Hash(ctx, w, 4)
		require.NoError(t, err)
		require.Equal(t, wire.BackupWorld{ID: w, Seq: 4, Index: h.Index, Hash: h.Hash, Incarnation: recorded[w].Incarnation}, recorded[w], w)
	}

	// Writes after the backup are not in it: the restore goes back to the
	// seqs the manifest recorded.
	for w := range worlds {
		ev, err := c.Act(ctx, w, client.ActionRequest{Player: "p2", Seq: 1, Ops: []wire.Op{client.Incr("e1", "n", 100)}})
		require.NoError(t, err)
		require.Equal(t, uint64(5), ev.Seq)
	}

	// The disks are lost: each node restores the backup into a new data dir.
	for _, n := range nodes {
		n.stop(t)
	}
	dirs := map[string]string{}
	for _, n := range nodes {
		dirs[n.id] = filepath.Join(t.TempDir(), n.id+"-restored")
		out, err := exec.Command(bin, "restore", "--cluster", dir, "--shard-map", smap, "--data-dir", dirs[n.id], "--id", n.id).CombinedOutput()
		require.NoError(t, err, "%s", out)
		for g := range 3 {
			require.Contains(t, string(out), fmt.Sprintf("group %d: restored", g))
		}
	}
	out2, err := exec.Command(bin, "restore", "--cluster", dir, "--shard-map", smap, "--data-dir", dirs["n1"], "--id", "n1").CombinedOutput()
	require.Error(t, err, "a second restore into the same data dir")
	require.Contains(t, string(out2), "already holds raft state")
	for _, n := range nodes {
		n.start(t, bin, dirs[n.id], smap)
	}
	for w, rec := range recorded {
		require.Eventually(t, func() bool {
			h, err := c.Hash(ctx, w, 0)
			return err == nil && h.Seq == rec.Seq && h.Hash == rec.Hash
		}, time.Minute, 20*time.Millisecond, "world %s back at seq %d hash %s", w, rec.Seq, rec.Hash)
		ev, err := c.Act(ctx, w, client.ActionRequest{Player: "p1", Seq: 5, Ops: []wire.Op{client.Incr("e1", "n", 5)}})
		require.NoError(t, err, "world %s takes writes after the restore", w)
		require.Equal(t, uint64(5), ev.Seq)
		require.False(t, ev.Duplicate)
		e, err := c.Entity(ctx, w, "e1", client.Linearizable)
		require.NoError(t, err)
		n, _ := e.Int("n")
		require.Equal(t, int64(1+2+3+4+5), n, "world %s: the write after the backup is not restored", w)
	}
}

func TestClusterBackupRefusesBadArguments(t *testing.T) {
	t.Parallel()
	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "--out", "f", "--cluster", t.TempDir()}, "not both"},
		{[]string{"backup", "--cluster", full}, "is not empty"},
		{[]string{"backup", "--cluster", t.TempDir(), "--shard-map", filepath.Join(t.TempDir(), "none")}, "shard map"},
		{[]string{"--addr", freeAddr(t), "--timeout", "1s", "backup", "--cluster", t.TempDir()}, "backup: group 0"},
	} {
		code, _, errOut := ctl(t, "", tc.args...)
		require.Equal(t, 1, code, "%v", tc.args)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
}
