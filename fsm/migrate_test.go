package fsm

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func cmdMove(c WorldMove) Command { return Command{Kind: CmdMoveWorld, Move: &c} }

func cmdImport(world string, data []byte) Command {
	return Command{Kind: CmdImportWorld, Import: &WorldImport{World: world, Data: data}}
}

// fence applies a fence and requires success.
func (h *harness) fence(world string, shard uint64) Fence {
	h.t.Helper()
	r := h.apply(cmdMove(WorldMove{World: world, Shard: shard}))[0]
	require.NoError(h.t, r.Err)
	require.NotNil(h.t, r.Fence)
	return *r.Fence
}

// export exports a world in export format and requires success.
func (h *harness) export(world string, format byte) ([]byte, uint64) {
	h.t.Helper()
	blob, seq, err := h.f.ExportWorld(world, format)
	require.NoError(h.t, err)
	return blob, seq
}

func requireMoved(t *testing.T, err error, want Fence) {
	t.Helper()
	require.ErrorIs(t, err, ErrWorldMoved)
	require.Equal(t, CodeWorldMoved, Code(err))
	me, ok := errors.AsType[*MovedError](err)
	require.True(t, ok, "a *MovedError names the shard")
	require.Equal(t, want, me.Fence)
	require.ErrorContains(t, err, fmt.Sprintf("moved to shard %d at seq %d", want.Shard, want.Seq))
}

func TestFencedWorldRefusesEveryWriteAndKeepsItsReads(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.createWorld("other", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	h.event(act("w", "bob", 1, opSet("e1", "name", String("x"))))
	h.openSession("w", "s1", "ann", "t")
	before := h.hash("w")

	f := h.fence("w", 3)
	require.Equal(t, Fence{World: "w", Shard: 3, Seq: 2}, f)
	require.Equal(t, "world_moved", CodeWorldMoved)

	a := act("w", "ann", 2, opIncr("e1", "c", 1))
	requireMoved(t, h.f.Check(a), f)
	requireMoved(t, h.do(a).Err, f)
	requireMoved(t, h.do(act("w", "ann", 1, opIncr("e1", "c", 1))).Err, f) // a retry too: the new home answers it
	requireMoved(t, h.session(CmdSessionOpen, SessionCmd{World: "w", ID: "s2", Player: "cat", TokenHash: tokenHash("t")}).Err, f)
	requireMoved(t, h.session(CmdSessionBan, SessionCmd{World: "w", Player: "cat", Reason: "x"}).Err, f)
	requireMoved(t, h.apply(Command{Kind: CmdUpdateRules, Rules: &RulesUpdate{World: "w"}})[0].Err, f)
	requireMoved(t, h.apply(Command{Kind: CmdSessionExpire, Expire: &SessionExpiry{World: "w", After: 1}})[0].Err, f)
	require.False(t, h.f.IdleSessions("w", time.Unix(0, h.time).Add(time.Hour), time.Second), "expiry would be refused")
	r := h.apply(Command{Kind: CmdSessionAcks, Acks: []SessionAck{{World: "w", ID: "s1", Seq: 2}}})[0]
	require.NoError(t, r.Err)
	require.Equal(t, 0, r.Acked, "acks of a fenced world are skipped")

	// Nothing changed; reads go on.
	require.Equal(t, before, h.hash("w"))
	require.Equal(t, uint64(2), h.worldSeq("w"))
	require.Equal(t, Int(1), h.field("w", "e1", "c").Value)
	wi, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, &f, wi.Moved)
	_, err = h.f.Sessions("w")
	require.NoError(t, err)
	// Other worlds are not affected.
	h.event(act("other", "ann", 1, opIncr("e1", "c", 1)))

	// Dropped, it is unknown like any absent world.
	require.NoError(t, h.apply(cmdDelete(WorldDelete{World: "w"}))[0].Err)
	require.ErrorIs(t, h.do(a).Err, ErrUnknownWorld)
}

