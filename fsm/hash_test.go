package fsm

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashKeepsRecentSeqsAndRefusesOldOrFutureOnes(t *testing.T) {
	h := newHarness(t, Config{Window: 1024, HashHistory: 4})
	h.createWorld("w", Rules{})
	h.createWorld("v", Rules{})
	seen := map[uint64]HashPoint{}
	for s := uint64(1); s <= 10; s++ {
		ev := h.event(act("w", "p", s, opIncr("e", "c", int64(s))))
		h.event(act("v", "p", s, opIncr("e", "c", 1))) // other worlds keep their own history
		p, err := h.f.Hash("w", 0)
		require.NoError(t, err)
		require.Equal(t, ev.Seq, p.Seq)
		require.Equal(t, ev.Index, p.Index)
		seen[s] = p
	}
	for s := uint64(7); s <= 10; s++ {
		p, err := h.f.Hash("w", s)
		require.NoError(t, err, "seq %d", s)
		require.Equal(t, seen[s], p)
	}
	for _, s := range []uint64{1, 5, 6, 11, 1 << 40} {
		_, err := h.f.Hash("w", s)
		require.ErrorIs(t, err, ErrSeqUnknown, "seq %d", s)
		require.Equal(t, CodeSeqUnknown, Code(err))
	}
	_, err := h.f.Hash("nope", 0)
	require.ErrorIs(t, err, ErrUnknownWorld)
	// Distinct states have distinct hashes.
	distinct := map[uint64]bool{}
	for _, p := range seen {
		distinct[p.Hash] = true
	}
	require.Len(t, distinct, 10)
}

func TestHashOfAFreshWorldIsZeroAtSeqZero(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	p, err := h.f.Hash("w", 0)
	require.NoError(t, err)
	require.Equal(t, HashPoint{}, p)
	_, err = h.f.Hash("w", 1)
	require.ErrorIs(t, err, ErrSeqUnknown)
}

func TestHashAfterRestoreKnowsOnlyTheCurrentSeq(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	for s := uint64(1); s <= 3; s++ {
		h.event(act("w", "p", s, opIncr("e", "c", 1)))
	}
	g := restored(t, h.snapshotBytes())
	p, err := g.Hash("w", 3)
	require.NoError(t, err)
	want, err := h.f.Hash("w", 3)
	require.NoError(t, err)
	require.Equal(t, want, p)
	_, err = g.Hash("w", 2)
	require.ErrorIs(t, err, ErrSeqUnknown)
}

func TestHashIsUnchangedByRejectedConflictingAndDuplicateActions(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}))
	h.event(act("w", "p", 1, opIncr("e", "hp", 1), opSet("e", "name", String("a"))))
	want := h.hash("w")
	h.apply(
		cmdAction(act("w", "p", 2, opSet("e", "hp", Int(1)))),
		cmdAction(act("w", "p", 3, withExpect(opSet("e", "name", String("b")), expectAbsent))),
		cmdAction(act("w", "p", 1, opIncr("e", "hp", 1), opSet("e", "name", String("a")))),
		cmdAction(act("w", "p", 4)),
	)
	require.Equal(t, want, h.hash("w"))
	require.Equal(t, uint64(4), h.worldSeq("w"))
}

func TestWorldHashIsTheSumOfItsFieldHashes(t *testing.T) {
	h := newHarness(t)
	applyAll(h, prefixBatches())
	applyAll(h, suffixBatches())
	for id, w := range h.f.worlds {
		var sum uint64
		for eid, e := range w.entities {
			for _, fl := range e.fields {
				c := *fl
				c.rehash(eid)
				require.Equal(t, c.hash, fl.hash, "field %s.%s", eid, fl.name)
				sum += fl.hash
			}
		}
		require.Equal(t, sum, w.hash, "world %s", id)
	}
}

