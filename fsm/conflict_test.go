package fsm

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

const racers = 100

// raceCommands returns, per player, a contested set of e.owner with expect x
// and an uncontested incr of e.hits: 2*racers commands in log order.
func raceCommands(x Expect) []Command {
	cmds := make([]Command, 0, 2*racers)
	for i := range racers {
		p := fmt.Sprintf("player-%03d", i)
		cmds = append(cmds,
			cmdAction(act("w", p, 1, withExpect(opSet("e", "owner", String(p)), x))),
			cmdAction(act("w", p, 2, opIncr("e", "hits", 1))),
		)
	}
	return cmds
}

// applyInBatches applies cmds split at the given sizes (the rest in one last batch).
func applyInBatches(h *harness, cmds []Command, sizes ...int) []Result {
	var out []Result
	for _, n := range sizes {
		n = min(n, len(cmds))
		out = append(out, h.apply(cmds[:n]...)...)
		cmds = cmds[n:]
	}
	if len(cmds) > 0 {
		out = append(out, h.apply(cmds...)...)
	}
	return out
}

var batchings = map[string][]int{
	"one batch":      nil,
	"several":        {1, 13, 50, 2, 77},
	"one per action": func() []int { s := make([]int, 2*racers); fill(s, 1); return s }(),
}

func fill(s []int, v int) {
	for i := range s {
		s[i] = v
	}
}

func TestHundredPlayersSettingWithExpectAbsentExactlyOneWins(t *testing.T) {
	for name, sizes := range batchings {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.createWorld("w", Rules{})
			res := applyInBatches(h, raceCommands(expectAbsent), sizes...)
			checkRace(t, h, res, 0)
		})
	}
}

func TestHundredPlayersSettingWithExpectVersionExactlyOneWins(t *testing.T) {
	for name, sizes := range batchings {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.createWorld("w", Rules{})
			seed := h.event(act("w", "host", 1, opSet("e", "owner", String("nobody"))))
			require.Equal(t, uint64(1), seed.Seq)
			res := applyInBatches(h, raceCommands(expectVersion(1)), sizes...)
			checkRace(t, h, res, 1)
		})
	}
}

// checkRace checks that the first set won, every later one conflicted with
// the winner's value and version, and every incr applied.
func checkRace(t *testing.T, h *harness, res []Result, base uint64) {
	t.Helper()
	require.Len(t, res, 2*racers)
	winner := res[0].Event
	require.Equal(t, StatusApplied, winner.Status)
	require.Equal(t, base+1, winner.Seq)
	require.Equal(t, "player-000", winner.Player)
	winnerVersion := winner.Changes[0].Version
	require.Equal(t, winner.Seq, winnerVersion)

	applied, conflicts := 0, 0
	for i, r := range res {
		require.NoError(t, r.Err)
		require.False(t, r.Duplicate)
		ev := r.Event
		require.Equal(t, base+uint64(i)+1, ev.Seq, "one seq per action, in log order")
		if i%2 == 1 {
			require.Equal(t, StatusApplied, ev.Status, "incr on another field never conflicts")
			require.Equal(t, []Change{{Entity: "e", Field: "hits", Op: OpIncr, Value: Int(int64(i/2 + 1)), Version: ev.Seq}}, ev.Changes)
			continue
		}
		switch ev.Status {
		case StatusApplied:
			applied++
		case StatusConflict:
			conflicts++
			require.Equal(t, []Change{{Entity: "e", Field: "owner", Value: String("player-000"), Version: winnerVersion, Exists: true}}, ev.Changes)
			require.Equal(t, map[string]map[string]uint64{"e": {"owner": winnerVersion}}, ev.Versions())
		default:
			t.Fatalf("unexpected status %s", ev.Status)
		}
	}
	require.Equal(t, 1, applied)
	require.Equal(t, racers-1, conflicts)
	require.Equal(t, FieldView{Name: "owner", Policy: PolicyAuthoritative, Value: String("player-000"), Version: winnerVersion}, h.field("w", "e", "owner"))
	require.Equal(t, FieldView{Name: "hits", Policy: PolicyCounter, Value: Int(racers), Version: base + 2*racers}, h.field("w", "e", "hits"))
}

func TestConflictOnASetFieldCarriesItsCurrentElements(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opAdd("e", "tags", String("b")), opAdd("e", "tags", String("a"))))
	h.event(act("w", "p", 2, opRemove("e", "tags", String("b")), opAdd("e", "tags", String("c"))))
	ev := h.event(act("w", "q", 1, withExpect(opAdd("e", "tags", String("z")), expectVersion(1))))
	require.Equal(t, StatusConflict, ev.Status)
	require.Equal(t, []Change{{Entity: "e", Field: "tags", Set: []Value{String("a"), String("c")}, Version: 2, Exists: true}}, ev.Changes)
}

