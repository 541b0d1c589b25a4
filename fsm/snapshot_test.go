package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// prefixBatches builds a state with every kind of field, several players
// (one with records in two chunks), nodes and two worlds.
func prefixBatches() [][]Command {
	var p1 []Command
	for s := uint64(1); s <= 70; s++ {
		p1 = append(p1, cmdAction(act("a", "p1", s, opIncr("e2", "hp", int64(s)))))
	}
	return [][]Command{
		{
			{Kind: CmdPutNode, Node: &NodeInfo{ID: "n1", RaftAddr: "r1", HTTPAddr: "h1", Region: "eu"}},
			{Kind: CmdPutNode, Node: &NodeInfo{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2"}},
			cmdWorld("a", rules(false, map[string]FieldRule{
				"hp":   {Type: KindInt, Policy: PolicyCounter},
				"tags": {Type: KindString, Policy: PolicySet},
				"best": {Type: KindInt, Policy: PolicyMax},
			})),
			cmdWorld("b", rules(true, map[string]FieldRule{"name": {Type: KindString, Policy: PolicyAuthoritative}})),
		},
		{
			cmdAction(act("a", "p2", 1,
				opSet("e1", "name", String("x")), opIncr("e1", "hp", 5), opIncr("e1", "hp", -2),
				opAdd("e1", "tags", String("r")), opAdd("e1", "tags", String("g")), opSet("e1", "best", Int(5)),
				opSet("e1", "pos", Float(1.5)), opSet("e1", "alive", Bool(true)),
			)),
			cmdAction(act("a", "p2", 2, opSet("e3", "name", String("three")))),
			cmdAction(act("a", "p2", 3, opSet("gone", "x", Int(1)), opAdd("gone", "marks", Int(7)))),
			cmdAction(act("b", "p1", 1, opSet("z", "name", String("zed")))),
		},
		p1,
	}
}

// suffixBatches mutates everything prefixBatches built, deletes, recreates
// and creates entities, players, worlds and nodes.
func suffixBatches() [][]Command {
	return [][]Command{
		{
			cmdAction(act("a", "p2", 4,
				opSet("e1", "name", String("y")), opIncr("e1", "hp", 100), opAdd("e1", "tags", String("b")),
				opRemove("e1", "tags", String("r")), opSet("e1", "best", Int(9)), opSet("e1", "extra", String("new")),
			)),
			cmdAction(act("a", "p1", 71, opIncr("e2", "hp", 1))),  // shared chunk
			cmdAction(act("a", "p1", 200, opIncr("e2", "hp", 1))), // new chunk
			cmdAction(act("a", "p3", 1, opDelete("e3"), opSet("e4", "name", String("four")))),
		},
		{
			cmdAction(act("a", "p2", 5, opDelete("gone"))),
			cmdAction(act("a", "p2", 6, opSet("gone", "y", String("back")))),
			cmdAction(act("b", "p1", 2, opSet("z", "name", String("zz")))),
			cmdWorld("c", Rules{}),
			cmdAction(act("c", "p1", 1, opIncr("k", "n", 1))),
			{Kind: CmdPutNode, Node: &NodeInfo{ID: "n3", RaftAddr: "r3", HTTPAddr: "h3"}},
			{Kind: CmdRemoveNode, Node: &NodeInfo{ID: "n1"}},
			{Kind: CmdPutNode, Node: &NodeInfo{ID: "n2", RaftAddr: "r2b", HTTPAddr: "h2b"}},
		},
		{
			cmdAction(act("a", "p2", 7, opAdd("e1", "tags", String("r")), opSet("e1", "pos", Int(-3)))),
			cmdAction(act("a", "p1", 72, opIncr("e2", "hp", 1))),
		},
	}
}

func applyAll(h *harness, batches [][]Command) {
	for _, b := range batches {
		h.apply(b...)
	}
}

// requireSameState compares everything readers can see of two FSMs.
func requireSameState(t *testing.T, want, got *FSM) {
	t.Helper()
	require.Equal(t, want.AppliedIndex(), got.AppliedIndex())
	require.Equal(t, want.Nodes(), got.Nodes())
	require.Equal(t, want.Worlds(), got.Worlds())
	for _, w := range want.Worlds() {
		for _, id := range []string{"e1", "e2", "e3", "e4", "gone", "z", "k"} {
			wv, werr := want.Entity(w.ID, id)
			gv, gerr := got.Entity(w.ID, id)
			require.Equal(t, werr, gerr)
			require.Equal(t, wv, gv)
		}
	}
	require.Equal(t, snapshotBytes(t, want), snapshotBytes(t, got))
}

func TestSnapshotIsCopyOnWrite(t *testing.T) {
	live := newHarness(t)
	applyAll(live, prefixBatches())
	early := live.f.Snapshot()
	require.Equal(t, live.index, early.AppliedIndex())
	sfx := suffixBatches()
	live.apply(sfx[0]...)
	middle := live.f.Snapshot()
	applyAll(live, sfx[1:])

	// Reference FSMs that applied only the prefix, and prefix + first suffix batch.
	prefixOnly := newHarness(t)
	applyAll(prefixOnly, prefixBatches())
	prefixPlusOne := newHarness(t)
	applyAll(prefixPlusOne, prefixBatches())
	prefixPlusOne.apply(sfx[0]...)
	everything := newHarness(t)
	applyAll(everything, prefixBatches())
	applyAll(everything, sfx)

	var buf bytes.Buffer
	_, err := early.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, prefixOnly.snapshotBytes(), buf.Bytes(), "the early snapshot shows the state when it was taken")
	requireSameState(t, prefixOnly.f, restored(t, buf.Bytes()))

	buf.Reset()
	_, err = middle.WriteTo(&buf)
	require.NoError(t, err)
	requireSameState(t, prefixPlusOne.f, restored(t, buf.Bytes()))

	// Writing the snapshots disturbed nothing of the live state.
	requireSameState(t, everything.f, live.f)
	// A snapshot can be written again, with the same bytes.
	buf2 := &bytes.Buffer{}
	_, err = early.WriteTo(buf2)
	require.NoError(t, err)
	require.Equal(t, prefixOnly.snapshotBytes(), buf2.Bytes())
}

func TestRestoredFSMContinuesExactlyLikeTheOriginal(t *testing.T) {
	orig := newHarness(t)
	applyAll(orig, prefixBatches())
	g := &harness{t: t, f: restored(t, orig.snapshotBytes()), index: orig.index, time: orig.time}
	requireSameState(t, orig.f, g.f)

	for _, b := range suffixBatches() {
		require.Equal(t, orig.apply(b...), g.apply(b...))
	}
	requireSameState(t, orig.f, g.f)

	// Copy-on-write also holds for restored state.
	snap := g.f.Snapshot()
	before := g.snapshotBytes()
	g.apply(cmdAction(act("a", "p9", 1, opIncr("e1", "hp", 1), opAdd("e1", "tags", String("q")), opDelete("e4"))))
	var buf bytes.Buffer
	_, err := snap.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, before, buf.Bytes())
}

