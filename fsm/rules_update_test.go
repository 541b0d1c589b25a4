package fsm

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func cmdRules(world string, expect uint64, r Rules) Command {
	return Command{Kind: CmdUpdateRules, Rules: &RulesUpdate{World: world, Expect: expect, Rules: r}}
}

func counterRules(strict bool) Rules {
	return rules(strict, map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}})
}

func TestRulesUpdateRaisesTheRulesVersionAndChangesTheHash(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", counterRules(false))
	h.event(act("w", "p", 1, opIncr("e", "hp", 5)))
	before, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, uint64(1), before.RulesVersion)

	res := h.apply(cmdRules("w", 1, counterRules(true)))
	require.NoError(t, res[0].Err)
	require.Equal(t, uint64(2), res[0].RulesVersion)
	after, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, uint64(2), after.RulesVersion)
	require.True(t, after.Rules.Strict)
	require.NotEqual(t, before.Hash, after.Hash, "the rules version is in the state hash")

	// The new rules hold from the next action on, on every replica alike.
	ev := h.event(act("w", "p", 2, opSet("e", "name", String("x"))))
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, CodeUndeclaredField, ev.Reason)

	res = h.apply(cmdRules("w", 0, counterRules(false)))
	require.NoError(t, res[0].Err, "expect 0 replaces any version")
	require.Equal(t, uint64(3), res[0].RulesVersion)
}

func TestRulesUpdateSurvivesSnapshotInFormat4(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", counterRules(false))
	h.createWorld("v", Rules{})
	forgetIncarnations(h.f)
	require.NoError(t, h.apply(cmdRules("w", 1, counterRules(true)))[0].Err)
	p := h.snapshotBytes()
	require.Equal(t, byte(4), p[len(snapMagic)-1])
	g := restored(t, p)
	requireSameState(t, h.f, g)
	for _, id := range []string{"w", "v"} {
		want, err := h.f.World(id)
		require.NoError(t, err)
		got, err := g.World(id)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	// A restored replica goes on exactly like the original.
	require.Equal(t, h.apply(cmdRules("w", 2, counterRules(false)))[0], g.Apply(h.index, EncodeBatch(&Batch{Commands: []Command{cmdRules("w", 2, counterRules(false))}}))[0])
}

func TestRulesUpdateIsRefusedWithAClearCode(t *testing.T) {
	bad := counterRules(false)
	bad.Fields["n"] = FieldRule{Type: KindBool, Policy: PolicyMax}
	extra := counterRules(false)
	extra.Fields["name"] = FieldRule{Type: KindInt, Policy: PolicyAuthoritative}
	for what, tc := range map[string]struct {
		cmd  Command
		want error
	}{
		"unknown world":        {cmdRules("nope", 0, Rules{}), ErrUnknownWorld},
		"invalid rules":        {cmdRules("w", 0, bad), ErrMalformed},
		"stale expect":         {cmdRules("w", 7, counterRules(false)), ErrRulesConflict},
		"declared field gone":  {cmdRules("w", 0, Rules{}), ErrRulesIncompatible},
		"policy changed":       {cmdRules("w", 0, rules(false, map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyMax}})), ErrRulesIncompatible},
		"inferred field typed": {cmdRules("w", 0, extra), ErrRulesIncompatible},
	} {
		h := newHarness(t)
		h.createWorld("w", counterRules(false))
		h.event(act("w", "p", 1, opSet("e", "name", String("ann")))) // infers name: string
		before := h.snapshotBytes()
		hash := h.hash("w")
		res := h.apply(tc.cmd)
		require.ErrorIs(t, res[0].Err, tc.want, what)
		require.NotEmpty(t, Code(res[0].Err), what)
		require.Equal(t, hash, h.hash("w"), what)
		// Past the magic and the applied index (one byte here).
		require.Equal(t, before[len(snapMagic)+1:], h.snapshotBytes()[len(snapMagic)+1:], "%s: all or nothing", what)
	}
}

func TestRulesUpdateMayDeclareWhatAWriteInferred(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", counterRules(false))
	h.event(act("w", "p", 1, opSet("e", "name", String("ann"))))
	r := counterRules(true)
	r.Fields["name"] = FieldRule{Type: KindString, Policy: PolicyAuthoritative}
	r.Fields["new"] = FieldRule{Type: KindInt, Policy: PolicyMax}
	r.Fair = Fairness{Window: 10_000_000}
	require.NoError(t, h.apply(cmdRules("w", 1, r))[0].Err)
	require.Equal(t, StatusApplied, h.event(act("w", "p", 2, opSet("e", "name", String("bo")))).Status)
	require.True(t, h.f.Fair("w").Enabled())
}

