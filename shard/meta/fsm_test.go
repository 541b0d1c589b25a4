package meta

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// applyTo applies c to f as the next log entry and returns its result.
func applyTo(t *testing.T, f *FSM, c Command) (Result, error) {
	t.Helper()
	b, err := c.Encode()
	require.NoError(t, err)
	a, ok := f.Apply(&raft.Log{Type: raft.LogCommand, Data: b}).(*Applied)
	require.True(t, ok)
	return a.Result, a.Err
}

func mustApply(t *testing.T, f *FSM, c Command) Result {
	t.Helper()
	res, err := applyTo(t, f, c)
	require.NoError(t, err, "%+v", c)
	return res
}

// withNodes is an FSM with nodes n1..nN.
func withNodes(t *testing.T, n int) *FSM {
	t.Helper()
	f := NewFSM(0)
	for i := 1; i <= n; i++ {
		mustApply(t, f, Command{Op: OpAddNode, Node: fmt.Sprintf("n%d", i),
			Raft: fmt.Sprintf("10.0.0.%d:7000", i), HTTP: fmt.Sprintf("10.0.0.%d:8080", i)})
	}
	return f
}

func TestAnEmptyMetaGroupHasNoShards(t *testing.T) {
	f := NewFSM(0)
	v := f.View()
	require.Empty(t, v.Map.Shards)
	require.Empty(t, v.Leaders)
	_, err := applyTo(t, f, Command{Op: OpPlaceWorld, World: "w"})
	require.ErrorIs(t, err, ErrRefused)
	_, err = applyTo(t, f, Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
	require.ErrorIs(t, err, ErrRefused, "no nodes to place voters on")
}

func TestShardsWorldsAndNodesChangeTheMap(t *testing.T) {
	f := withNodes(t, 5)
	res := mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
	require.Equal(t, []string{"n1", "n2", "n3"}, res.Voters)
	res = mustApply(t, f, Command{Op: OpCreateShard, Shard: 2, Replicas: 3})
	require.Equal(t, []string{"n1", "n4", "n5"}, res.Voters, "the nodes with the fewest seats first, then by id")
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 7, Voters: []string{"n5", "n2"}})

	m := f.View().Map
	require.NoError(t, m.Validate())
	require.Equal(t, []shard.MapShard{{ID: 1, Voters: []string{"n1", "n2", "n3"}}, {ID: 2, Voters: []string{"n1", "n4", "n5"}}, {ID: 7, Voters: []string{"n2", "n5"}}}, m.Shards)
	require.Equal(t, "10.0.0.4:8080", m.Nodes["n4"].HTTP)

	// Unlisted worlds hash as a static map with the same shards places them.
	static := &shard.Map{Nodes: m.Nodes, Shards: m.Shards}
	require.NoError(t, static.Validate())
	for i := range 50 {
		w := fmt.Sprintf("world-%d", i)
		require.Equal(t, static.ShardOf(w), m.ShardOf(w))
	}

	require.Equal(t, uint64(7), mustApply(t, f, Command{Op: OpAssignWorld, World: "a", Shard: 7}).Shard)
	require.Equal(t, uint64(7), f.View().Map.ShardOf("a"))
	_, err := applyTo(t, f, Command{Op: OpAssignWorld, World: "a", Shard: 9})
	require.ErrorIs(t, err, ErrRefused)
	_, err = applyTo(t, f, Command{Op: OpCreateShard, Shard: 7, Replicas: 1})
	require.ErrorIs(t, err, ErrRefused, "shard 7 exists")
	_, err = applyTo(t, f, Command{Op: OpCreateShard, Shard: 8, Voters: []string{"n1", "n9"}})
	require.ErrorIs(t, err, ErrRefused, "n9 is not a node")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = applyTo(t, f, Command{Op: OpRemoveShard, Shard: 7})
	require.ErrorIs(t, err, ErrRefused, "shard 7 holds world a")
	require.NotErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "still holds 1 worlds")
	_, err = applyTo(t, f, Command{Op: OpRemoveNode, Node: "n5"})
	require.ErrorIs(t, err, ErrRefused, "n5 is a voter")
	require.NotErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, `node "n5" is a voter of shards [2 7]`, "the refusal names every shard left to evacuate")
	_, err = applyTo(t, f, Command{Op: OpRemoveNode, Node: "n9"})
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorIs(t, err, ErrNotFound)

	mustApply(t, f, Command{Op: OpAssignWorld, World: "a", Shard: 1})
	mustApply(t, f, Command{Op: OpRemoveShard, Shard: 7})
	_, err = applyTo(t, f, Command{Op: OpRemoveShard, Shard: 7})
	require.ErrorIs(t, err, ErrRefused)
	mustApply(t, f, Command{Op: OpRemoveShard, Shard: 2})
	mustApply(t, f, Command{Op: OpRemoveNode, Node: "n5"})
	m = f.View().Map
	require.NoError(t, m.Validate())
	require.NotContains(t, m.Nodes, "n5")
	require.Equal(t, []uint64{1}, m.ShardsOf("n1"))
}