func TestFenceRepeatsToTheSameShardAndRefusesAnother(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	wi, err := h.f.World("w")
	require.NoError(t, err)
	require.ErrorIs(t, h.apply(cmdMove(WorldMove{World: "w", Shard: 1, Incarnation: wi.Incarnation + 1}))[0].Err, ErrUnknownWorld, "meant for another incarnation")
	require.ErrorIs(t, h.apply(cmdMove(WorldMove{World: "nope", Shard: 1}))[0].Err, ErrUnknownWorld)
	require.ErrorIs(t, h.apply(cmdMove(WorldMove{World: "", Shard: 1}))[0].Err, ErrMalformed)

	r := h.apply(cmdMove(WorldMove{World: "w", Shard: 1, Incarnation: wi.Incarnation}))[0]
	require.NoError(t, r.Err)
	require.Equal(t, &Fence{World: "w", Shard: 1}, r.Fence, "seq 0: fenced before any event")
	require.Equal(t, Fence{World: "w", Shard: 1}, h.fence("w", 1), "a retried fence")
	requireMoved(t, h.apply(cmdMove(WorldMove{World: "w", Shard: 2}))[0].Err, Fence{World: "w", Shard: 1})
}

func TestFenceSurvivesSnapshotInFormat7(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	require.Equal(t, byte(6), h.snapshotBytes()[len(snapMagic)-1], "no fence: format 6's bytes")
	f := h.fence("w", 7)
	p := h.snapshotBytes()
	require.Equal(t, byte(7), p[len(snapMagic)-1])
	g := restored(t, p)
	requireSameState(t, h.f, g)
	gh := &harness{t: t, f: g, index: h.index, time: h.time}
	requireMoved(t, gh.do(act("w", "ann", 2, opIncr("e1", "c", 1))).Err, f)
}

func TestMigrationCommandsRoundTripTheLogAndNeedLogVersion8(t *testing.T) {
	b := &Batch{Time: 7, Commands: []Command{
		cmdMove(WorldMove{World: "w", Shard: 1 << 40, Incarnation: 12}),
		cmdImport("w", append(append([]byte(nil), exportMagic...), 1, 2, 3)),
	}}
	got, err := DecodeBatch(EncodeBatch(b))
	require.NoError(t, err)
	require.Equal(t, b, got)

	log7 := Versions{Log: 7, Snapshot: 6, Wire: 1}
	for i := range b.Commands {
		c := &b.Commands[i]
		require.False(t, log7.Covers(Needs(c)), c.Kind)
		require.True(t, Supported().Covers(Needs(c)), c.Kind)
		require.Equal(t, Versions{Log: 8, Snapshot: 7, Wire: 1}, Needs(c))
	}
	require.LessOrEqual(t, uint32(8), LogVersion)
}

