package fsm

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// drawBatching splits n items into consecutive batch sizes.
func drawBatching(t *rapid.T, n int, label string) []int {
	var sizes []int
	for n > 0 {
		k := rapid.IntRange(1, n).Draw(t, label)
		sizes = append(sizes, k)
		n -= k
	}
	return sizes
}

func applyActions(t *rapid.T, f *FSM, index *uint64, actions []*Action, sizes []int) []Result {
	var out []Result
	for _, k := range sizes {
		cmds := make([]Command, k)
		for i := range cmds {
			cmds[i] = cmdAction(actions[i])
		}
		actions = actions[k:]
		*index++
		out = append(out, f.Apply(*index, EncodeBatch(&Batch{Time: int64(*index), Commands: cmds}))...)
	}
	return out
}

func TestCountersAndSetsConvergeRegardlessOfActionOrder(t *testing.T) {
	entities := []string{"a", "b", "c"}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "actions")
		actions := make([]*Action, n)
		sums := map[string]int64{}
		unions := map[string]map[Value]bool{}
		for i := range actions {
			a := act("w", fmt.Sprintf("p%d", rapid.IntRange(0, 4).Draw(t, "player")), uint64(i+1))
			for range rapid.IntRange(1, 3).Draw(t, "ops") {
				e := rapid.SampledFrom(entities).Draw(t, "entity")
				if rapid.Bool().Draw(t, "incr") {
					by := rapid.Int64Range(-100, 100).Draw(t, "by")
					a.Ops = append(a.Ops, opIncr(e, "n", by))
					sums[e] += by
				} else {
					v := Int(rapid.Int64Range(0, 9).Draw(t, "element"))
					a.Ops = append(a.Ops, opAdd(e, "s", v))
					if unions[e] == nil {
						unions[e] = map[Value]bool{}
					}
					unions[e][v] = true
				}
			}
			actions[i] = a
		}
		perm := rapid.Permutation(actions).Draw(t, "order")

		replicas := make([]*FSM, 2)
		for r, order := range [][]*Action{actions, perm} {
			f, err := New(DefaultConfig())
			require.NoError(t, err)
			f.Apply(1, EncodeBatch(&Batch{Commands: []Command{cmdWorld("w", Rules{})}}))
			index := uint64(1)
			for _, res := range applyActions(t, f, &index, order, drawBatching(t, n, "batch")) {
				require.NoError(t, res.Err)
				require.False(t, res.Duplicate)
				require.Equal(t, StatusApplied, res.Event.Status)
			}
			replicas[r] = f
		}

		for _, e := range entities {
			va, erra := replicas[0].Entity("w", e)
			vb, errb := replicas[1].Entity("w", e)
			require.Equal(t, erra, errb)
			if erra != nil {
				continue
			}
			require.Equal(t, valuesOnly(va), valuesOnly(vb))
			for _, fv := range va.Fields {
				switch fv.Name {
				case "n":
					require.Equal(t, Int(sums[e]), fv.Value, "counter is the sum of its increments")
				case "s":
					var want []Value
					for v := range unions[e] {
						want = append(want, v)
					}
					slices.SortFunc(want, Value.Compare)
					require.Equal(t, want, fv.Set, "set is the union of its adds")
				}
			}
		}
	})
}

var (
	propEntities = []string{"e1", "e2", "e3", "e4"}
	propFields   = []string{"hp", "tags", "name", "best", "low", "pos", "any"}
	propValues   = []Value{
		Int(0), Int(1), Int(-7), Int(math.MaxInt64), Float(0), Float(math.Copysign(0, -1)), Float(1.5), Float(-2),
		String(""), String("a"), String("b"), Bool(true), Bool(false),
	}
)

func drawOp(t *rapid.T) Op {
	o := Op{
		Kind:   OpKind(rapid.IntRange(0, 6).Draw(t, "kind")), // 0 and 6 are malformed
		Entity: rapid.SampledFrom(propEntities).Draw(t, "entity"),
		Field:  rapid.SampledFrom(propFields).Draw(t, "field"),
	}
	switch o.Kind {
	case OpSet, OpAdd, OpRemove:
		o.Value = rapid.SampledFrom(propValues).Draw(t, "value")
	case OpIncr:
		o.By = rapid.Int64Range(-5, 5).Draw(t, "by")
	case OpDelete:
		o.Field = ""
	}
	switch rapid.IntRange(0, 5).Draw(t, "expect") {
	case 0:
		o.Expect = expectAbsent
	case 1:
		o.Expect = expectVersion(rapid.Uint64Range(0, 12).Draw(t, "version"))
	}
	return o
}

func drawCommand(t *rapid.T) Command {
	switch rapid.IntRange(0, 19).Draw(t, "command") {
	case 0:
		return Command{Kind: CmdPutNode, Node: &NodeInfo{ID: rapid.SampledFrom([]string{"n1", "n2"}).Draw(t, "node"), RaftAddr: "r", HTTPAddr: "h"}}
	case 1:
		return Command{Kind: CmdRemoveNode, Node: &NodeInfo{ID: "n1"}}
	case 2:
		return cmdWorld(rapid.SampledFrom([]string{"w", "late"}).Draw(t, "world"), Rules{})
	}
	a := &Action{
		World:     rapid.SampledFrom([]string{"w", "w", "w", "strict", "late", "nowhere"}).Draw(t, "world"),
		Player:    rapid.SampledFrom([]string{"ann", "bob", "cat"}).Draw(t, "player"),
		Seq:       rapid.Uint64Range(0, 15).Draw(t, "seq"),
		InputTime: rapid.Int64Range(0, 2).Draw(t, "input"),
		Priority:  Priority(rapid.IntRange(0, 1).Draw(t, "priority")),
	}
	for range rapid.IntRange(0, 3).Draw(t, "ops") {
		a.Ops = append(a.Ops, drawOp(t))
	}
	return cmdAction(a)
}

