package fsm

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzWorlds are created before a fuzzed entry is applied, so that its
// actions (whose world names come from the seeds) reach the full apply path.
var fuzzWorlds = []Command{
	cmdWorld("w", Rules{}),
	cmdWorld("arena", rules(false, map[string]FieldRule{
		"hp":   {Type: KindInt, Policy: PolicyCounter},
		"tags": {Type: KindString, Policy: PolicySet},
		"best": {Type: KindFloat, Policy: PolicyMax},
	})),
	cmdWorld("s", rules(true, map[string]FieldRule{"x": {Type: KindInt, Policy: PolicyMin}})),
	cmdWorld("a", fuzzArena()),
}

// fuzzArena is the arena of authority_test.go: declared actions, roles
// and write access.
func fuzzArena() Rules {
	var r Rules
	if err := r.UnmarshalJSON([]byte(arenaJSON)); err != nil {
		panic(err)
	}
	return r
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch(sampleBatch()))
	f.Add(EncodeBatch(&Batch{}))
	f.Add(EncodeBatch(&Batch{Commands: []Command{cmdAction(act("w", "p", 1, Op{Kind: OpIncr}))}}))
	f.Add(EncodeBatch(&Batch{Commands: []Command{cmdAction(act("w", "p", 1,
		opAdd("e", "s", Float(0)), opAdd("e", "s", Float(math.Copysign(0, -1))), opSet("e", "x", Int(1))))}}))
	// Rules with the fairness flag (and its two varints).
	f.Add(EncodeBatch(&Batch{Commands: []Command{cmdWorld("f", Rules{Strict: true, Fair: Fairness{Window: 5_000_000, MaxLag: 10_000_000}})}}))
	// Declared actions, with and without a role, and a raw one with a role.
	move := declared("ann", 1, "move", Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(0)})
	heal := declared("mia", 1, "heal", Param{Name: "amount", Value: Int(5)}, Param{Name: "who", Value: String("ann")})
	heal.Role = "medic"
	raw := act("a", "ann", 2, opSet("ann", "emote", String("gg")))
	raw.Role = RolePlayer
	f.Add(EncodeBatch(&Batch{Time: 7, Commands: []Command{cmdAction(move), cmdAction(heal), cmdAction(raw)}}))
	for _, p := range replicaBatches()[:3] {
		f.Add(p)
	}
	// A fence, a write it refuses, and imports (issue 14): one of a world
	// the fuzz worlds lack, one of a world they hold.
	exp := newHarness(f)
	exp.createWorld("x", Rules{})
	exp.event(act("x", "ann", 1, opIncr("e", "c", 1)))
	blob, _ := exp.export("x", 1)
	f.Add(EncodeBatch(&Batch{Time: 9, Commands: []Command{
		cmdMove(WorldMove{World: "w", Shard: 2}), cmdAction(act("w", "p", 1, opIncr("e", "c", 1))),
		cmdImport("x", blob), cmdImport("w", blob),
	}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			require.Nil(t, b)
			require.Panics(t, func() { mustNew(t).Apply(1, data) })
			return
		}
		enc := EncodeBatch(b)
		again, err := DecodeBatch(enc)
		require.NoError(t, err, "a decoded batch re-encodes to a decodable one")
		require.Equal(t, b, again)
		require.Equal(t, enc, EncodeBatch(again), "re-encoding is canonical")

		// Whatever decodes applies without panicking, identically on two
		// replicas, and leaves a state that snapshots and restores.
		r1, r2 := mustNew(t), mustNew(t)
		for _, f := range []*FSM{r1, r2} {
			f.ApplyBatch(1, &Batch{Commands: fuzzWorlds})
		}
		require.Equal(t, r1.Apply(2, data), r2.Apply(2, data))
		snap := snapshotBytes(t, r1)
		require.Equal(t, snap, snapshotBytes(t, r2))
		requireHashesConsistent(t, r1)
		require.Equal(t, snap, snapshotBytes(t, restored(t, snap)))
	})
}

func mustNew(t *testing.T) *FSM {
	t.Helper()
	f, err := New(DefaultConfig())
	require.NoError(t, err)
	return f
}

func FuzzActionJSON(f *testing.F) {
	for _, s := range []string{
		`{"op":"set","entity":"e","field":"f","value":3,"expect":"*"}`,
		`{"op":"set","entity":"e","field":"f","value":1.0}`,
		`{"op":"set","entity":"door","field":"open","value":true,"expect":"12"}`,
		`{"op":"incr","entity":"e","field":"hp","by":-2}`,
		`{"op":"add","entity":"e","field":"t","value":"x\u00e9\ud800"}`,
		`{"op":"remove","entity":"e","field":"t","value":-0.0}`,
		`{"op":"delete","entity":"e","expect":"7"}`,
		`{"op":"set","value":null}`,
		`{"op":"set","value":[1]}`,
		`{"op":"set","value":1e999}`,
		`{}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Op
		if err := o.UnmarshalJSON(data); err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			require.Equal(t, Op{}, o, "a failed decode leaves the op alone")
			return
		}
		wire, err := o.MarshalJSON()
		require.NoError(t, err)
		var back Op
		require.NoError(t, back.UnmarshalJSON(wire), "%s", wire)
		// Integral floats come back as ints; everything else is exact.
		if o.Value.Kind == KindFloat && back.Value.Kind == KindInt {
			require.Equal(t, o.Value.Float, float64(back.Value.Int))
			back.Value = o.Value
		}
		require.Equal(t, o, back, "%s", wire)
		wire2, err := back.MarshalJSON()
		require.NoError(t, err)
		require.Equal(t, wire, wire2, "the wire form is a fixed point")
		// Check and Validate never panic on what JSON can express.
		_ = (&Action{World: "w", Player: "p", Seq: 1, Ops: []Op{o}}).Validate()
	})
}