// migrated builds a world with every kind of state keyed by it, exports
// it, and imports it into a fresh FSM.
func TestExportImportCarriesTheWorldAndItsSeqGoesOn(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{Fields: map[string]FieldRule{"hp": {Policy: PolicyAuthoritative, Type: KindInt}}})
	h.event(act("w", "ann", 1, opSet("e1", "hp", Int(10))))
	h.event(act("w", "ann", 2, opIncr("e1", "c", 5)))
	h.event(act("w", "bob", 1, opAdd("e2", "s", String("a")), opAdd("e2", "s", String("b"))))
	h.event(act("w", "bob", 2, opRemove("e2", "s", String("a"))))
	h.event(act("w", "cat", 1, opSet("e3", "x", Int(1)))) // deleted next
	h.event(act("w", "cat", 2, opDelete("e3")))
	rej := h.event(act("w", "cat", 3, opSet("e1", "hp", String("no")))) // type mismatch: a retained reason
	require.Equal(t, StatusRejected, rej.Status)
	h.openSession("w", "s1", "ann", "t1")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{Key: "coins", Value: Int(3)}}}).Err)
	require.NoError(t, h.session(CmdSessionBan, SessionCmd{World: "w", Player: "eve", Reason: "cheating"}).Err)
	h.fence("w", 2)

	blob, n := h.export("w", 1)
	require.Equal(t, uint64(7), n)
	th := newHarness(t)
	th.index = 99    // another group's log
	th.time = h.time // whose leader's clock agrees
	th.createWorld("other", Rules{})
	r := th.apply(cmdImport("w", blob))[0]
	require.NoError(t, r.Err)
	require.Equal(t, uint64(101), r.Imported.Imported)
	requireImportedAs(t, h.f, th.f, 101)
	for _, e := range []string{"e1", "e2", "e3"} {
		sv, serr := h.f.Entity("w", e)
		dv, derr := th.f.Entity("w", e)
		require.Equal(t, serr, derr)
		require.Equal(t, sv, dv)
	}
	for s := uint64(1); s <= n; s++ {
		sp, err := h.f.Hash("w", s)
		require.NoError(t, err)
		dp, err := th.f.Hash("w", s)
		require.NoError(t, err, "seq %d: the hash history came along", s)
		require.Equal(t, sp, dp)
	}
	ss, _ := h.f.Sessions("w")
	ds, _ := th.f.Sessions("w")
	require.Equal(t, withoutDataVersions(ss), withoutDataVersions(ds))
	requireImportedVersionsRise(t, h.f, th.f)
	sb, _ := h.f.Bans("w")
	db, _ := th.f.Bans("w")
	require.Equal(t, sb, db)
	sd, _ := h.f.PlayerData("w")
	dd, _ := th.f.PlayerData("w")
	require.Equal(t, sd, dd)

	// A retried action is answered from the window, never applied twice,
	// its reason included; a reused seq is refused.
	dup := th.do(act("w", "ann", 2, opIncr("e1", "c", 5)))
	require.True(t, dup.Duplicate)
	require.Equal(t, uint64(2), dup.Event.Seq)
	dup = th.do(act("w", "cat", 3, opSet("e1", "hp", String("no"))))
	require.True(t, dup.Duplicate)
	require.Equal(t, CodeTypeMismatch, dup.Event.Reason)
	require.ErrorIs(t, th.do(act("w", "ann", 1, opSet("e1", "hp", Int(11)))).Err, ErrSeqReused)
	// The seq goes on, and an expect on a version from before the move holds.
	hp := th.field("w", "e1", "hp")
	ev := th.event(act("w", "ann", 3, withExpect(opSet("e1", "hp", Int(9)), expectVersion(hp.Version))))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, n+1, ev.Seq)
	require.Equal(t, th.index, ev.Index, "this group's log index")
	// Sessions resume: ann's session is there, bans hold.
	require.Equal(t, CodeBanned, th.event(act("w", "eve", 1, opIncr("e1", "c", 1))).Reason)
	require.ErrorIs(t, th.session(CmdSessionOpen, SessionCmd{World: "w", ID: "s9", Player: "eve", TokenHash: tokenHash("t")}).Err, ErrBanned)

	// The import index survives a snapshot (format 7, and 8 for the
	// data versions the import gave); a second import is refused.
	p := th.snapshotBytes()
	require.Equal(t, byte(8), p[len(snapMagic)-1])
	g := restored(t, p)
	requireSameState(t, th.f, g)
	require.ErrorIs(t, th.apply(cmdImport("w", blob))[0].Err, ErrWorldExists)
}

func TestExportIsAConsistentViewWhileApplyGoesOn(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	h.openSession("w", "s1", "ann", "t1")
	at := h.hash("w")
	blob, n := h.export("w", 1)
	h.event(act("w", "ann", 2, opIncr("e1", "c", 1)))
	h.event(act("w", "bob", 1, opIncr("e1", "c", 1)))
	require.NoError(t, h.session(CmdSessionClose, SessionCmd{World: "w", ID: "s1"}).Err)

	th := newHarness(t)
	require.NoError(t, th.apply(cmdImport("w", blob))[0].Err)
	require.Equal(t, n, th.worldSeq("w"))
	require.Equal(t, at, th.hash("w"))
	require.Equal(t, Int(1), th.field("w", "e1", "c").Value)
}