func TestHashCoversValuesVersionsAndPolicies(t *testing.T) {
	base := func() *harness {
		h := newHarness(t)
		h.createWorld("w", Rules{})
		return h
	}
	hashes := map[string]uint64{}
	for name, ops := range map[string][][]Op{
		"int 1":           {{opSet("e", "x", Int(1))}},
		"int 2":           {{opSet("e", "x", Int(2))}},
		"float 1":         {{opSet("e", "x", Float(1))}},
		"string 1":        {{opSet("e", "x", String("1"))}},
		"bool true":       {{opSet("e", "x", Bool(true))}},
		"counter 1":       {{opIncr("e", "x", 1)}},
		"set {1}":         {{opAdd("e", "x", Int(1))}},
		"int 1 at v2":     {{opSet("o", "y", Int(0))}, {opSet("e", "x", Int(1))}},
		"other entity":    {{opSet("f", "x", Int(1))}},
		"other field":     {{opSet("e", "y", Int(1))}},
		"set {1,2}":       {{opAdd("e", "x", Int(1)), opAdd("e", "x", Int(2))}},
		"set {2}":         {{opAdd("e", "x", Int(2))}},
		"int 1 set twice": {{opSet("e", "x", Int(1))}, {opSet("e", "x", Int(1))}},
	} {
		h := base()
		for i, o := range ops {
			h.event(act("w", "p", uint64(i+1), o...))
		}
		hashes[name] = h.hash("w")
	}
	seen := map[uint64]string{}
	for name, hv := range hashes {
		other, dup := seen[hv]
		require.False(t, dup, "%s and %s hash alike", name, other)
		seen[hv] = name
	}
}

// replicaBatches is a deterministic workload touching every feature.
func replicaBatches() [][]byte {
	var out [][]byte
	bt := func(cmds ...Command) {
		out = append(out, EncodeBatch(&Batch{Time: int64(len(out)) * 1000, Commands: cmds}))
	}
	bt(cmdWorld("w", rules(false, map[string]FieldRule{"best": {Type: KindInt, Policy: PolicyMax}})), cmdWorld("s", rules(true, nil)))
	for round := range 30 {
		var cmds []Command
		for p := range 10 {
			player := fmt.Sprintf("p%d", p)
			seq := uint64(round + 1)
			e := fmt.Sprintf("e%d", (round+p)%7)
			var o Op
			switch (round*10 + p) % 9 {
			case 0:
				o = opIncr(e, "hp", int64(p-4))
			case 1:
				o = opAdd(e, "tags", String(fmt.Sprint(p%3)))
			case 2:
				o = opRemove(e, "tags", String(fmt.Sprint(round%3)))
			case 3:
				o = withExpect(opSet(e, "owner", String(player)), expectAbsent)
			case 4:
				o = opSet(e, "best", Int(int64(round*p%17)))
			case 5:
				o = withExpect(opDelete(e), expectVersion(uint64(round)))
			case 6:
				o = opSet(e, "hp", Int(1)) // policy violation once hp is a counter
			case 7:
				o = opSet(e, "pos", Float(float64(p)/3))
			case 8:
				o = opSet(e, "pos", Int(int64(p)))
			}
			cmds = append(cmds, cmdAction(act("w", player, seq, o, opIncr("totals", player, 1))))
			if p == 0 {
				cmds = append(cmds, cmdAction(act("w", player, seq, o, opIncr("totals", player, 1)))) // retry
				cmds = append(cmds, cmdAction(act("s", player, seq, o)))                              // rejected
			}
		}
		bt(cmds...)
	}
	return out
}

func TestReplicasApplyingTheSameEncodedBatchesAgree(t *testing.T) {
	batches := replicaBatches()
	a, err := New(DefaultConfig())
	require.NoError(t, err)
	b, err := New(DefaultConfig())
	require.NoError(t, err)
	var midSnap []byte
	for i, p := range batches {
		ra := a.Apply(uint64(i+1), p)
		rb := b.Apply(uint64(i+1), bytes.Clone(p))
		require.Equal(t, ra, rb)
		for _, w := range []string{"w", "s"} {
			ha, err := a.Hash(w, 0)
			require.NoError(t, err)
			hb, err := b.Hash(w, 0)
			require.NoError(t, err)
			require.Equal(t, ha, hb)
		}
		if i == len(batches)/2 {
			midSnap = snapshotBytes(t, a)
		}
	}
	require.Equal(t, snapshotBytes(t, a), snapshotBytes(t, b))

	// A third replica restored mid-way and fed the rest agrees too.
	c := restored(t, midSnap)
	for i := len(batches)/2 + 1; i < len(batches); i++ {
		c.Apply(uint64(i+1), batches[i])
	}
	require.Equal(t, snapshotBytes(t, a), snapshotBytes(t, c))
	require.Equal(t, a.Worlds(), c.Worlds())
}