func TestSnapshotWriteToRunsConcurrentlyWithApply(t *testing.T) {
	live := newHarness(t)
	applyAll(live, prefixBatches())
	want := live.snapshotBytes()
	snap := live.f.Snapshot()

	type written struct {
		b   []byte
		err error
	}
	done := make(chan written)
	go func() {
		var buf bytes.Buffer
		_, err := snap.WriteTo(&buf)
		done <- written{buf.Bytes(), err}
	}()
	for range 5 {
		applyAll(live, suffixBatches())
		for i := range 20 {
			live.apply(cmdAction(act("a", "px", uint64(live.index)*100+uint64(i), opIncr("e1", "hp", 1), opAdd("e1", "tags", String(fmt.Sprint(i))))))
		}
	}
	got := <-done
	require.NoError(t, got.err)
	require.Equal(t, want, got.b)
}

func TestReadsRunConcurrentlyWithApplyAndRestore(t *testing.T) {
	live := newHarness(t)
	applyAll(live, prefixBatches())
	snap := live.snapshotBytes()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = live.f.Entity("a", "e1")
			_, _ = live.f.Hash("a", 3)
			_ = live.f.Worlds()
			_ = live.f.Nodes()
			_, _ = live.f.Node("n2")
			_ = live.f.AppliedIndex()
			_ = live.f.Check(act("a", "p", 1, opIncr("e1", "hp", 1)))
		}
	}()
	applyAll(live, suffixBatches())
	require.NoError(t, live.f.Restore(bytes.NewReader(snap)))
	applyAll(live, suffixBatches())
	close(stop)
	<-done
}