func TestImportRefusesBadBlobs(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	blob, _ := h.export("w", 1)
	_, _, err := h.f.ExportWorld("nope", 1)
	require.ErrorIs(t, err, ErrUnknownWorld)

	th := newHarness(t)
	corrupt := append([]byte(nil), blob...)
	corrupt[len(corrupt)-12] ^= 0xff // inside the world's stored hash or history
	for name, c := range map[string]Command{
		"empty name":   cmdImport("", blob),
		"no magic":     cmdImport("w", blob[1:]),
		"truncated":    cmdImport("w", blob[:len(blob)-3]),
		"trailing":     cmdImport("w", append(append([]byte(nil), blob...), 0)),
		"another name": cmdImport("v", blob),
		"only magic":   cmdImport("w", exportMagic),
	} {
		require.ErrorIs(t, th.apply(c)[0].Err, ErrMalformed, name)
	}
	// A blob whose contents do not match the world hash it carries.
	bad := exportOf(t, func(w *world) { w.hash++ })
	require.ErrorIs(t, th.apply(cmdImport("w", bad))[0].Err, ErrMalformed)
	_, err = th.f.World("w")
	require.ErrorIs(t, err, ErrUnknownWorld, "nothing installed")
}

// exportOf exports a small world after mangle changed it in place.
func exportOf(t *testing.T, mangle func(*world)) []byte {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	mangle(h.f.worlds["w"])
	blob, _ := h.export("w", 1)
	return blob
}

func TestImportIntoAShorterHashHistoryKeepsTheNewest(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	for i := uint64(1); i <= 5; i++ {
		h.event(act("w", "ann", i, opIncr("e1", "c", 1)))
	}
	blob, _ := h.export("w", 1)
	cfg := DefaultConfig()
	cfg.HashHistory = 2
	th := newHarness(t, cfg)
	require.NoError(t, th.apply(cmdImport("w", blob))[0].Err)
	want, err := h.f.Hash("w", 4)
	require.NoError(t, err)
	got, err := th.f.Hash("w", 4)
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = th.f.Hash("w", 3)
	require.ErrorIs(t, err, ErrSeqUnknown)
}

// TestExportImportRoundTripsAnyWorld: random world state → export in
// either format → import on a fresh FSM → the same world hash, the same
// reads (the data versions too in format 2, risen in format 1), and the
// same export bytes.
func TestExportImportRoundTripsAnyWorld(t *testing.T) {
	players := []string{"ann", "bob", "cat"}
	entities := []string{"e1", "e2", "e3"}
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarness(rapidT{rt})
		h.createWorld("w", Rules{})
		seqs := map[string]uint64{}
		for i, n := 0, rapid.IntRange(0, 40).Draw(rt, "steps"); i < n; i++ {
			p := rapid.SampledFrom(players).Draw(rt, "player")
			e := rapid.SampledFrom(entities).Draw(rt, "entity")
			switch rapid.IntRange(0, 7).Draw(rt, "kind") {
			case 0:
				seqs[p]++
				h.do(act("w", p, seqs[p], opIncr(e, "c", rapid.Int64Range(-5, 5).Draw(rt, "by"))))
			case 1:
				seqs[p]++
				h.do(act("w", p, seqs[p], opSet(e, "v", Int(rapid.Int64Range(0, 9).Draw(rt, "v")))))
			case 2:
				seqs[p]++
				h.do(act("w", p, seqs[p], opAdd(e, "s", Int(rapid.Int64Range(0, 3).Draw(rt, "el")))))
			case 3:
				seqs[p]++
				h.do(act("w", p, seqs[p], opRemove(e, "s", Int(rapid.Int64Range(0, 3).Draw(rt, "el")))))
			case 4:
				seqs[p]++
				h.do(act("w", p, seqs[p], opDelete(e)))
			case 5:
				h.session(CmdSessionOpen, SessionCmd{World: "w", ID: "s-" + p, Player: p, TokenHash: tokenHash(p)})
			case 6:
				h.session(CmdSessionData, SessionCmd{World: "w", ID: "s-" + p, Data: []DataItem{{Key: "k", Value: Int(int64(i))}}})
			case 7:
				if rapid.Bool().Draw(rt, "ban") {
					h.session(CmdSessionBan, SessionCmd{World: "w", Player: p, Reason: "r"})
				} else {
					h.session(CmdSessionUnban, SessionCmd{World: "w", Player: p})
				}
			}
		}
		if rapid.Bool().Draw(rt, "fenced") {
			h.fence("w", 1)
		}
		format := byte(rapid.IntRange(1, int(ExportFormat)).Draw(rt, "format"))
		blob, n := h.export("w", format)
		th := newHarness(rapidT{rt})
		th.index = rapid.Uint64Range(0, 1000).Draw(rt, "index")
		th.time = h.time
		require.NoError(rt, th.apply(cmdImport("w", blob))[0].Err)
		requireImportedDataVersions(rapidT{rt}, h.f, th.f, format == ExportFormat)
		require.Equal(rt, n, th.worldSeq("w"))
		require.Equal(rt, h.hash("w"), th.hash("w"))
		for _, e := range entities {
			sv, serr := h.f.Entity("w", e)
			dv, derr := th.f.Entity("w", e)
			require.Equal(rt, serr, derr)
			require.Equal(rt, sv, dv)
		}
		for _, read := range []func(*FSM) (any, error){
			func(f *FSM) (any, error) { s, err := f.Sessions("w"); return withoutDataVersions(s), err },
			func(f *FSM) (any, error) { return f.Bans("w") },
			func(f *FSM) (any, error) { return f.PlayerData("w") },
		} {
			sv, serr := read(h.f)
			dv, derr := read(th.f)
			require.NoError(rt, serr)
			require.NoError(rt, derr)
			require.Equal(rt, sv, dv)
		}
		again, m := th.export("w", format)
		require.Equal(rt, n, m)
		require.Equal(rt, blob, again, "export → import → export gives the same bytes")
	})
}

