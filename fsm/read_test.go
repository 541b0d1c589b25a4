package fsm

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEntityViewListsFieldsSortedWithVersionsAndTheWorldSeq(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{"best": {Type: KindFloat, Policy: PolicyMax}}))
	h.event(act("w", "p", 1, opSet("e", "name", String("ann")), opIncr("e", "hp", 3)))
	h.event(act("w", "p", 2, opAdd("e", "bag", String("sword")), opAdd("e", "bag", String("axe")), opSet("e", "best", Float(2.5))))
	h.event(act("w", "p", 3, opSet("other", "x", Bool(false))))
	require.Equal(t, EntityView{
		ID: "e", Version: 2, Seq: 3,
		Fields: []FieldView{
			{Name: "bag", Policy: PolicySet, Set: []Value{String("axe"), String("sword")}, Version: 2},
			{Name: "best", Policy: PolicyMax, Value: Float(2.5), Version: 2},
			{Name: "hp", Policy: PolicyCounter, Value: Int(3), Version: 1},
			{Name: "name", Policy: PolicyAuthoritative, Value: String("ann"), Version: 1},
		},
	}, h.entity("w", "e"))
}

func TestEntityViewIsACopy(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opAdd("e", "bag", Int(1)), opAdd("e", "bag", Int(2))))
	v := h.entity("w", "e")
	v.Fields[0].Set[0] = Int(99)
	v.Fields[0].Name = "changed"
	require.Equal(t, []Value{Int(1), Int(2)}, h.field("w", "e", "bag").Set)
}

