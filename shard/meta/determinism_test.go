package meta

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"pgregory.net/rapid"
)

// genCommand draws a command over a small space of nodes, shards and
// worlds, valid or refused by the state, so sequences hit every op.
func genCommand(t *rapid.T) Command {
	node := fmt.Sprintf("n%d", rapid.IntRange(1, 6).Draw(t, "node"))
	sh := rapid.Uint64Range(0, 4).Draw(t, "shard")
	world := fmt.Sprintf("w%d", rapid.IntRange(1, 8).Draw(t, "world"))
	other := fmt.Sprintf("n%d", rapid.IntRange(1, 6).Draw(t, "other"))
	switch rapid.IntRange(0, 11).Draw(t, "op") {
	case 8:
		return Command{Op: OpMarkDown, Nodes: []string{node}}
	case 9:
		return Command{Op: OpReplaceVoter, Shard: sh, Node: node} // the FSM picks
	case 10:
		return Command{Op: OpVoterReady, Shard: sh, New: node}
	case 11:
		if other == node {
			return Command{Op: OpVoterReady, Shard: sh, New: node}
		}
		return Command{Op: OpReplaceDone, Shard: sh, Node: other, New: node}
	case 0, 1:
		return Command{Op: OpAddNode, Node: node, Raft: node + ":7000", HTTP: node + ":8080",
			Region: rapid.SampledFrom([]string{"", "eu", "us"}).Draw(t, "region")}
	case 2:
		return Command{Op: OpRemoveNode, Node: node}
	case 3:
		return Command{Op: OpCreateShard, Shard: sh, Replicas: rapid.IntRange(1, 5).Draw(t, "replicas")}
	case 4:
		return Command{Op: OpRemoveShard, Shard: sh}
	case 5:
		return Command{Op: OpAssignWorld, World: world, Shard: sh}
	case 6:
		return Command{Op: OpPlaceWorld, World: world}
	default:
		return Command{Op: OpReport, Node: node, Leads: map[uint64]uint64{sh: rapid.Uint64Range(1, 5).Draw(t, "term")},
			Load: map[uint64]Load{sh: {Players: rapid.Uint64Range(0, 9).Draw(t, "players")}}}
	}
}

// genSteps draws one command, or a whole voter replacement (named, so
// that its three steps meet: random single commands almost never do).
func genSteps(t *rapid.T) []Command {
	if !rapid.Bool().Draw(t, "replacement") {
		return []Command{genCommand(t)}
	}
	sh := rapid.Uint64Range(0, 4).Draw(t, "shard")
	old := fmt.Sprintf("n%d", rapid.IntRange(1, 6).Draw(t, "old"))
	joiner := fmt.Sprintf("n%d", rapid.IntRange(1, 6).Draw(t, "new"))
	if old == joiner {
		return []Command{{Op: OpVoterReady, Shard: sh, New: joiner}}
	}
	return []Command{{Op: OpReplaceVoter, Shard: sh, Node: old, New: joiner}, {Op: OpVoterReady, Shard: sh, New: joiner},
		{Op: OpReplaceDone, Shard: sh, Node: old, New: joiner}}
}

// Replicas that apply the same log agree on every answer and end in the
// same state, also when one of them restarts from a snapshot taken
// midway; every published map validates.
func TestReplicasApplyingTheSameLogAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var cmds []Command
		for _, steps := range rapid.SliceOfN(rapid.Custom(genSteps), 1, 40).Draw(t, "cmds") {
			cmds = append(cmds, steps...)
		}
		cut := rapid.IntRange(0, len(cmds)).Draw(t, "snapshot at")
		a, b := NewFSM(0), NewFSM(0)
		for i, c := range cmds {
			if i == cut {
				snap, err := b.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				var sink memSink
				if err := snap.Persist(&sink); err != nil {
					t.Fatal(err)
				}
				b = NewFSM(0)
				if err := b.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
					t.Fatal(err)
				}
			}
			data, err := c.Encode()
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			l := &raft.Log{Type: raft.LogCommand, Data: data}
			ra, rb := a.Apply(l).(*Applied), b.Apply(l).(*Applied)
			if fmt.Sprint(ra) != fmt.Sprint(rb) {
				t.Fatalf("command %d %+v: %v vs %v", i, c, ra, rb)
			}
			if m := a.View().Map; len(m.Shards) > 0 {
				if err := m.Validate(); err != nil {
					t.Fatalf("after %+v: %v", c, err)
				}
			}
		}
		sa, err := EncodeSnapshot(a.state)
		if err != nil {
			t.Fatal(err)
		}
		sb, _ := EncodeSnapshot(b.state)
		if !bytes.Equal(sa, sb) {
			t.Fatalf("states differ:\n%s\n%s", sa, sb)
		}
		if _, err := DecodeSnapshot(sa); err != nil {
			t.Fatalf("a state the commands made does not restore: %v\n%s", err, sa)
		}
	})
}

// No snapshot bytes make Restore panic; what it accepts snapshots back
// to a state it accepts again.
func FuzzDecodeSnapshot(f *testing.F) {
	fs := NewFSM(0)
	for _, c := range []Command{
		{Op: OpAddNode, Node: "n1", Raft: "h:1", HTTP: "h:2"},
		{Op: OpCreateShard, Shard: 1, Replicas: 1},
		{Op: OpPlaceWorld, World: "w"},
	} {
		b, _ := c.Encode()
		fs.Apply(&raft.Log{Type: raft.LogCommand, Data: b})
	}
	good, _ := EncodeSnapshot(fs.state)
	f.Add(good)
	// One with a replacement under way.
	for _, c := range []Command{
		{Op: OpAddNode, Node: "n2", Raft: "h:3", HTTP: "h:4"},
		{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n2"},
	} {
		b, _ := c.Encode()
		fs.Apply(&raft.Log{Type: raft.LogCommand, Data: b})
	}
	replacing, _ := EncodeSnapshot(fs.state)
	f.Add(replacing)
	// One with the replacement done (left) and a node marked down.
	for _, c := range []Command{
		{Op: OpVoterReady, Shard: 1, New: "n2"},
		{Op: OpReplaceDone, Shard: 1, Node: "n1", New: "n2"},
		{Op: OpMarkDown, Nodes: []string{"n1"}},
	} {
		b, _ := c.Encode()
		fs.Apply(&raft.Log{Type: raft.LogCommand, Data: b})
	}
	down, _ := EncodeSnapshot(fs.state)
	f.Add(down)
	f.Add([]byte{snapshotVersion, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSnapshot(b)
		if err != nil {
			return
		}
		again, err := EncodeSnapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeSnapshot(again); err != nil {
			t.Fatalf("re-encoded snapshot refused: %v", err)
		}
	})
}
