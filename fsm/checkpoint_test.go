package fsm

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func cmdCheckpoint(c Checkpoint) Command { return Command{Kind: CmdCheckpoint, Check: &c} }

// capHP rejects setting hp above 100: the rule a lying replica skips.
func capHP() Validator {
	return &fakeValidator{reject: func(_ View, a *Action, _ int64) error {
		for _, o := range a.Ops {
			if o.Field == "hp" && o.Value.Compare(Int(100)) > 0 {
				return errors.New("hp above 100")
			}
		}
		return nil
	}}
}

// replicas applies every batch to each harness and returns each one's
// results.
func replicas(hs ...*harness) func(cmds ...Command) [][]Result {
	return func(cmds ...Command) [][]Result {
		out := make([][]Result, len(hs))
		for i, h := range hs {
			out[i] = h.apply(cmds...)
		}
		return out
	}
}

// checkpoint proposes h's next checkpoint of world to every replica and
// returns each one's result.
func checkpoint(t *testing.T, step func(...Command) [][]Result, h *harness, world string) []*CheckpointResult {
	t.Helper()
	c, _, ok := h.f.CheckpointOf(world, "leader")
	require.True(t, ok)
	var out []*CheckpointResult
	for _, res := range step(cmdCheckpoint(c)) {
		require.NoError(t, res[0].Err)
		out = append(out, res[0].Checkpoint)
	}
	return out
}

// TestCheckpointMatchesOnReplicasThatApplyAlikeAndChangesNothing: the
// leader's checkpoint compares equal on every replica that applied the same
// log, even when entries commit between its proposal and its apply, and
// applying it leaves hashes, seqs and snapshots as they were.
func TestCheckpointMatchesOnReplicasThatApplyAlikeAndChangesNothing(t *testing.T) {
	a, b, none := newHarness(t), newHarness(t), newHarness(t)
	step := replicas(a, b, none)
	step(cmdWorld("w", Rules{}))
	step(cmdAction(act("w", "ann", 1, opSet("e", "hp", Int(5)))))
	// none gets an empty entry where a and b get the checkpoint.
	step = replicas(a, b)
	none.apply()
	for _, r := range checkpoint(t, step, a, "w") {
		require.Equal(t, &CheckpointResult{Checkpoint: Checkpoint{World: "w", Leader: "leader"}}, r, "the first one only sets a mark")
	}
	require.Equal(t, []uint64{none.hash("w"), none.hash("w")}, []uint64{a.hash("w"), b.hash("w")})
	require.Equal(t, [][]byte{none.snapshotBytes(), none.snapshotBytes()}, [][]byte{a.snapshotBytes(), b.snapshotBytes()})
	c, current, _ := a.f.CheckpointOf("w", "leader")
	require.True(t, current, "nothing changed since the mark")
	require.Equal(t, Checkpoint{World: "w", Index: a.index, Hash: a.hash("w"), Leader: "leader"}, c)

	// An action and a session commit between the proposal and its apply.
	step(cmdAction(act("w", "ann", 2, opSet("e", "hp", Int(6)))))
	step(cmdSession(CmdSessionOpen, SessionCmd{World: "w", ID: "s", Player: "ann", TokenHash: tokenHash("a")}))
	_, current, _ = a.f.CheckpointOf("w", "leader")
	require.False(t, current)
	for i, res := range step(cmdCheckpoint(c)) {
		r := res[0].Checkpoint
		require.Equal(t, &CheckpointResult{Checkpoint: c, Local: c.Hash, Known: true}, r, "replica %d", i)
		require.False(t, r.Mismatch())
	}
	require.Equal(t, uint64(2), a.worldSeq("w"))
}