func TestEntityReportsUnknownWorldAndMissingEntity(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	_, err := h.f.Entity("nope", "e")
	require.ErrorIs(t, err, ErrUnknownWorld)
	_, err = h.f.Entity("w", "e")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestFieldViewPlainGivesGoValuesAndSetsAsSlices(t *testing.T) {
	require.Equal(t, int64(3), FieldView{Policy: PolicyCounter, Value: Int(3)}.Plain())
	require.Equal(t, "x", FieldView{Policy: PolicyAuthoritative, Value: String("x")}.Plain())
	require.Equal(t, []any{int64(1), "a", true, 0.5}, FieldView{Policy: PolicySet, Set: []Value{Int(1), String("a"), Bool(true), Float(0.5)}}.Plain())
	require.Equal(t, []any{}, FieldView{Policy: PolicySet}.Plain())
}

func TestWorldAndWorldsSummariseWorldsSortedById(t *testing.T) {
	h := newHarness(t)
	r := rules(true, map[string]FieldRule{"c": {Type: KindInt, Policy: PolicyCounter}})
	h.createWorld("zeta", Rules{})
	h.createWorld("alpha", r)
	h.event(act("alpha", "p", 1, opIncr("e1", "c", 1)))
	h.event(act("alpha", "q", 1, opIncr("e2", "c", 1)))
	ws := h.f.Worlds()
	require.Len(t, ws, 2)
	require.Equal(t, WorldInfo{ID: "alpha", Origin: "eu-west", Rules: r, Seq: 2, Index: h.index, Entities: 2, Players: 2, Hash: h.hash("alpha"), RulesVersion: 1, Incarnation: 2}, ws[0])
	require.Equal(t, WorldInfo{ID: "zeta", Origin: "eu-west", RulesVersion: 1, Incarnation: 1}, ws[1], "the incarnation is the creation's log index")
	wi, err := h.f.World("alpha")
	require.NoError(t, err)
	require.Equal(t, ws[0], wi)
	_, err = h.f.World("nope")
	require.ErrorIs(t, err, ErrUnknownWorld)
}

func TestAppliedIndexTracksTheLastEntryWhateverItCarries(t *testing.T) {
	f, err := New(DefaultConfig())
	require.NoError(t, err)
	require.Zero(t, f.AppliedIndex())
	f.Apply(5, EncodeBatch(&Batch{}))
	require.Equal(t, uint64(5), f.AppliedIndex())
	f.Apply(9, EncodeBatch(&Batch{Commands: []Command{{Kind: CmdPutNode, Node: &NodeInfo{ID: "n"}}}}))
	require.Equal(t, uint64(9), f.AppliedIndex())
	f.ApplyBatch(10, &Batch{Commands: []Command{cmdAction(act("nope", "p", 1, opIncr("e", "c", 1)))}})
	require.Equal(t, uint64(10), f.AppliedIndex())
}

func TestNodesArePutReplacedAndRemoved(t *testing.T) {
	h := newHarness(t)
	h.apply(
		Command{Kind: CmdPutNode, Node: &NodeInfo{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2"}},
		Command{Kind: CmdPutNode, Node: &NodeInfo{ID: "n1", RaftAddr: "r1", HTTPAddr: "h1", Region: "eu"}},
		Command{Kind: CmdPutNode, Node: &NodeInfo{ID: "n3", RaftAddr: "r3", HTTPAddr: "h3"}},
	)
	h.apply(
		Command{Kind: CmdPutNode, Node: &NodeInfo{ID: "n2", RaftAddr: "r2b", HTTPAddr: "h2b"}},
		Command{Kind: CmdRemoveNode, Node: &NodeInfo{ID: "n3"}},
		Command{Kind: CmdRemoveNode, Node: &NodeInfo{ID: "never"}},
	)
	require.Equal(t, []NodeInfo{
		{ID: "n1", RaftAddr: "r1", HTTPAddr: "h1", Region: "eu"},
		{ID: "n2", RaftAddr: "r2b", HTTPAddr: "h2b"},
	}, h.f.Nodes())
	n, ok := h.f.Node("n1")
	require.True(t, ok)
	require.Equal(t, "eu", n.Region)
	_, ok = h.f.Node("n3")
	require.False(t, ok)
}

func TestCheckReportsWhatApplyWouldRejectBeforeCommit(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(true, map[string]FieldRule{
		"hp":   {Type: KindInt, Policy: PolicyCounter},
		"name": {Type: KindString, Policy: PolicyAuthoritative},
		"x":    {Type: KindFloat, Policy: PolicyAuthoritative},
	}))
	h.createWorld("open", Rules{})
	cases := []struct {
		a   *Action
		err error
	}{
		{act("w", "p", 1, opIncr("e", "hp", 1), opSet("e", "x", Int(2))), nil},
		{act("w", "p", 0, opIncr("e", "hp", 1)), ErrMalformed},
		{act("w", "p", 1, withExpect(opIncr("e", "hp", 1), Expect{Mode: 5})), ErrMalformed},
		{act("nope", "p", 1, opIncr("e", "hp", 1)), ErrUnknownWorld},
		{act("w", "p", 1, opIncr("e", "mana", 1)), ErrUndeclaredField},
		{act("w", "p", 1, opSet("e", "hp", Int(1))), ErrPolicyViolation},
		{act("w", "p", 1, opSet("e", "name", Int(1))), ErrTypeMismatch},
		{act("open", "p", 1, opSet("e", "a", Int(1)), opSet("e", "a", String("s"))), ErrTypeMismatch},
		// Check does not look at expects: a conflict is a committed outcome.
		{act("w", "p", 1, withExpect(opIncr("e", "hp", 1), expectVersion(77))), nil},
	}
	for _, c := range cases {
		err := h.f.Check(c.a)
		if c.err == nil {
			require.NoError(t, err, "%+v", c.a)
		} else {
			require.ErrorIs(t, err, c.err, "%+v", c.a)
		}
	}
	// Check changes nothing, not even inferred rules.
	require.NoError(t, h.f.Check(act("open", "p", 1, opSet("e", "b", Int(1)))))
	require.Equal(t, StatusApplied, h.event(act("open", "p", 1, opSet("e", "b", String("s")))).Status)
	require.Zero(t, h.worldSeq("w"))
}

// Check reads rules published copy-on-write (no FSM lock): it must see a
// rule as soon as Apply inferred it, a world once created, and the worlds
// of a restored snapshot; and it must be safe beside a concurrent Apply.
func TestCheckSeesRulesAsApplyAndRestorePublishThem(t *testing.T) {
	h := newHarness(t)
	require.ErrorIs(t, h.f.Check(act("open", "p", 1, opSet("e", "a", Int(1)))), ErrUnknownWorld)
	h.createWorld("open", Rules{})
	require.NoError(t, h.f.Check(act("open", "p", 1, opSet("e", "a", String("s")))))
	require.Equal(t, StatusApplied, h.event(act("open", "p", 1, opSet("e", "a", Int(1)))).Status)
	// a is now an inferred int: a string is refused before commit.
	require.ErrorIs(t, h.f.Check(act("open", "p", 2, opSet("e", "a", String("s")))), ErrTypeMismatch)

	snap := h.snapshotBytes()
	fresh := newHarness(t)
	require.ErrorIs(t, fresh.f.Check(act("open", "p", 2, opSet("e", "a", Int(1)))), ErrUnknownWorld)
	require.NoError(t, fresh.f.Restore(bytes.NewReader(snap)))
	require.ErrorIs(t, fresh.f.Check(act("open", "p", 2, opSet("e", "a", String("s")))), ErrTypeMismatch)

	// Concurrent checks while Apply infers new fields (run with -race).
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			_ = h.f.Check(act("open", "q", uint64(i+1), opSet("e", "f"+strconv.Itoa(i), Int(1))))
		}
	}()
	for i := 0; i < 200; i++ {
		h.event(act("open", "p", uint64(i+2), opSet("e", "f"+strconv.Itoa(i), String("x"))))
	}
	<-done
	require.ErrorIs(t, h.f.Check(act("open", "q", 1, opSet("e", "f199", Int(1)))), ErrTypeMismatch)
}
