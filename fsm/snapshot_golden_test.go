package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/gsd-dev/gsd/internal/golden"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// A small but full state, built by a fixed sequence of log entries (fixed
// indexes and leader times): worlds with every policy and with inferred
// fields, sets, counters, a deleted entity, applied, conflicting, rejected
// and duplicate actions, players with records in two window chunks,
// sessions (opened, resumed, acked, kicked, replaced, closed), bans, player
// data and nodes. Its snapshot, its state hashes and its events are golden.

// goldenSnapshotBytes is the snapshot a Raft snapshot of f persists.
func goldenSnapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := f.Snapshot().WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}

// goldenRestore restores snapshot bytes into a fresh FSM.
func goldenRestore(t *testing.T, snap []byte) *FSM {
	t.Helper()
	f, err := New(DefaultConfig())
	require.NoError(t, err)
	require.NoError(t, f.Restore(bytes.NewReader(snap)))
	return f
}

// goldenEventJSON is an event's JSON wire form.
func goldenEventJSON(ev *Event) ([]byte, error) { return json.Marshal(ev) }

// goldenState applies the fixed sequence and returns the FSM and the JSON
// of every result that carried an event, one per line.
func goldenState(t *testing.T) (*FSM, []byte) {
	t.Helper()
	f, err := New(DefaultConfig())
	require.NoError(t, err)
	var (
		index  uint64
		events bytes.Buffer
	)
	apply := func(cmds ...Command) []Result {
		index++
		res := f.Apply(index, goldenEncodeBatch(&Batch{Time: goldenBatchTime + int64(index)*int64(time.Millisecond), Commands: cmds}))
		for _, r := range res {
			if r.Event != nil {
				j, err := goldenEventJSON(r.Event)
				require.NoError(t, err)
				events.Write(j)
				events.WriteByte('\n')
			}
		}
		return res
	}
	a := func(world, player string, seq uint64, ops ...Op) Command {
		return Command{Kind: CmdAction, Action: &Action{World: world, Player: player, Seq: seq, InputTime: int64(seq) * 1000, Ops: ops}}
	}
	s := func(kind CmdKind, c SessionCmd) Command { return Command{Kind: kind, Session: &c} }
	set := func(e, fl string, v Value) Op { return Op{Kind: OpSet, Entity: e, Field: fl, Value: v} }
	token := goldenToken()
	other := token
	other[0] ^= 0xff

	apply(
		Command{Kind: CmdPutNode, Node: &NodeInfo{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080", Region: "eu-west"}},
		Command{Kind: CmdPutNode, Node: &NodeInfo{ID: "n2", RaftAddr: "10.0.0.2:7000", HTTPAddr: "10.0.0.2:8080"}},
		Command{Kind: CmdCreateWorld, World: &WorldSpec{ID: "arena", Origin: "eu-west", Rules: goldenRules()}},
		Command{Kind: CmdCreateWorld, World: &WorldSpec{ID: "lobby", Origin: "us-east"}},
	)
	apply(
		a("arena", "alice", 1, set("hero", "name", String("Ærwyn")), set("hero", "alive", Bool(true)),
			Op{Kind: OpIncr, Entity: "hero", Field: "hp", By: 100}, Op{Kind: OpAdd, Entity: "hero", Field: "tags", Value: String("red")},
			Op{Kind: OpAdd, Entity: "hero", Field: "tags", Value: String("blue")}, set("hero", "best", Float(9.5)), set("hero", "worst", Int(4))),
		a("arena", "bob", 1, Op{Kind: OpIncr, Entity: "hero", Field: "hp", By: -30}, set("hero", "best", Int(3)), set("hero", "worst", Int(2))),
	)
	apply(
		// conflict: the name exists, and tags is at version 1
		a("arena", "bob", 2, Op{Kind: OpSet, Entity: "hero", Field: "name", Value: String("Bob"), Expect: Expect{Mode: ExpectAbsent}},
			Op{Kind: OpRemove, Entity: "hero", Field: "tags", Value: String("red"), Expect: Expect{Mode: ExpectVersion, Version: 9}},
			Op{Kind: OpSet, Entity: "hero", Field: "alive", Value: Bool(false), Expect: Expect{Mode: ExpectAbsent}}),
		// rejected: strict world, undeclared field; then a type mismatch
		a("arena", "bob", 3, set("hero", "mana", Int(1))),
		a("arena", "bob", 4, set("hero", "name", Int(1))),
		a("arena", "alice", 2, Op{Kind: OpRemove, Entity: "hero", Field: "tags", Value: String("red"), Expect: Expect{Mode: ExpectVersion, Version: 1}},
			set("chest", "name", String("oak"))),
	)
	apply(
		a("lobby", "carol", 1, set("board", "title", String("Top")), set("board", "ratio", Float(0.25)), set("board", "on", Bool(false)),
			Op{Kind: OpIncr, Entity: "board", Field: "visits", By: 3}, Op{Kind: OpAdd, Entity: "board", Field: "ids", Value: Int(7)},
			Op{Kind: OpAdd, Entity: "board", Field: "ids", Value: Int(-2)}),
		a("lobby", "carol", 2, set("tmp", "x", Int(1))),
		a("lobby", "carol", 100, Op{Kind: OpDelete, Entity: "tmp"}), // a second window chunk
		a("lobby", "carol", 1, set("board", "title", String("Top")), set("board", "ratio", Float(0.25)), set("board", "on", Bool(false)),
			Op{Kind: OpIncr, Entity: "board", Field: "visits", By: 3}, Op{Kind: OpAdd, Entity: "board", Field: "ids", Value: Int(7)},
			Op{Kind: OpAdd, Entity: "board", Field: "ids", Value: Int(-2)}), // duplicate
		a("arena", "alice", 3, Op{Kind: OpDelete, Entity: "chest", Expect: Expect{Mode: ExpectVersion, Version: 1}}), // conflict: chest is at 6
	)
	apply(
		s(CmdSessionOpen, SessionCmd{World: "arena", ID: "s-alice", Player: "alice", TokenHash: token, Node: "n1"}),
		s(CmdSessionOpen, SessionCmd{World: "arena", ID: "s-bob", Player: "bob", TokenHash: other, Node: "n2"}),
		s(CmdSessionOpen, SessionCmd{World: "arena", ID: "s-dave", Player: "dave", TokenHash: token, Node: "n1"}),
		s(CmdSessionOpen, SessionCmd{World: "lobby", ID: "s-carol", Player: "carol", TokenHash: token, Node: "n2"}),
	)
	apply(
		a("arena", "alice", 4, Op{Kind: OpIncr, Entity: "hero", Field: "hp", By: 5}, Op{Kind: OpAdd, Entity: "hero", Field: "tags", Value: String("gold")}),
		s(CmdSessionAck, SessionCmd{World: "arena", ID: "s-alice", Seq: 8}),
		s(CmdSessionResume, SessionCmd{World: "arena", ID: "s-bob", Player: "bob", TokenHash: other, Seq: 8, Node: "n1"}),
		s(CmdSessionData, SessionCmd{World: "arena", ID: "s-alice", Data: []DataItem{{Key: "coins", Value: Int(250)}, {Key: "title", Value: String("Sir")},
			{Key: "ratio", Value: Float(1.5)}, {Key: "vip", Value: Bool(true)}}}),
		s(CmdSessionData, SessionCmd{World: "arena", ID: "s-alice", Data: []DataItem{{Key: "ratio", Value: Value{}}}}),
		s(CmdSessionKick, SessionCmd{World: "arena", ID: "s-bob", Reason: "afk"}),
		s(CmdSessionBan, SessionCmd{World: "arena", Player: "mallory", Reason: "cheating"}),
		s(CmdSessionBan, SessionCmd{World: "arena", Player: "eve", Reason: "spam"}),
		s(CmdSessionUnban, SessionCmd{World: "arena", Player: "eve"}),
		s(CmdSessionBan, SessionCmd{World: "arena", Player: "dave", Reason: "griefing"}),
		s(CmdSessionImport, SessionCmd{World: "lobby", Player: "erin", Data: []DataItem{{Key: "rank", Value: Int(3)}, {Key: "gone", Value: Value{}}}}),
		s(CmdSessionOpen, SessionCmd{World: "lobby", ID: "s-carol-2", Player: "carol", TokenHash: other, Node: "n1"}), // replaces s-carol
		s(CmdSessionOpen, SessionCmd{World: "lobby", ID: "s-frank", Player: "frank", TokenHash: token}),
		s(CmdSessionClose, SessionCmd{World: "lobby", ID: "s-frank", Reason: "bye"}),
	)
	apply(
		Command{Kind: CmdSessionAcks, Acks: []SessionAck{{World: "arena", ID: "s-dave", Seq: 8}, {World: "lobby", ID: "s-carol-2", Seq: 2}, {World: "lobby", ID: "nope", Seq: 1}}},
		a("arena", "dave", 1, set("hero", "name", String("D"))), // banned: rejected
		Command{Kind: CmdRemoveNode, Node: &NodeInfo{ID: "n2"}},
	)
	return f, events.Bytes()
}

// goldenStateSummary lists what readers see of every world: its info,
// the state hash after every seq, sessions, bans and player data.
func goldenStateSummary(t *testing.T, f *FSM) []byte {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "applied %d\n", f.AppliedIndex())
	for _, n := range f.Nodes() {
		fmt.Fprintf(&sb, "node id=%s raft=%s http=%s region=%s\n", n.ID, n.RaftAddr, n.HTTPAddr, n.Region)
	}
	for _, w := range f.Worlds() {
		fmt.Fprintf(&sb, "world %s origin=%s seq=%d index=%d entities=%d players=%d hash=%s\n",
			w.ID, w.Origin, w.Seq, w.Index, w.Entities, w.Players, wire.HashString(w.Hash))
		sessions, err := f.Sessions(w.ID)
		require.NoError(t, err)
		for _, s := range sessions {
			fmt.Fprintf(&sb, "  session %s player=%s acked=%d epoch=%d opened=%d seen=%d node=%s kicked=%q data=%s\n",
				s.ID, s.Player, s.Acked, s.Epoch, s.Opened, s.Seen, s.Node, s.Kicked, goldenData(t, s.Data))
		}
		rules, err := json.Marshal(w.Rules)
		require.NoError(t, err)
		fmt.Fprintf(&sb, "  rules %s\n", rules)
		data, err := f.PlayerRecords(w.ID)
		require.NoError(t, err)
		for _, r := range data {
			fmt.Fprintf(&sb, "  data %s v%d %s\n", r.Player, r.Version, goldenData(t, r.Data))
		}
		bans, err := f.Bans(w.ID)
		require.NoError(t, err)
		for _, b := range bans {
			fmt.Fprintf(&sb, "  ban %s %q\n", b.Player, b.Reason)
		}
	}
	return []byte(sb.String())
}

// goldenData formats player data sorted by key, values in their JSON form.
func goldenData(t *testing.T, m map[string]Value) string {
	t.Helper()
	var parts []string
	for _, k := range sortedKeys(m) {
		j, err := json.Marshal(m[k])
		require.NoError(t, err)
		parts = append(parts, k+"="+string(j))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// goldenHashHistory lists a world's state hash after every seq it retains.
func goldenHashHistory(t *testing.T, f *FSM) []byte {
	t.Helper()
	var sb strings.Builder
	for _, w := range f.Worlds() {
		for seq := uint64(1); seq <= w.Seq; seq++ {
			p, err := f.Hash(w.ID, seq)
			require.NoError(t, err)
			fmt.Fprintf(&sb, "%s seq=%d index=%d hash=%s\n", w.ID, p.Seq, p.Index, wire.HashString(p.Hash))
		}
	}
	return []byte(sb.String())
}

func TestGoldenSnapshotOfAFullState(t *testing.T) {
	live, _ := goldenState(t)
	snap := goldenSnapshotBytes(t, live)
	golden.Binary(t, "snapshot.bin", snap)
	golden.Text(t, "snapshot_state.txt", goldenStateSummary(t, live))
}

func TestGoldenSnapshotRestoresToTheSameStateHash(t *testing.T) {
	live, _ := goldenState(t)
	snap := goldenSnapshotBytes(t, live)
	// Restore today's golden snapshot, not the one just taken: a refactored
	// Restore must read the bytes written before it.
	old := bytes.Clone(snap)
	if !golden.Updating() {
		old = golden.Read(t, "snapshot.bin")
	}
	f := goldenRestore(t, old)
	require.Equal(t, live.Worlds(), f.Worlds(), "world infos (state hashes included)")
	require.Equal(t, string(goldenStateSummary(t, live)), string(goldenStateSummary(t, f)))
	require.Equal(t, old, goldenSnapshotBytes(t, f), "a restored state snapshots to the same bytes")
}

func TestGoldenStateHashAfterAFixedSequence(t *testing.T) {
	live, _ := goldenState(t)
	golden.Text(t, "state_hashes.txt", goldenHashHistory(t, live))
}

func TestGoldenEventJSONOfAFixedSequence(t *testing.T) {
	_, events := goldenState(t)
	golden.Text(t, "events.jsonl", events)
}

func TestGoldenSnapshotOfFormat3RestoresWithoutIncarnations(t *testing.T) {
	// The golden state as binaries before format 6 snapshotted it: the
	// same state, its worlds without incarnations.
	live, _ := goldenState(t)
	forgetIncarnations(live)
	snap := goldenSnapshotBytes(t, live)
	require.Equal(t, byte(3), snap[len(snapMagic)-1])
	golden.Binary(t, "snapshot_v3.bin", snap)
	f := goldenRestore(t, golden.Read(t, "snapshot_v3.bin"))
	require.Equal(t, live.Worlds(), f.Worlds(), "world infos (state hashes included), incarnation 0")
	require.Equal(t, string(goldenStateSummary(t, live)), string(goldenStateSummary(t, f)))
	require.Equal(t, snap, goldenSnapshotBytes(t, f), "a state without incarnations keeps format 3")
}

func TestGoldenSnapshotOfFormat6RestoresWithDataVersionsZero(t *testing.T) {
	// snapshot_v6.bin is the golden state as binaries before format 8
	// wrote it (the golden snapshot.bin of then): it restores to the same
	// worlds and player data, each player's data at version 0 until it
	// changes.
	old := golden.Read(t, "snapshot_v6.bin")
	require.Equal(t, byte(6), old[len(snapMagic)-1])
	live, _ := goldenState(t)
	f := goldenRestore(t, old)
	require.Equal(t, live.Worlds(), f.Worlds(), "world infos (state hashes included)")
	for _, w := range live.Worlds() {
		want, err := live.PlayerRecords(w.ID)
		require.NoError(t, err)
		got, err := f.PlayerRecords(w.ID)
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for i := range want {
			require.NotZero(t, want[i].Version)
			want[i].Version = 0
		}
		require.Equal(t, want, got)
	}
	require.Equal(t, old, goldenSnapshotBytes(t, f), "a state without data versions keeps format 6")
}