func propWorlds() []Command {
	return []Command{
		cmdWorld("w", rules(false, map[string]FieldRule{
			"best": {Type: KindFloat, Policy: PolicyMax},
			"low":  {Type: KindString, Policy: PolicyMin},
		})),
		cmdWorld("strict", rules(true, map[string]FieldRule{
			"hp":   {Type: KindInt, Policy: PolicyCounter},
			"tags": {Type: KindInt, Policy: PolicySet},
			"name": {Type: KindString, Policy: PolicyAuthoritative},
		})),
	}
}

// requireHashesConsistent checks every stored field and world hash against a
// recomputation from the state.
func requireHashesConsistent(t require.TestingT, f *FSM) {
	for id, w := range f.worlds {
		var sum uint64
		for eid, e := range w.entities {
			require.NotEmpty(t, e.fields, "entity %s has fields", eid)
			for _, fl := range e.fields {
				c := *fl
				c.rehash(eid)
				require.Equal(t, c.hash, fl.hash)
				if fl.set != nil {
					var s uint64
					for _, v := range fl.set.Elements() {
						s += elementHash(v)
					}
					require.Equal(t, s, fl.setSum, "set sum of %s.%s", eid, fl.name)
				}
				sum += fl.hash
			}
		}
		require.Equal(t, sum, w.hash, "world %s", id)
	}
}

func TestReplicasStayIdenticalUnderRandomActions(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var batches [][]byte
		batches = append(batches, EncodeBatch(&Batch{Time: 1, Commands: propWorlds()}))
		for i := range rapid.IntRange(1, 12).Draw(t, "batches") {
			var cmds []Command
			for range rapid.IntRange(0, 8).Draw(t, "commands") {
				cmds = append(cmds, drawCommand(t))
			}
			batches = append(batches, EncodeBatch(&Batch{Time: int64(i + 2), Commands: cmds}))
		}
		cut := rapid.IntRange(0, len(batches)).Draw(t, "snapshot after")

		a, err := New(DefaultConfig())
		require.NoError(t, err)
		b, err := New(DefaultConfig())
		require.NoError(t, err)
		var early *Snapshot
		var atCut []byte
		for i, p := range batches {
			if i == cut {
				early = a.Snapshot()
				atCut = snapshotBytes(rapidT{t}, a)
			}
			ra := a.Apply(uint64(i+1), p)
			rb := b.Apply(uint64(i+1), bytes.Clone(p))
			require.Equal(t, ra, rb)
			for _, r := range ra {
				if r.Event != nil && r.Event.Status == StatusRejected {
					require.Empty(t, r.Event.Changes)
					require.NotEmpty(t, r.Event.Reason)
				}
			}
		}
		if early == nil {
			early = a.Snapshot()
			atCut = snapshotBytes(rapidT{t}, a)
		}
		final := snapshotBytes(rapidT{t}, a)
		require.Equal(t, final, snapshotBytes(rapidT{t}, b))
		for _, w := range a.Worlds() {
			hb, err := b.Hash(w.ID, 0)
			require.NoError(t, err)
			require.Equal(t, w.Hash, hb.Hash)
		}
		requireHashesConsistent(t, a)

		// The early snapshot, written after everything else, still shows the cut.
		var buf bytes.Buffer
		_, err = early.WriteTo(&buf)
		require.NoError(t, err)
		require.Equal(t, atCut, buf.Bytes())

		// A replica restored at the cut and fed the rest ends identical.
		c := restored(rapidT{t}, buf.Bytes())
		requireHashesConsistent(t, c)
		for i := cut; i < len(batches); i++ {
			c.Apply(uint64(i+1), batches[i])
		}
		require.Equal(t, final, snapshotBytes(rapidT{t}, c))
		require.Equal(t, a.Worlds(), c.Worlds())
	})
}

func TestUnappliedActionsNeverChangeTheHash(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := newHarness(rapidT{t})
		h.apply(propWorlds()...)
		for range rapid.IntRange(1, 40).Draw(t, "commands") {
			c := drawCommand(t)
			before := map[string]uint64{}
			for _, w := range h.f.Worlds() {
				before[w.ID] = w.Hash
			}
			r := h.apply(c)[0]
			if c.Kind != CmdAction {
				continue
			}
			after, err := h.f.Hash(c.Action.World, 0)
			if err != nil {
				require.ErrorIs(t, r.Err, ErrUnknownWorld)
				continue
			}
			if r.Err != nil || r.Duplicate || r.Event.Status != StatusApplied {
				require.Equal(t, before[c.Action.World], after.Hash)
			}
		}
		requireHashesConsistent(t, h.f)
	})
}