// TestExportRacesApplySafely: exports taken while Apply goes on are each
// a consistent world at their seq (run with -race).
func TestExportRacesApplySafely(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(2); seq <= 300; seq++ {
			h.f.Apply(h.index+seq, EncodeBatch(&Batch{Time: h.time, Commands: []Command{
				cmdAction(act("w", "ann", seq, opIncr("e1", "c", 1), opAdd("e2", "s", Int(int64(seq%7))))),
			}}))
		}
	}()
	var blobs [][]byte
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		blob, _, err := h.f.ExportWorld("w", byte(1+len(blobs)%2)) // both formats
		require.NoError(t, err)
		blobs = append(blobs, blob)
	}
	for _, blob := range blobs {
		th := newHarness(t)
		require.NoError(t, th.apply(cmdImport("w", blob))[0].Err)
		wi, err := th.f.World("w")
		require.NoError(t, err)
		at, err := h.f.Hash("w", wi.Seq)
		require.NoError(t, err)
		require.Equal(t, at.Hash, wi.Hash, "seq %d", wi.Seq)
		require.Equal(t, Int(int64(wi.Seq)), th.field("w", "e1", "c").Value)
	}
}

// TestImportedWorldAppliesDeclaredActionsAsItsOldHomeWould: rules and
// their version, compiled actions and the world's clock come along, so
// the same next action gives the same event and hash on either group.
func TestImportedWorldAppliesDeclaredActionsAsItsOldHomeWould(t *testing.T) {
	h := arena(t)
	last := h.event(declared("ann", 1, "move", Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(0)}))
	require.Equal(t, StatusApplied, last.Status)
	r := h.apply(Command{Kind: CmdUpdateRules, Rules: &RulesUpdate{World: "a", Rules: arenaRules(t)}})[0]
	require.NoError(t, r.Err)
	require.Equal(t, uint64(2), r.RulesVersion)
	blob, _ := h.export("a", 1)

	th := newHarness(t)
	th.index, th.time = h.index, h.time
	require.NoError(t, th.apply(cmdImport("a", blob))[0].Err)
	h.index, h.time = th.index, th.time // the next action at the same leader time on both
	next := declared("bob", 1, "move", Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(2)})
	want := h.event(next)
	got := th.event(next)
	require.Equal(t, StatusApplied, want.Status, want.Reason)
	require.Equal(t, want, got, "same seq, changes and time")
	require.Equal(t, h.hash("a"), th.hash("a"))
	wi, err := th.f.World("a")
	require.NoError(t, err)
	require.Equal(t, uint64(2), wi.RulesVersion)

	// A new home whose leader clock is behind: the world's time does not
	// go back (its clock came along).
	slow := newHarness(t)
	slow.time = h.time - 1_000_000_000
	require.NoError(t, slow.apply(cmdImport("a", blob))[0].Err)
	ev := slow.event(next)
	require.Equal(t, last.Time, ev.Time, "clamped to the world's clock: its last action's time")
	require.Greater(t, ev.Time, slow.time, "not the slow leader's time")
}