func TestSnapshotRoundTripKeepsNodesWorldsAndAppliedIndex(t *testing.T) {
	h := newHarness(t)
	applyAll(h, prefixBatches())
	applyAll(h, suffixBatches())
	g := restored(t, h.snapshotBytes())
	requireSameState(t, h.f, g)
	require.Equal(t, []NodeInfo{{ID: "n2", RaftAddr: "r2b", HTTPAddr: "h2b"}, {ID: "n3", RaftAddr: "r3", HTTPAddr: "h3"}}, g.Nodes())
	// The restored node knows the current hash of each world.
	for _, w := range h.f.Worlds() {
		p, err := g.Hash(w.ID, w.Seq)
		require.NoError(t, err)
		require.Equal(t, HashPoint{Seq: w.Seq, Index: w.Index, Hash: w.Hash}, p)
	}
}

func TestEmptyFSMSnapshotRoundTrips(t *testing.T) {
	f, err := New(DefaultConfig())
	require.NoError(t, err)
	b := snapshotBytes(t, f)
	require.True(t, bytes.HasPrefix(b, append(bytes.Clone(snapMagic[:len(snapMagic)-1]), 3)))
	g := restored(t, b)
	require.Empty(t, g.Worlds())
	require.Empty(t, g.Nodes())
	require.Equal(t, b, snapshotBytes(t, g))
}

func TestRestoreReplacesTheWholeState(t *testing.T) {
	src := newHarness(t)
	src.createWorld("only", Rules{})
	src.event(act("only", "p", 1, opIncr("e", "c", 1)))
	snap := src.snapshotBytes()

	dst := newHarness(t)
	applyAll(dst, prefixBatches())
	require.NoError(t, dst.f.Restore(bytes.NewReader(snap)))
	requireSameState(t, src.f, dst.f)
	_, err := dst.f.World("a")
	require.ErrorIs(t, err, ErrUnknownWorld)
}

// restoreFails requires that restoring p fails and leaves f unchanged.
func restoreFails(t *testing.T, f *FSM, p []byte, what string) error {
	t.Helper()
	before := snapshotBytes(t, f)
	applied := f.AppliedIndex()
	err := f.Restore(bytes.NewReader(p))
	require.Error(t, err, what)
	require.Equal(t, before, snapshotBytes(t, f), "%s: FSM unchanged", what)
	require.Equal(t, applied, f.AppliedIndex())
	return err
}

func TestRestoreRejectsGarbageAndWrongMagic(t *testing.T) {
	h := newHarness(t)
	applyAll(h, prefixBatches())
	valid := h.snapshotBytes()
	other := bytes.Clone(valid)
	other[len(snapMagic)-1] = snapVersion + 1 // a future format version

	for what, p := range map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("hello, world"),
		"magic only":     bytes.Clone(snapMagic),
		"batch":          EncodeBatch(sampleBatch()),
		"wrong version":  other,
		"trailing bytes": append(bytes.Clone(valid), 0),
	} {
		err := restoreFails(t, h.f, p, what)
		require.ErrorIs(t, err, ErrMalformed, what)
	}
	err := h.f.Restore(iotest.ErrReader(errors.New("disk on fire")))
	require.ErrorContains(t, err, "disk on fire")
}

