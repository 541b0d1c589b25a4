package fsm

import (
	"bytes"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// testingT is what the helpers need; *testing.T and *testing.B have it, and
// rapidT adapts *rapid.T.
type testingT interface {
	require.TestingT
	Helper()
	Fatalf(format string, args ...any)
}

// rapidT adds the Helper method that *rapid.T lacks.
type rapidT struct{ *rapid.T }

func (rapidT) Helper() {}

// harness drives one FSM the way the store does: every batch is encoded and
// handed to Apply with the next Raft index.
type harness struct {
	t     testingT
	f     *FSM
	index uint64
	time  int64
}

func newHarness(t testingT, cfg ...Config) *harness {
	t.Helper()
	c := DefaultConfig()
	if len(cfg) > 0 {
		c = cfg[0]
	}
	f, err := New(c)
	require.NoError(t, err)
	return &harness{t: t, f: f, time: 1_700_000_000_000_000_000}
}

// apply encodes the commands as one batch and applies it.
func (h *harness) apply(cmds ...Command) []Result {
	h.t.Helper()
	h.index++
	h.time += 1_000_000
	res := h.f.Apply(h.index, EncodeBatch(&Batch{Time: h.time, Commands: cmds}))
	require.Len(h.t, res, len(cmds))
	return res
}

// createWorld creates a world and requires success.
func (h *harness) createWorld(id string, rules Rules) {
	h.t.Helper()
	res := h.apply(cmdWorld(id, rules))
	require.NoError(h.t, res[0].Err)
}

// do applies one action in its own batch and returns its result.
func (h *harness) do(a *Action) Result {
	h.t.Helper()
	return h.apply(cmdAction(a))[0]
}

// event applies one action and requires a new (non-duplicate) event.
func (h *harness) event(a *Action) *Event {
	h.t.Helper()
	r := h.do(a)
	require.NoError(h.t, r.Err)
	require.False(h.t, r.Duplicate)
	require.NotNil(h.t, r.Event)
	return r.Event
}

func (h *harness) entity(world, id string) EntityView {
	h.t.Helper()
	v, err := h.f.Entity(world, id)
	require.NoError(h.t, err)
	return v
}

func (h *harness) field(world, id, name string) FieldView {
	h.t.Helper()
	for _, fv := range h.entity(world, id).Fields {
		if fv.Name == name {
			return fv
		}
	}
	h.t.Fatalf("entity %s has no field %s", id, name)
	return FieldView{}
}

func (h *harness) hash(world string) uint64 {
	h.t.Helper()
	p, err := h.f.Hash(world, 0)
	require.NoError(h.t, err)
	return p.Hash
}

func (h *harness) worldSeq(world string) uint64 {
	h.t.Helper()
	wi, err := h.f.World(world)
	require.NoError(h.t, err)
	return wi.Seq
}

func (h *harness) snapshotBytes() []byte {
	h.t.Helper()
	return snapshotBytes(h.t, h.f)
}

func snapshotBytes(t testingT, f *FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := f.Snapshot().WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	return buf.Bytes()
}

// restored returns a fresh FSM restored from snapshot bytes.
// forgetIncarnations makes f's worlds look created before incarnations (as
// restored from a snapshot older than format 6), so that tests of the
// older formats' bytes can build their states with today's Apply.
func forgetIncarnations(f *FSM) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.worlds {
		w.incarnation, w.created = 0, 0
		clear(w.dataVer) // nor had those binaries data versions (format 8)
	}
}

func restored(t testingT, snap []byte, cfg ...Config) *FSM {
	t.Helper()
	c := DefaultConfig()
	if len(cfg) > 0 {
		c = cfg[0]
	}
	f, err := New(c)
	require.NoError(t, err)
	require.NoError(t, f.Restore(bytes.NewReader(snap)))
	return f
}

func cmdAction(a *Action) Command { return Command{Kind: CmdAction, Action: a} }

func cmdWorld(id string, rules Rules) Command {
	return Command{Kind: CmdCreateWorld, World: &WorldSpec{ID: id, Origin: "eu-west", Rules: rules}}
}

func act(world, player string, seq uint64, ops ...Op) *Action {
	return &Action{World: world, Player: player, Seq: seq, Ops: ops}
}

func opSet(entity, field string, v Value) Op {
	return Op{Kind: OpSet, Entity: entity, Field: field, Value: v}
}

func opIncr(entity, field string, by int64) Op {
	return Op{Kind: OpIncr, Entity: entity, Field: field, By: by}
}

func opAdd(entity, field string, v Value) Op {
	return Op{Kind: OpAdd, Entity: entity, Field: field, Value: v}
}

func opRemove(entity, field string, v Value) Op {
	return Op{Kind: OpRemove, Entity: entity, Field: field, Value: v}
}

func opDelete(entity string) Op { return Op{Kind: OpDelete, Entity: entity} }

func withExpect(o Op, x Expect) Op {
	o.Expect = x
	return o
}

var expectAbsent = Expect{Mode: ExpectAbsent}

func expectVersion(v uint64) Expect { return Expect{Mode: ExpectVersion, Version: v} }

func rules(strict bool, fields map[string]FieldRule) Rules {
	return Rules{Strict: strict, Fields: fields}
}

// valuesOnly strips versions and seqs from an entity view, leaving what
// converges independently of the order of merge-safe ops.
func valuesOnly(v EntityView) EntityView {
	out := EntityView{ID: v.ID, Fields: make([]FieldView, len(v.Fields))}
	for i, fv := range v.Fields {
		fv.Version = 0
		out.Fields[i] = fv
	}
	return out
}
