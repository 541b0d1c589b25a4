package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
)

func TestCheckpointHealFlagNeedsCheckpointsAndSetsTheStoreCallback(t *testing.T) {
	fs := rootFlags(t, "--checkpoint-heal", "--checkpoint-interval", "1s")
	require.Equal(t, "true", get(t, fs, "checkpoint-heal"))
	require.ErrorContains(t, (&checkpointOptions{heal: true}).check(), "--checkpoint-interval")
	require.NoError(t, (&checkpointOptions{heal: true, interval: time.Second}).check())

	_, h := newHealer(context.Background(), "n1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	var cfg store.Config
	h.apply(&cfg, false)
	require.Nil(t, cfg.HealReplica, "off by default")
	h.apply(&cfg, true)
	require.NotNil(t, cfg.HealReplica)
	err := cfg.HealReplica(context.Background(), 0, fsm.NodeInfo{ID: "n2"})
	require.ErrorContains(t, err, "not started", "before the edge exists")
	require.NotNil(t, cfg.ConfirmMark)
	_, _, err = cfg.ConfirmMark(context.Background(), 0, fsm.NodeInfo{ID: "n2"}, "w", 1)
	require.ErrorContains(t, err, "not started")
	_, _, err = h.mark(0, "w", 1)
	require.ErrorIs(t, err, fsm.ErrNotSupported, "no store yet")
	_, _, err = h.mark(3, "w", 1)
	require.ErrorIs(t, err, fsm.ErrNotSupported, "a shard map's group")
}

func TestHealOrderEndsTheRunOnceAndRefusesOtherGroups(t *testing.T) {
	ctx, h := newHealer(context.Background(), "n3", slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.ErrorIs(t, h.take(7, "n1"), fsm.ErrNotSupported)
	require.NoError(t, ctx.Err())
	require.NoError(t, h.finish(t.TempDir()), "no order: nothing moves")
	require.NoError(t, h.take(0, "n1"))
	require.NoError(t, h.take(0, "n1"), "a retried order")
	require.ErrorIs(t, ctx.Err(), context.Canceled)

	dir := t.TempDir()
	for _, f := range []string{"raft.db", "events.db", "analytics.db"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(f), 0o600))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "snapshots", "1-2-3"), 0o700))
	require.ErrorIs(t, h.finish(dir), errHealed)
	aside, err := filepath.Glob(dir + ".diverged-*")
	require.NoError(t, err)
	require.Len(t, aside, 1)
	t.Cleanup(func() { os.RemoveAll(aside[0]) })
	for _, f := range []string{"raft.db", "events.db"} {
		require.FileExists(t, filepath.Join(aside[0], f), "kept for forensics")
	}
	require.DirExists(t, filepath.Join(aside[0], "snapshots", "1-2-3"))
	require.NoFileExists(t, filepath.Join(dir, "events.db"))
	require.FileExists(t, filepath.Join(dir, "analytics.db"), "only the group's own files move")
	hasDB, hasState, err := raftState(dir)
	require.NoError(t, err)
	require.True(t, hasDB, "an empty raft.db: the restart never bootstraps")
	require.False(t, hasState)
}

func TestMoveAsideFailsClearly(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+".diverged-x", nil, 0o600)) // a file where the directory goes
	t.Cleanup(func() { os.Remove(dir + ".diverged-x") })
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	_, err := moveAside(filepath.Join(blocker, "sub"), time.Now())
	require.ErrorContains(t, err, "move the diverged data aside")
}

// corruptSet rewrites, in the stopped node's raft log in dir, every set of
// entity.field to from into a set to to: what a disk that silently
// flipped a value would leave. The node replays it at its next start.
func corruptSet(t *testing.T, dir, entity, field string, from, to int64) {
	t.Helper()
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	require.NoError(t, err)
	defer logs.Close()
	first, err := logs.FirstIndex()
	require.NoError(t, err)
	last, err := logs.LastIndex()
	require.NoError(t, err)
	found := false
	for i := first; i <= last; i++ {
		var l raft.Log
		require.NoError(t, logs.GetLog(i, &l))
		if l.Type != raft.LogCommand {
			continue
		}
		b, err := fsm.DecodeBatch(l.Data)
		if err != nil {
			continue
		}
		changed := false
		for _, c := range b.Commands {
			if c.Kind != fsm.CmdAction {
				continue
			}
			for j := range c.Action.Ops {
				op := &c.Action.Ops[j]
				if op.Entity == entity && op.Field == field && op.Value.Compare(fsm.Int(from)) == 0 {
					op.Value, changed = fsm.Int(to), true
				}
			}
		}
		if changed {
			l.Data = fsm.EncodeBatch(b)
			require.NoError(t, logs.StoreLog(&l))
			found = true
		}
	}
	require.True(t, found, "no set of %s.%s to %d in the log", entity, field, from)
}

