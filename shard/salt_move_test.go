package shard

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// saltedAct runs one action of player in the salted world w on st (the
// store proposes the player's salt first).
func saltedAct(ctx context.Context, st *store.Store, player string, seq uint64, entity string) error {
	_, _, err := st.Act(ctx, &fsm.Action{World: "w", Player: player, Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: entity, Field: "n", By: 1}}})
	return err
}

// auditSalts is st's salt table of w in the form gsdctl audit verify
// --salts reads (api/audit's GET .../audit/salts).
func auditSalts(t *testing.T, st *store.Store) *wire.AuditSalts {
	t.Helper()
	tab, err := st.SaltTable("w")
	require.NoError(t, err)
	out := &wire.AuditSalts{World: "w", Incarnation: tab.Incarnation}
	for _, s := range tab.Salts {
		out.Salts = append(out.Salts, wire.AuditSalt{Player: s.Player, Salt: s.Key[:], Since: s.Since})
	}
	for _, e := range tab.Erased {
		out.Erased = append(out.Erased, wire.AuditErasedSalt{Digest: e.Digest[:], Since: e.Since, Until: e.Until})
	}
	require.NoError(t, out.Check())
	return out
}

// saltedTree appends evs to a salted audit tree of w as the auditor does
// (anticheat/audit/auditor: leaves from each event's salting).
func saltedTree(t *testing.T, inc uint64, evs []*fsm.Event) *audit.Log {
	t.Helper()
	l, err := audit.OpenSalted("w", inc, &audit.MemStore{})
	require.NoError(t, err)
	wires, salted := wireEvents(evs)
	require.NoError(t, l.AppendSalted(wires, salted))
	return l
}

func wireEvents(evs []*fsm.Event) ([]*wire.Event, []wire.SaltedIDs) {
	wires := make([]*wire.Event, len(evs))
	salted := make([]wire.SaltedIDs, len(evs))
	for i, e := range evs {
		w := e.Wire()
		wires[i], salted[i] = &w, e.Salted.Lookup
	}
	return wires, salted
}

// TestASaltedWorldMovesAndItsAuditLogVerifiesAcrossTheMove: a salted world
// with events and an erased player moves from group 1 to group 2; it goes
// on at the next seq there, salted with the moved salts; the audit tree
// of its whole log (the old home's events, copied, then the new home's)
// extends the tree of the old home, and its checkpoint verifies the
// exported log with the salts served by the new home, the erased player's
// events by the kept digest; the archive's refill check accepts the
// events against it.
func TestASaltedWorldMovesAndItsAuditLogVerifiesAcrossTheMove(t *testing.T) {
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	groups := bootGroups(t, m, 1, 2)
	src, dst := groups[1], groups[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, src.CreateSaltedWorld(ctx, "w", fsm.Rules{}))
	for i, p := range []string{"alice", "bob", "carol", "bob"} {
		require.NoError(t, saltedAct(ctx, src, p, uint64(i+1), "alice"))
	}
	require.NoError(t, src.EraseSalt(ctx, "w", "carol"))
	before, err := src.World("w")
	require.NoError(t, err)
	oldTree := saltedTree(t, before.Incarnation, history(t, src, "w", 1, before.Seq))
	oldCp, err := oldTree.Checkpoint()
	require.NoError(t, err)
	oldSalts := auditSalts(t, src)

	seq, err := m.MoveWorld(ctx, "w", 1, 2, nil)
	require.NoError(t, err)
	require.Equal(t, before.Seq, seq)
	after, err := dst.World("w")
	require.NoError(t, err)
	require.True(t, after.Salted)
	require.Equal(t, before.Hash, after.Hash)
	require.Equal(t, before.Incarnation, after.Incarnation)
	require.Equal(t, oldSalts, auditSalts(t, dst), "the salts and the kept digest moved")
	requireMovedAway(t, src)

	require.NoError(t, saltedAct(ctx, dst, "alice", 5, "bob"))
	require.NoError(t, saltedAct(ctx, dst, "dave", 1, "alice")) // a salt drawn on the new home
	evs := history(t, dst, "w", 1, seq+2)
	require.Equal(t, seq+1, evs[seq].Seq, "the seq goes on")
	d, ok := evs[seq].Salted.Lookup("alice")
	require.True(t, ok)
	require.Equal(t, wire.SaltedID(oldSalts.Salts[0].Salt, "alice"), d, "salted with the moved salt")

	tree := saltedTree(t, after.Incarnation, evs)
	cp, err := tree.Checkpoint()
	require.NoError(t, err)
	oldLeaves, err := oldTree.LeafHashes(1, seq)
	require.NoError(t, err)
	leaves, err := tree.LeafHashes(1, seq+2)
	require.NoError(t, err)
	require.Equal(t, oldLeaves, leaves[:seq], "the new home's tree extends the old one's")

	var export bytes.Buffer
	wires, salted := wireEvents(evs)
	for _, e := range wires {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		export.Write(append(b, '\n'))
	}
	rep, err := audit.VerifySaltedLog(bytes.NewReader(export.Bytes()), cp, auditSalts(t, dst), leaves, oldCp)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Empty(t, rep.Unchecked)
	require.Equal(t, []uint64{3}, rep.Erased, "carol's event, by her kept digest")
	require.True(t, rep.OK())
	n, err := tree.VerifySaltedEvents(cp, wires, salted)
	require.NoError(t, err)
	require.Equal(t, len(wires), n)
	// What the refill's verifier confirms first (cmd/gsd archive.go): the
	// new home's table gives every salted id of the old home's events but
	// the erased player's its digest.
	keys := map[string][]byte{}
	for _, s := range auditSalts(t, dst).Salts {
		keys[s.Player] = s.Salt
	}
	confirmed := 0
	for _, e := range evs[:seq] {
		for _, n := range e.Salted.Names {
			if k, ok := keys[n.Name]; ok {
				require.Equal(t, wire.SaltedID(k, n.Name), n.Digest, "seq %d, %s", e.Seq, n.Name)
				confirmed++
			} else {
				require.Equal(t, "carol", n.Name, "only the erased player has no salt")
			}
		}
	}
	require.Positive(t, confirmed)
}