func TestRestoreFailsCleanlyOnEveryTruncation(t *testing.T) {
	h := newHarness(t)
	applyAll(h, prefixBatches())
	applyAll(h, suffixBatches())
	valid := h.snapshotBytes()
	g := newHarness(t)
	g.createWorld("mine", Rules{})
	for i := range len(valid) {
		restoreFails(t, g.f, valid[:i], fmt.Sprintf("prefix of %d bytes", i))
	}
}

func TestRestoreRefusesATamperedValue(t *testing.T) {
	h := newHarness(t)
	applyAll(h, prefixBatches())
	h.event(act("a", "p2", 50, opSet("e1", "secret", String("TAMPERME"))))
	valid := h.snapshotBytes()
	at := bytes.Index(valid, []byte("TAMPERME"))
	require.Positive(t, at)

	bad := bytes.Clone(valid)
	bad[at] ^= 0x01
	err := restoreFails(t, newHarness(t).f, bad, "flipped value byte")
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, "state hash")

	// Flipping the stored hash itself is caught the same way.
	wi, err := h.f.World("b")
	require.NoError(t, err)
	var stored [8]byte
	for i := range stored {
		stored[i] = byte(wi.Hash >> (8 * i))
	}
	at = bytes.Index(valid, stored[:])
	require.Positive(t, at)
	bad = bytes.Clone(valid)
	bad[at+3] ^= 0x80
	err = restoreFails(t, newHarness(t).f, bad, "flipped stored hash")
	require.ErrorContains(t, err, "state hash")
}

// craftedWorld is a world built directly, with correct field and world hashes.
func craftedWorld(id string, r Rules, entities map[string][]*field) *world {
	w := &world{id: id, rules: r, rulesVersion: 1, seq: 1, entities: map[string]*entity{}, players: map[string]*player{}}
	for eid, fields := range entities {
		for _, fl := range fields {
			fl.rehash(eid)
			w.hash += fl.hash
		}
		w.entities[eid] = &entity{fields: fields}
	}
	return w
}

func writeSnapshot(t *testing.T, s *Snapshot) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := s.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}

func TestRestoreRefusesStructurallyInvalidState(t *testing.T) {
	val := func(name string, v Value) *field {
		return &field{name: name, policy: PolicyAuthoritative, kind: v.Kind, version: 1, val: v}
	}
	cases := map[string]*world{
		"invalid rules": craftedWorld("w", rules(false, map[string]FieldRule{"x": {Type: KindString, Policy: PolicyCounter}}), nil),
		"fields out of order": craftedWorld("w", Rules{}, map[string][]*field{
			"e": {val("b", Int(1)), val("a", Int(2))},
		}),
		"duplicate fields": craftedWorld("w", Rules{}, map[string][]*field{
			"e": {val("a", Int(1)), val("a", Int(2))},
		}),
		"field without policy": craftedWorld("w", Rules{}, map[string][]*field{
			"e": {{name: "a", kind: KindInt, version: 1, val: Int(1)}},
		}),
	}
	for what, w := range cases {
		p := writeSnapshot(t, &Snapshot{applied: 3, worlds: []*world{w}})
		err := restoreFails(t, newHarness(t).f, p, what)
		require.ErrorIs(t, err, ErrMalformed, what)
	}
}

func TestRestoreRefusesAnIdempotencyRecordWithSeqZero(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 5, opIncr("e", "c", 1)))
	p := h.snapshotBytes()
	// The snapshot ends with p's only record: seq, payload(8), world seq,
	// status, reason "", then no sessions, no player data and no bans.
	rec := p[len(p)-15 : len(p)-3]
	require.Equal(t, byte(5), rec[0])
	require.Equal(t, []byte{1, byte(StatusApplied), 0}, rec[9:])
	require.Equal(t, []byte{0, 0, 0}, p[len(p)-3:])
	bad := bytes.Clone(p)
	bad[len(bad)-15] = 0
	err := restoreFails(t, newHarness(t).f, bad, "record with seq 0")
	require.ErrorIs(t, err, ErrMalformed)
	require.NoError(t, newHarness(t).f.Restore(bytes.NewReader(p)))
}