func TestNodeVersionsAreRecordedKeptAcrossAddressChangesAndSnapshotted(t *testing.T) {
	h := newHarness(t)
	v := Versions{Log: 2, Snapshot: 4, Wire: 1}
	h.apply(Command{Kind: CmdNodeVersions, Node: &NodeInfo{ID: "n2", Versions: v}})
	n, ok := h.f.Node("n2")
	require.True(t, ok)
	require.Equal(t, NodeInfo{ID: "n2", Versions: v}, n, "a report may come before the addresses")
	h.apply(Command{Kind: CmdPutNode, Node: &NodeInfo{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2"}})
	n, _ = h.f.Node("n2")
	require.Equal(t, NodeInfo{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2", Versions: v}, n)
	h.apply(Command{Kind: CmdPutNode, Node: &NodeInfo{ID: "n1", RaftAddr: "r1"}})

	p := h.snapshotBytes()
	require.Equal(t, byte(4), p[len(snapMagic)-1])
	require.Equal(t, h.f.Nodes(), restored(t, p).Nodes())

	h.apply(Command{Kind: CmdRemoveNode, Node: &NodeInfo{ID: "n2"}})
	_, ok = h.f.Node("n2")
	require.False(t, ok)
	require.Equal(t, byte(3), h.snapshotBytes()[len(snapMagic)-1], "back to format 3 once nothing needs 4")
}

func TestNewCommandKindsRoundTripTheCodec(t *testing.T) {
	b := &Batch{Time: 5, Commands: []Command{
		{Kind: CmdNodeVersions, Node: &NodeInfo{ID: "n1", Versions: Supported()}},
		{Kind: CmdUpdateRules, Rules: &RulesUpdate{World: "w", Expect: 3, Rules: Rules{Strict: true, Fields: schemaFields(), Schema: fullSchema()}}},
	}}
	got, err := DecodeBatch(EncodeBatch(b))
	require.NoError(t, err)
	require.Equal(t, b, got)

	tooBig := rawBatch(func(e *encoder) {
		e.uvarint(1)
		e.byte(byte(CmdNodeVersions))
		e.str("n1")
		e.uvarint(1 << 40)
		e.uvarint(0)
		e.uvarint(0)
	})
	_, err = DecodeBatch(tooBig)
	require.ErrorIs(t, err, ErrMalformed)
}

func TestApplyPanicNamesTheUnknownKindAndTheVersionsThisBinaryReads(t *testing.T) {
	h := newHarness(t)
	future := rawBatch(func(e *encoder) {
		e.uvarint(1)
		e.byte(99)
		e.byte(0) // a body this binary cannot know
	})
	msg := func() (msg any) {
		defer func() { msg = recover() }()
		h.f.Apply(9, future)
		return nil
	}()
	require.Contains(t, fmt.Sprint(msg), "index 9")
	require.Contains(t, fmt.Sprint(msg), "unknown command kind 99")
	require.Contains(t, fmt.Sprint(msg), Supported().String())
}

func TestRestoreRefusesRulesVersionZeroAndNamesNewerFormats(t *testing.T) {
	w := craftedWorld("w", Rules{}, nil)
	w.rulesVersion = 0
	err := restoreFails(t, newHarness(t).f, writeSnapshot(t, &Snapshot{applied: 1, worlds: []*world{w}}), "rules version 0")
	require.ErrorContains(t, err, "rules version 0")

	p := newHarness(t).snapshotBytes()
	p[len(snapMagic)-1] = snapVersion + 1
	require.ErrorContains(t, restoreFails(t, newHarness(t).f, p, "future"), Supported().String())
}

func TestVersionsCoverAndNeeds(t *testing.T) {
	require.Equal(t, Versions{Log: LogVersion, Snapshot: 10, Wire: 1}, Supported())
	require.True(t, Versions{}.IsZero())
	require.False(t, Baseline().IsZero())
	require.Equal(t, "log 1, snapshot 3, wire 1", Baseline().String())
	for k := CmdAction; k <= CmdSessionAcks; k++ {
		if k == CmdSessionData {
			continue // log 11 gives it its meaning (playerdata_write_test.go)
		}
		c := &Command{Kind: k, World: &WorldSpec{}, Action: &Action{}}
		require.Equal(t, Baseline(), Needs(c), "kind %d", k)
		require.True(t, Baseline().Covers(Needs(c)))
	}
	withSchema := &Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: Rules{Schema: Schema{Mode: "duel"}}}}
	for _, c := range []*Command{{Kind: CmdNodeVersions}, {Kind: CmdUpdateRules, Rules: &RulesUpdate{}}, withSchema} {
		require.False(t, Baseline().Covers(Needs(c)), "kind %d", c.Kind)
		require.True(t, Supported().Covers(Needs(c)), "kind %d", c.Kind)
		require.False(t, Versions{Log: 2, Snapshot: 3, Wire: 1}.Covers(Needs(c)))
		require.False(t, Versions{Log: 2, Snapshot: 4}.Covers(Needs(c)))
	}
}

func TestStateOfOlderFormatsRestoresAndTakesTheNewCommands(t *testing.T) {
	// Old writes: a state built from the command kinds older binaries
	// write, snapshotted in the format they write (3).
	h := newHarness(t)
	applyAll(h, prefixBatches())
	forgetIncarnations(h.f)
	old := h.snapshotBytes()
	require.Equal(t, byte(3), old[len(snapMagic)-1])
	require.Equal(t, batchMagic, EncodeBatch(&Batch{Commands: prefixBatches()[0]})[0], "their log entries keep batch format 2")

	// New reads: this binary restores it, applies the new kinds on top,
	// and its format-4 snapshot restores to the same state.
	g := restored(t, old)
	requireSameState(t, h.f, g)
	id := h.f.Worlds()[0].ID
	res := g.Apply(h.index+1, EncodeBatch(&Batch{Commands: []Command{
		{Kind: CmdNodeVersions, Node: &NodeInfo{ID: "n1", Versions: Supported()}},
		cmdRules(id, 1, h.f.Worlds()[0].Rules),
	}}))
	require.NoError(t, res[1].Err)
	p := snapshotBytes(t, g)
	require.Equal(t, byte(4), p[len(snapMagic)-1])
	requireSameState(t, g, restored(t, p))
}