// requireMovedAway checks that st refuses writes to w with world_moved.
func requireMovedAway(t *testing.T, st *store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.ErrorIs(t, saltedAct(ctx, st, "alice", 99, "e"), fsm.ErrWorldMoved)
}

// log14Target boots group 1 on a current node and group 2 on a node
// that reads log 14 (its voter), and returns their stores.
func log14Target(t *testing.T) (src, dst *store.Store) {
	return oldTarget(t, fsm.Versions{Log: 14, Snapshot: 10, Wire: 1})
}

// oldTarget boots group 1 on a current node and group 2 on a node that
// reads v (its voter), and returns their stores.
func oldTarget(t *testing.T, v fsm.Versions) (src, dst *store.Store) {
	t.Helper()
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	src = bootGroups(t, m, 1)[1]
	cfg := testStoreConfig("n2")
	cfg.Versions = v
	old, err := NewManager(ManagerConfig{DataDir: t.TempDir(), Store: cfg}, groupMux(t), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = old.Close(context.Background()) })
	return src, bootGroups(t, old, 2)[2]
}

// TestMovingASaltedWorldToAGroupWithALog14VoterFencesNothing: the target
// would refuse the salted world's export (format 2 needs log 15), so the
// move is refused with version_gate before the fence and the world takes
// writes at its old home; an unsalted world moves there as before.
func TestMovingASaltedWorldToAGroupWithALog14VoterFencesNothing(t *testing.T) {
	src, dst := log14Target(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, src.CreateSaltedWorld(ctx, "w", fsm.Rules{}))
	require.NoError(t, saltedAct(ctx, src, "alice", 1, "e"))

	requireMoveRefusedUnfenced(ctx, t, src, dst, "w")
	require.NoError(t, saltedAct(ctx, src, "alice", 2, "e"), "the world takes writes at its old home")

	mustCreateWorld(t, src, "plain")
	act(t, src, incr("plain", "p1", 1, "e1"))
	seq, err := Move(ctx, src, dst, "plain", 2, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
}

// TestASaltedWorldFencedAlreadyIsExportedWhateverTheTargetSays: a move
// retried after its fence (the world refuses writes already) goes on to
// the export, in format 2, and the import tells the target's refusal
// again; an unsalted world is never held back by it: the target's answer
// picks its export format.
func TestASaltedWorldFencedAlreadyIsExportedWhateverTheTargetSays(t *testing.T) {
	ctx := context.Background()
	refused := Unimportable("voter n3 reads log 14")
	require.ErrorIs(t, refused, store.ErrVersionGate)
	require.NoError(t, Unimportable(""))

	fence := fsm.Fence{World: "w", Shard: 2, Seq: 9}
	src := &fakeGroup{world: fsm.WorldInfo{ID: "w", Salted: true}, fence: fence, exportSeq: 9}
	_, err := FenceAndExportFor(ctx, src, "w", 2, refused)
	require.ErrorIs(t, err, store.ErrVersionGate)
	require.ErrorContains(t, err, "nothing fenced")

	require.Empty(t, src.formats, "nothing exported")
	src.world.Moved = &fence
	e, err := FenceAndExportFor(ctx, src, "w", 2, refused)
	require.NoError(t, err)
	require.Equal(t, uint64(9), e.Seq)
	require.Equal(t, []byte{fsm.ExportFormat}, src.formats, "a salted world only in format 2")

	src.world, src.formats = fsm.WorldInfo{ID: "w"}, nil
	_, err = FenceAndExportFor(ctx, src, "w", 2, refused)
	require.NoError(t, err, "an unsalted world")
	_, err = FenceAndExportFor(ctx, src, "w", 2, nil)
	require.NoError(t, err)
	require.Equal(t, []byte{1, fsm.ExportFormat}, src.formats, "an unsalted world in format 1 towards a target that refuses format 2, else in 2")
	require.NoError(t, ExportFormatGate(&fakeGroup{}), "a target without a gate is not asked")
}