func TestPlaceWorldPicksTheShardWithTheMostHeadroomOnce(t *testing.T) {
	f := withNodes(t, 3)
	for _, id := range []uint64{1, 2, 3} {
		mustApply(t, f, Command{Op: OpCreateShard, Shard: id, Replicas: 3})
	}
	mustApply(t, f, Command{Op: OpAssignWorld, World: "x", Shard: 1})
	require.Equal(t, uint64(2), mustApply(t, f, Command{Op: OpPlaceWorld, World: "a"}).Shard, "2 and 3 are empty: lowest id")
	require.Equal(t, uint64(3), mustApply(t, f, Command{Op: OpPlaceWorld, World: "b"}).Shard)
	require.Equal(t, uint64(2), mustApply(t, f, Command{Op: OpPlaceWorld, World: "a"}).Shard, "placed already: the same answer")
	// Equal worlds: the reported players decide.
	mustApply(t, f, Command{Op: OpReport, Node: "n1", Load: map[uint64]Load{1: {Players: 50}, 2: {Players: 10}, 3: {Players: 20}, 99: {Players: 1}}})
	require.Equal(t, uint64(2), mustApply(t, f, Command{Op: OpPlaceWorld, World: "c"}).Shard)
	require.Equal(t, uint64(3), mustApply(t, f, Command{Op: OpPlaceWorld, World: "d"}).Shard)
	require.Equal(t, uint64(1), mustApply(t, f, Command{Op: OpPlaceWorld, World: "e"}).Shard)
	m := f.View().Map
	for w, g := range map[string]uint64{"a": 2, "b": 3, "c": 2, "d": 3, "e": 1, "x": 1} {
		require.Equal(t, g, m.ShardOf(w), w)
	}
}

func TestLeaderHintsKeepTheNewestTerm(t *testing.T) {
	f := withNodes(t, 3)
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
	before := f.View()
	mustApply(t, f, Command{Op: OpReport, Node: "n1", Leads: map[uint64]uint64{1: 3, shard.MetaGroup: 1}})
	v := f.View()
	require.Same(t, before.Map, v.Map, "a report does not rebuild the map")
	require.Equal(t, map[uint64]string{1: "n1", shard.MetaGroup: "n1"}, v.Leaders)
	mustApply(t, f, Command{Op: OpReport, Node: "n2", Leads: map[uint64]uint64{1: 2}})
	require.Equal(t, "n1", f.View().Leaders[1], "an older term's report is late")
	mustApply(t, f, Command{Op: OpReport, Node: "n3", Leads: map[uint64]uint64{1: 4}})
	require.Equal(t, "n3", f.View().Leaders[1])
	require.Empty(t, before.Leaders, "a published view never changes")
}

func TestApplyRefusesUndecodableEntriesWithoutChangingState(t *testing.T) {
	f := withNodes(t, 1)
	v := f.View()
	a := f.Apply(&raft.Log{Type: raft.LogCommand, Data: []byte{9, '{'}}).(*Applied)
	require.ErrorIs(t, a.Err, ErrBadCommand)
	require.Same(t, v, f.View())
	a = f.Apply(&raft.Log{Type: raft.LogConfiguration}).(*Applied)
	require.NoError(t, a.Err)
	require.Same(t, v, f.View())
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func snapshotOf(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	require.NoError(t, err)
	defer snap.Release()
	var sink memSink
	require.NoError(t, snap.Persist(&sink))
	return sink.Bytes()
}

func TestSnapshotRestoresTheSameMap(t *testing.T) {
	f := withNodes(t, 5)
	mustApply(t, f, Command{Op: OpAddNode, Node: "n6", Raft: "10.0.0.6:7000", HTTP: "https://n6:8443", Region: "eu"})
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 2, Replicas: 5})
	mustApply(t, f, Command{Op: OpPlaceWorld, World: "a"})
	mustApply(t, f, Command{Op: OpReport, Node: "n2", Leads: map[uint64]uint64{1: 7}, Load: map[uint64]Load{2: {Players: 3, Events: 9}}})
	b := snapshotOf(t, f)
	require.Equal(t, snapshotVersion, b[0])

	g := NewFSM(0)
	mustApply(t, g, Command{Op: OpAddNode, Node: "stale", Raft: "h:1", HTTP: "h:2"})
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(b))))
	require.Equal(t, f.View().Map, g.View().Map)
	require.Equal(t, f.View().Leaders, g.View().Leaders)
	require.Equal(t, b, snapshotOf(t, g), "the restored state snapshots to the same bytes")
	// The restored FSM goes on as the original does.
	require.Equal(t, mustApply(t, f, Command{Op: OpPlaceWorld, World: "b"}), mustApply(t, g, Command{Op: OpPlaceWorld, World: "b"}))
}