// FuzzImportWorld: whatever bytes an import carries, applying it answers
// an error or installs a world whose export reads back the same, and never
// panics (a replica must not stop on a bad blob the leader let through).
func FuzzImportWorld(f *testing.F) {
	h := newHarness(f)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	h.event(act("w", "bob", 1, opAdd("e2", "s", String("x"))))
	h.openSession("w", "s1", "ann", "t")
	blob, _ := h.export("w", 1)
	f.Add(blob)
	blob, _ = h.export("w", ExportFormat)
	f.Add(blob)
	f.Add(exportMagic)
	salted := newHarness(f) // export format 2
	salted.apply(cmdSaltedWorld("w", counterRules(false)), cmdSalt("w", "ann", 1), cmdSalt("w", "bob", 2))
	salted.event(act("w", "ann", 1, opIncr("bob", "c", 1)))
	salted.apply(cmdEraseKeep("w", "bob"))
	blob, _ = salted.export("w", ExportFormat)
	f.Add(blob)
	f.Fuzz(func(t *testing.T, data []byte) {
		th := newHarness(t)
		r := th.apply(cmdImport("w", data))[0]
		if r.Err != nil {
			require.NotEmpty(t, Code(r.Err), "a bad blob is a coded error: %v", r.Err)
			return
		}
		again, _ := th.export("w", (&WorldImport{Data: data}).Format())
		g := newHarness(t)
		require.NoError(t, g.apply(cmdImport("w", again))[0].Err)
		require.Equal(t, th.hash("w"), g.hash("w"))
	})
}

// requireImportedAs checks that world w of dst, imported at log index
// imported from src, is src's (seq, state hash, incarnation, rules, salt
// flag) without the fence, which stays behind.
func requireImportedAs(t *testing.T, src, dst *FSM, imported uint64) {
	t.Helper()
	want, err := src.World("w")
	require.NoError(t, err)
	got, err := dst.World("w")
	require.NoError(t, err)
	require.NotNil(t, want.Moved)
	want.Moved, want.Imported = nil, imported
	require.Equal(t, want, got)
}

// withoutDataVersions returns sessions with their data versions zeroed: an
// import gives the data new ones (playerdata.go).
func withoutDataVersions(ss []SessionInfo) []SessionInfo {
	for i := range ss {
		ss[i].DataVersion = 0
	}
	return ss
}

// requireImportedVersionsRise checks that every player's data version in
// world w of dst, which imported it from src in export format 1, is above
// src's.
func requireImportedVersionsRise(t testingT, src, dst *FSM) {
	requireImportedDataVersions(t, src, dst, false)
}

// requireImportedDataVersions checks the data versions of world w on dst,
// which imported it from src: src's own when kept (export format 2, the
// data alike), else each above src's for every player with data.
func requireImportedDataVersions(t testingT, src, dst *FSM, kept bool) {
	t.Helper()
	want, err := src.PlayerRecords("w")
	require.NoError(t, err)
	got, err := dst.PlayerRecords("w")
	require.NoError(t, err)
	if kept {
		require.Equal(t, want, got)
		return
	}
	have := map[string]uint64{}
	for _, r := range got {
		have[r.Player] = r.Version
	}
	for _, r := range want {
		if len(r.Data) > 0 {
			require.Greater(t, have[r.Player], r.Version, "player %s", r.Player)
		}
	}
}