// TestCheckpointExposesAReplicaThatSkippedARule: a replica that applied an
// action its peers rejected (no validator: a lying leader's binary) hashes
// differently; its next checkpoint mismatches on the honest replicas, and
// theirs on it.
func TestCheckpointExposesAReplicaThatSkippedARule(t *testing.T) {
	liar := newHarness(t)
	cfg := DefaultConfig()
	cfg.Validators = []Validator{capHP()}
	honest := newHarness(t, cfg)
	step := replicas(liar, honest)
	step(cmdWorld("w", Rules{}))
	checkpoint(t, step, liar, "w")
	res := step(cmdAction(act("w", "ann", 1, opSet("e", "hp", Int(999_999)))))
	require.Equal(t, StatusApplied, res[0][0].Event.Status, "the liar applies")
	require.Equal(t, StatusRejected, res[1][0].Event.Status, "the honest replica rejects")

	rs := checkpoint(t, step, liar, "w")
	require.False(t, rs[0].Mismatch() || rs[1].Mismatch(), "the mark before the lie agrees")
	rs = checkpoint(t, step, liar, "w")
	require.False(t, rs[0].Mismatch(), "the liar agrees with itself")
	require.True(t, rs[1].Mismatch())
	require.Equal(t, honest.hash("w"), rs[1].Local)
	require.Equal(t, liar.hash("w"), rs[1].Hash)

	require.True(t, checkpoint(t, step, honest, "w")[0].Mismatch(), "and the other way round")
}

// TestCheckpointOfAnIndexWithoutAMarkComparesNothing: a replica without a
// mark at the index (it restarted from a snapshot since, or its marks moved
// on) knows no hash to compare and reports no mismatch.
func TestCheckpointOfAnIndexWithoutAMarkComparesNothing(t *testing.T) {
	h := newHarness(t)
	step := replicas(h)
	h.createWorld("w", Rules{})
	checkpoint(t, step, h, "w")
	old, _, _ := h.f.CheckpointOf("w", "leader")
	for range marksKept {
		checkpoint(t, step, h, "w")
	}
	r := h.apply(cmdCheckpoint(old))[0].Checkpoint
	require.False(t, r.Known)
	require.False(t, r.Mismatch())

	fresh := &harness{t: t, f: restored(t, h.snapshotBytes()), index: h.index, time: h.time}
	c, current, ok := fresh.f.CheckpointOf("w", "leader")
	require.True(t, ok)
	require.False(t, current)
	require.Equal(t, Checkpoint{World: "w", Leader: "leader"}, c, "a restored replica has no mark yet")
	cur, _, _ := h.f.CheckpointOf("w", "leader")
	require.False(t, fresh.apply(cmdCheckpoint(cur))[0].Checkpoint.Known)
}

func TestCheckpointOfAnUnknownWorldIsNotOK(t *testing.T) {
	_, _, ok := newHarness(t).f.CheckpointOf("w", "n1")
	require.False(t, ok)
}

func TestCheckpointWithBadShapeOrUnknownWorldIsAnErrorResult(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	cases := map[string]struct {
		c    Checkpoint
		want error
	}{
		"bad world":     {Checkpoint{World: "", Leader: "n1"}, ErrMalformed},
		"bad leader":    {Checkpoint{World: "w", Leader: ""}, ErrMalformed},
		"unknown world": {Checkpoint{World: "x", Leader: "n1"}, ErrUnknownWorld},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := h.apply(cmdCheckpoint(tc.c))[0]
			require.ErrorIs(t, r.Err, tc.want)
			require.Nil(t, r.Checkpoint)
		})
	}
}

func TestCheckpointRoundTripsTheLogAndNeedsLogVersion5(t *testing.T) {
	in := &Batch{Time: 7, Commands: []Command{cmdCheckpoint(Checkpoint{World: "w", Index: 42, Hash: 1<<64 - 1, Leader: "n1"})}}
	out, err := DecodeBatch(EncodeBatch(in))
	require.NoError(t, err)
	require.Equal(t, in, out)
	need := Needs(&in.Commands[0])
	require.Equal(t, Versions{Log: 5, Snapshot: 3, Wire: 1}, need)
	require.True(t, Supported().Covers(need))
	require.False(t, (Versions{Log: 4, Snapshot: 5, Wire: 1}).Covers(need), "a log 4 replica does not read it")
	enc := EncodeBatch(in)
	_, err = DecodeBatch(enc[:len(enc)-1])
	require.ErrorIs(t, err, ErrMalformed)
}

func TestMarkOfIsTheReplicasHashAtACheckpointIndex(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opSet("e", "hp", Int(5))))
	c, _, ok := h.f.CheckpointOf("w", "n1")
	require.True(t, ok)
	require.NoError(t, h.apply(cmdCheckpoint(c))[0].Err)
	got, known := h.f.MarkOf("w", h.index)
	require.True(t, known)
	require.Equal(t, h.hash("w"), got)
	_, known = h.f.MarkOf("w", h.index-1)
	require.False(t, known)
	_, known = h.f.MarkOf("x", h.index)
	require.False(t, known)
}