func TestConflictOnACounterCarriesItsTotal(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opIncr("e", "hp", 7)))
	h.event(act("w", "p", 2, opIncr("e", "hp", -2)))
	ev := h.event(act("w", "q", 1, withExpect(opIncr("e", "hp", 1), expectAbsent)))
	require.Equal(t, []Change{{Entity: "e", Field: "hp", Value: Int(5), Version: 2, Exists: true}}, ev.Changes)
	require.Equal(t, Int(5), h.field("w", "e", "hp").Value)
}

func TestExpectVersionOnAMissingFieldConflictsAsAbsent(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opSet("e", "x", Int(1))))
	for i, o := range []Op{
		withExpect(opSet("e", "y", Int(1)), expectVersion(1)),    // entity exists, field does not
		withExpect(opSet("nope", "x", Int(1)), expectVersion(1)), // entity does not exist
		withExpect(opSet("e", "y", Int(1)), expectVersion(0)),    // version 0 is not "absent"
	} {
		ev := h.event(act("w", "q", uint64(i+1), o))
		require.Equal(t, StatusConflict, ev.Status)
		require.Equal(t, []Change{{Entity: o.Entity, Field: o.Field}}, ev.Changes)
	}
}

func TestConflictReportsEveryFailingExpectAndAppliesNothing(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opSet("e", "a", Int(1)), opSet("e", "b", Int(2))))
	before := h.hash("w")
	ev := h.event(act("w", "q", 1,
		withExpect(opSet("e", "a", Int(10)), expectVersion(1)), // holds
		withExpect(opSet("e", "b", Int(20)), expectAbsent),     // fails
		opIncr("e", "c", 1), // no expect
		withExpect(opSet("e", "d", Int(40)), expectVersion(5)), // fails
	))
	require.Equal(t, StatusConflict, ev.Status)
	require.Equal(t, []Change{
		{Entity: "e", Field: "b", Value: Int(2), Version: 1, Exists: true},
		{Entity: "e", Field: "d"},
	}, ev.Changes)
	require.Equal(t, before, h.hash("w"))
	require.Equal(t, Int(1), h.field("w", "e", "a").Value)
}

func TestExpectsAreCheckedAgainstTheStateBeforeTheAction(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	ev := h.event(act("w", "p", 1,
		withExpect(opSet("e", "x", Int(1)), expectAbsent),
		withExpect(opSet("e", "x", Int(2)), expectAbsent),
	))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, Int(2), h.field("w", "e", "x").Value)
	ev = h.event(act("w", "p", 2,
		withExpect(opSet("e", "x", Int(3)), expectVersion(1)),
		withExpect(opSet("e", "x", Int(4)), expectVersion(1)),
	))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, FieldView{Name: "x", Policy: PolicyAuthoritative, Value: Int(4), Version: 2}, h.field("w", "e", "x"))
}

func TestTypeRejectionTakesPrecedenceOverAFailingExpect(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opSet("e", "x", Int(1))))
	// A failing expect on an op that is also ill-typed reports the rejection.
	ev := h.event(act("w", "q", 1, withExpect(opSet("e", "x", String("s")), expectAbsent)))
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, CodeTypeMismatch, ev.Reason)
}

func TestOptimisticReadModifyWriteLoopConvergesWithoutLostUpdates(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "host", 1, opSet("bank", "gold", Int(0))))
	// Every player reads (value, version) then writes value+1 with expect
	// version; on conflict it retries with the state the conflict returned.
	type client struct {
		name     string
		seq      uint64
		val, ver uint64
		done     bool
	}
	cs := make([]*client, 20)
	for i := range cs {
		cs[i] = &client{name: fmt.Sprintf("c%d", i), val: 0, ver: 1}
	}
	for rounds := 0; ; rounds++ {
		require.Less(t, rounds, 100)
		var cmds []Command
		var who []*client
		for _, c := range cs {
			if !c.done {
				c.seq++
				cmds = append(cmds, cmdAction(act("w", c.name, c.seq, withExpect(opSet("bank", "gold", Int(int64(c.val+1))), expectVersion(c.ver)))))
				who = append(who, c)
			}
		}
		if len(cmds) == 0 {
			break
		}
		for i, r := range h.apply(cmds...) {
			c := who[i]
			switch r.Event.Status {
			case StatusApplied:
				c.done = true
			case StatusConflict:
				ch := r.Event.Changes[0]
				c.val, c.ver = uint64(ch.Value.Int), ch.Version
			}
		}
	}
	require.Equal(t, Int(20), h.field("w", "bank", "gold").Value)
}