func TestRestoreRefusesABadSnapshot(t *testing.T) {
	good := snapshotOf(t, withNodes(t, 1))
	for name, b := range map[string][]byte{
		"empty":         nil,
		"version 2":     append([]byte{2}, good[1:]...),
		"not json":      {snapshotVersion, '['},
		"unknown field": append([]byte{snapshotVersion}, `{"nodes":{},"extra":1}`...),
		"null table":    append([]byte{snapshotVersion}, `{"nodes":null,"shards":{},"worlds":{},"leaders":{},"load":{}}`...),
		"voter unknown": append([]byte{snapshotVersion}, `{"nodes":{},"shards":{"1":["n1"]},"worlds":{},"leaders":{},"load":{}}`...),
		"orphan world":  append([]byte{snapshotVersion}, `{"nodes":{},"shards":{},"worlds":{"w":1},"leaders":{},"load":{}}`...),
		"world off map": append([]byte{snapshotVersion}, `{"nodes":{"n1":{"raft":"h:1","http":"h:2"}},"shards":{"1":["n1"]},"worlds":{"w":2},"leaders":{},"load":{}}`...),
		"bad raft addr": append([]byte{snapshotVersion}, `{"nodes":{"n1":{"raft":"h","http":"h:2"}},"shards":{"1":["n1"]},"worlds":{},"leaders":{},"load":{}}`...),
	} {
		f := withNodes(t, 2)
		v := f.View()
		err := f.Restore(io.NopCloser(bytes.NewReader(b)))
		require.ErrorIs(t, err, ErrBadCommand, name)
		require.Same(t, v, f.View(), "%s: a refused snapshot changes nothing", name)
	}
}

// errSink fails its writes.
type errSink struct{ memSink }

func (s *errSink) Write([]byte) (int, error) { return 0, io.ErrShortWrite }

func TestPersistCancelsAFailedSink(t *testing.T) {
	snap, err := withNodes(t, 1).Snapshot()
	require.NoError(t, err)
	var sink errSink
	require.ErrorIs(t, snap.Persist(&sink), io.ErrShortWrite)
	require.True(t, sink.cancelled)
}

func TestSeedFillsAnEmptyMapOnce(t *testing.T) {
	seed := &shard.Map{Nodes: map[string]shard.MapNode{"n1": {Raft: "h:1", HTTP: "h:2"}, "n2": {Raft: "h:3", HTTP: "https://h:4"}},
		Shards: []shard.MapShard{{ID: 0, Voters: []string{"n1"}}, {ID: 3, Voters: []string{"n2", "n1"}}}, Worlds: map[string]uint64{"w": 3}}
	f := NewFSM(0)
	mustApply(t, f, Command{Op: OpSeed, Seed: seed})
	m := f.View().Map
	require.NoError(t, m.Validate())
	require.Equal(t, []shard.MapShard{{ID: 0, Voters: []string{"n1"}}, {ID: 3, Voters: []string{"n1", "n2"}}}, m.Shards)
	require.Equal(t, uint64(3), m.ShardOf("w"))
	require.Equal(t, seed.Nodes, m.Nodes)
	mustApply(t, f, Command{Op: OpAssignWorld, World: "w", Shard: 0})
	_, err := applyTo(t, f, Command{Op: OpSeed, Seed: seed})
	require.ErrorIs(t, err, ErrRefused, "seeded already")
	require.Equal(t, uint64(0), f.View().Map.ShardOf("w"), "a second seed undoes nothing")
}

// A seed into a map remove_node emptied lists the seeded nodes and no
// longer records them removed, so its snapshot restores (a node both
// listed and removed is refused) (review of members14, bug 5).
func TestASeedAfterARemovalListsTheNodeNotRemoved(t *testing.T) {
	f := withNodes(t, 1)
	mustApply(t, f, Command{Op: OpRemoveNode, Node: "n1"})
	require.True(t, f.members().removed["n1"])
	mustApply(t, f, Command{Op: OpSeed, Seed: &shard.Map{Nodes: map[string]shard.MapNode{"n1": {Raft: "h:1", HTTP: "h:2"}},
		Shards: []shard.MapShard{{ID: 1, Voters: []string{"n1"}}}}})
	require.False(t, f.members().removed["n1"])
	require.Contains(t, f.members().nodes, "n1")
	g := NewFSM(0)
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(snapshotOf(t, f)))))
	require.Equal(t, f.View().Map, g.View().Map)
}