// healScenario: three nodes with checkpoints; n3's log is corrupted while
// it is stopped, so after its restart its state differs from the
// majority's and it reports the next checkpoint. It returns the nodes
// after the report reached the leader (n1), and n3's data dir.
func healScenario(t *testing.T, extra ...string) (n1, n2, n3 *testNode, dir3 string, flags []string) {
	// With the cluster secret: reports, questions and the heal order are
	// internal calls that carry it.
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	require.NoError(t, os.WriteFile(secret, []byte("heal-test-secret-0123456789abcdef0123\n"), 0o600))
	flags = append([]string{"--checkpoint-interval", "50ms", "--cluster-secret-file", secret}, extra...)
	n1 = startNode(t, "n1", t.TempDir(), flags...)
	n1.waitLeader(t)
	joined := append(flags, "--join", n1.http)
	n2 = startNode(t, "n2", t.TempDir(), joined...)
	dir3 = t.TempDir()
	n3 = startNode(t, "n3", dir3, joined...)
	n1.waitStatus(t, "has three voters", func(s client.Status) bool { return len(s.Servers) == 3 })
	n3.waitLeader(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n1.client(t)
	require.NoError(t, c.CreateWorld(ctx, "w", wire.Rules{}))
	_, err := c.Act(ctx, "w", client.ActionRequest{Player: "mallory", Seq: 1, Ops: []wire.Op{client.Set("mallory", "hp", wire.Int(50))}})
	require.NoError(t, err)
	_, err = c.Act(ctx, "w", incr("ann", 1, "ann", 1))
	require.NoError(t, err)
	c3 := n3.client(t)
	require.Eventually(t, func() bool { h, err := c3.Hash(ctx, "w", 0); return err == nil && h.Seq == 2 }, time.Minute, 20*time.Millisecond)
	require.Zero(t, n3.stop(t))
	corruptSet(t, dir3, "mallory", "hp", 50, 99)
	n3 = startNodeAt(t, "n3", dir3, n3.http, n3.raft, joined...)
	// A change after n3's restart: the leader checkpoints the world again,
	// carrying its hash at a mark n3 replayed with its corrupted state.
	_, err = c.Act(ctx, "w", incr("ann", 2, "ann", 1))
	require.NoError(t, err)
	n1.waitStatus(t, "names n3 as odd", func(s client.Status) bool {
		return s.LastMismatch != nil && len(s.LastMismatch.Reporters) == 1 && s.LastMismatch.Reporters[0].Node == "n3" && !s.LastMismatch.Majority
	})
	return n1, n2, n3, dir3, flags
}

// noticeLine waits for the event of world w with a checkpoint_mismatch
// notice in addr's event stream (the admin's view: no auth here).
func noticeLine(t *testing.T, addr string) string {
	t.Helper()
	for _, l := range eventLines(t, addr, "w", 4) {
		if strings.Contains(string(l), `"notice"`) {
			return string(l)
		}
	}
	t.Fatalf("no notice in the first 4 events of %s", addr)
	return ""
}

// The Must show with real nodes: a replica whose disk silently
// corrupted its state is named by the next checkpoint, the finding is an
// event on the world, and with --checkpoint-heal the leader removes it,
// the node moves its data aside and exits 75, and once restarted it is a
// voter again with the majority's state.
func TestCorruptedFollowerIsHealedWithCheckpointHeal(t *testing.T) {
	t.Parallel()
	n1, _, n3, dir3, flags := healScenario(t, "--checkpoint-heal")
	require.Equal(t, exitHealed, n3.exited(t), "the odd node exits to be restarted empty")
	requireContains(t, n3.stderr.String(), "checkpoint heal order", "moved aside")
	aside, err := filepath.Glob(dir3 + ".diverged-*")
	require.NoError(t, err)
	require.Len(t, aside, 1)
	require.FileExists(t, filepath.Join(aside[0], "raft.db"), "the diverged state is kept")

	n3 = startNodeAt(t, "n3", dir3, n3.http, n3.raft, append(flags, "--join", n1.http)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c1, c3 := n1.client(t), n3.client(t)
	require.Eventually(t, func() bool {
		h1, err := c1.Hash(ctx, "w", 0)
		if err != nil {
			return false
		}
		h3, err := c3.Hash(ctx, "w", h1.Seq)
		return err == nil && h3.Hash == h1.Hash
	}, time.Minute, 20*time.Millisecond, "n3 has the majority's state again")
	st := n1.waitStatus(t, "n3 is a voter again", func(s client.Status) bool {
		for _, srv := range s.Servers {
			if srv.ID == "n3" {
				return srv.Suffrage == "Voter"
			}
		}
		return false
	})
	require.Len(t, st.Servers, 3)
	metrics := string(httpGet(t, n1.http, "/metrics"))
	requireContains(t, metrics, `gsd_checkpoint_heals_total{group="0",outcome="healed"} 1`)
	line := noticeLine(t, n1.http)
	requireContains(t, line, `"kind":"checkpoint_mismatch"`, `"node":"n3"`, `"leader":"n1"`)
	require.Equal(t, line, noticeLine(t, n3.http), "the healed node serves the same event")
}

// Without --checkpoint-heal the odd replica is only named: an event on the
// world, the leader's status, and it stays a voter with its state.
func TestCorruptedFollowerIsOnlyReportedWithoutCheckpointHeal(t *testing.T) {
	t.Parallel()
	n1, _, n3, _, _ := healScenario(t)
	requireContains(t, noticeLine(t, n1.http), `"kind":"checkpoint_mismatch"`, `"node":"n3"`)
	require.False(t, n3.hasExited())
	st := n1.waitStatus(t, "three voters", func(s client.Status) bool { return len(s.Servers) == 3 })
	require.Len(t, st.Servers, 3)
	require.NotContains(t, string(httpGet(t, n1.http, "/metrics")), `gsd_checkpoint_heals_total{group="0",outcome="healed"} 1`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h1, err := n1.client(t).Hash(ctx, "w", 0)
	require.NoError(t, err)
	var h3 client.HashPoint
	c3 := n3.client(t)
	require.Eventually(t, func() bool {
		h3, err = c3.Hash(ctx, "w", h1.Seq)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.NotEqual(t, h1.Hash, h3.Hash, "n3 keeps its corrupted state")
}