func TestSnapshotWritesASetFieldWithoutElementsAsAnEmptySet(t *testing.T) {
	// Apply always gives a set field its CRDT; a field built without one
	// (as here, directly) still encodes, as an empty set.
	w := craftedWorld("w", Rules{}, map[string][]*field{
		"e": {{name: "tags", policy: PolicySet, kind: KindString, version: 4}},
	})
	g := restored(t, writeSnapshot(t, &Snapshot{applied: 1, worlds: []*world{w}}))
	v, err := g.Entity("w", "e")
	require.NoError(t, err)
	require.Equal(t, []FieldView{{Name: "tags", Policy: PolicySet, Set: []Value{}, Version: 4}}, v.Fields)
	require.Nil(t, w.entities["e"].fields[0].elements())
}

func TestSetHoldingNegativeZeroSnapshotsAndRestores(t *testing.T) {
	// -0 == +0, so they are one set element; their hashes used to differ,
	// so the set's running hash drifted from its elements and Restore
	// refused every snapshot of the world.
	negZero := Float(math.Copysign(0, -1))
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opAdd("e", "s", Float(0)), opAdd("e", "t", Float(0)), opAdd("e", "t", Float(1))))
	h.event(act("w", "p", 2, opAdd("e", "s", negZero), opRemove("e", "t", negZero)))
	g := restored(t, h.snapshotBytes())
	requireSameState(t, h.f, g)

	// The set that lost its zero hashes like one that never had it.
	ref := newHarness(t)
	ref.createWorld("w", Rules{})
	ref.event(act("w", "p", 1, opAdd("e", "s", Float(0)), opAdd("e", "t", Float(1))))
	ref.event(act("w", "p", 2, opAdd("e", "t", Float(7)), opRemove("e", "t", Float(7))))
	require.Equal(t, ref.hash("w"), h.hash("w"))
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct {
	limit, n int
}

var errWrite = errors.New("write failed")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		k := w.limit - w.n
		w.n = w.limit
		return k, errWrite
	}
	w.n += len(p)
	return len(p), nil
}

func TestSnapshotWriteToReportsWriterErrors(t *testing.T) {
	small := newHarness(t)
	small.createWorld("w", Rules{})
	small.event(act("w", "p", 1, opIncr("e", "c", 1)))

	bigEntities := newHarness(t)
	bigEntities.createWorld("w", Rules{})
	var ops []Op
	for i := range 20 {
		ops = append(ops, opSet("e", fmt.Sprintf("f%02d", i), String(strings.Repeat("x", MaxStringLen))))
	}
	bigEntities.event(act("w", "p", 1, ops...))
	bigEntities.event(act("w", "p", 2, ops...))

	bigPlayers := newHarness(t)
	bigPlayers.createWorld("w", Rules{})
	var cmds []Command
	for i := range 6000 {
		cmds = append(cmds, cmdAction(act("w", fmt.Sprintf("player-%05d", i), 1, opIncr("e", "c", 1))))
	}
	bigPlayers.apply(cmds...)

	for name, h := range map[string]*harness{"final flush": small, "entities": bigEntities, "players": bigPlayers} {
		full := h.snapshotBytes()
		for _, limit := range []int{0, 10, len(full) - 1} {
			w := &failingWriter{limit: limit}
			n, err := h.f.Snapshot().WriteTo(w)
			require.ErrorIs(t, err, errWrite, name)
			require.Equal(t, int64(w.n), n, name)
		}
		w := &failingWriter{limit: len(full)}
		n, err := h.f.Snapshot().WriteTo(w)
		require.NoError(t, err, name)
		require.Equal(t, int64(len(full)), n)
	}
	require.Greater(t, len(bigEntities.snapshotBytes()), 1<<16)
	requireSameState(t, bigPlayers.f, restored(t, bigPlayers.snapshotBytes()))
	requireSameState(t, bigEntities.f, restored(t, bigEntities.snapshotBytes()))
}
