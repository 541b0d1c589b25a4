package fsm

import (
	"bytes"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func cmdSaltedWorld(id string, rules Rules) Command {
	return Command{Kind: CmdCreateWorldSalted, World: &WorldSpec{ID: id, Origin: "eu-west", Rules: rules, Salted: true}}
}

func cmdSalt(world, player string, key byte) Command {
	c := SaltCmd{World: world, Player: player, Key: saltKey(key)}
	return Command{Kind: CmdSalt, Salt: &c}
}

func cmdErase(world, player string) Command {
	return Command{Kind: CmdEraseSalt, Salt: &SaltCmd{World: world, Player: player}}
}

func saltKey(key byte) [SaltLen]byte {
	var k [SaltLen]byte
	for i := range k {
		k[i] = key + byte(i)
	}
	return k
}

func saltedHarness(t *testing.T) *harness {
	h := newHarness(t)
	require.NoError(t, h.apply(cmdSaltedWorld("w", counterRules(false)))[0].Err)
	return h
}

// TestAnActionInASaltedWorldNeedsItsPlayersSaltFirst: without a salt the
// action is refused before it takes a seq; the first salt wins and salts
// from the next seq on.
func TestAnActionInASaltedWorldNeedsItsPlayersSaltFirst(t *testing.T) {
	h := saltedHarness(t)
	wi, err := h.f.World("w")
	require.NoError(t, err)
	require.True(t, wi.Salted)
	require.True(t, h.f.NeedsSalt("w", "alice"))
	require.False(t, h.f.NeedsSalt("nowhere", "alice"))
	require.False(t, h.f.NeedsSalt("w", ""), "an action without a player needs no salt")

	r := h.do(act("w", "alice", 1, opIncr("e", "c", 1)))
	require.ErrorIs(t, r.Err, ErrUnsalted)
	require.Equal(t, CodeUnsalted, Code(r.Err))
	require.Equal(t, uint64(0), h.worldSeq("w"), "refused before it took a seq")

	// Bob's salt comes first: it salts from seq 1.
	require.NoError(t, h.apply(cmdSalt("w", "bob", 1))[0].Err)
	h.event(act("w", "bob", 1, opIncr("e", "c", 1)))

	// Alice's salt, and another drawn for her concurrently: the first wins
	// (the second is no error: its action goes ahead).
	for _, r := range h.apply(cmdSalt("w", "alice", 2), cmdSalt("w", "alice", 3)) {
		require.NoError(t, r.Err)
	}
	require.False(t, h.f.NeedsSalt("w", "alice"))
	require.Equal(t, uint64(2), h.event(act("w", "alice", 1, opIncr("e", "c", 1))).Seq)

	salts, inc, err := h.f.Salts("w")
	require.NoError(t, err)
	require.Equal(t, wi.Incarnation, inc)
	require.Equal(t, []Salt{{Player: "alice", Key: saltKey(2), Since: 2}, {Player: "bob", Key: saltKey(1), Since: 1}}, salts)

	// An action without a player is the rules' to refuse, not the salts'.
	r = h.do(act("w", "", 1, opIncr("e", "c", 1)))
	require.NoError(t, r.Err)
	require.Equal(t, StatusRejected, r.Event.Status)
}

// TestErasingASaltRemovesItFromTheStateAndTheNextSnapshot: the erased
// salt is in no later snapshot; the player's next action needs a new one,
// which salts from the seq after the world's last.
func TestErasingASaltRemovesItFromTheStateAndTheNextSnapshot(t *testing.T) {
	h := saltedHarness(t)
	h.apply(cmdSalt("w", "alice", 0xA0), cmdSalt("w", "bob", 0xB0))
	h.event(act("w", "alice", 1, opIncr("e", "c", 1)))
	before := h.f.Snapshot()
	key := saltKey(0xA0)

	require.NoError(t, h.apply(cmdErase("w", "alice"))[0].Err)
	require.True(t, h.f.NeedsSalt("w", "alice"))
	require.True(t, h.f.Recorded("w", "alice", 1), "her retry of seq 1 needs no salt")
	require.False(t, h.f.Recorded("w", "alice", 2))
	require.False(t, h.f.Recorded("w", "carol", 1))
	require.False(t, h.f.Recorded("nowhere", "alice", 1))
	require.True(t, h.do(act("w", "alice", 1, opIncr("e", "c", 1))).Duplicate, "her retry gets its original result")
	require.ErrorIs(t, h.do(act("w", "alice", 2, opIncr("e", "c", 1))).Err, ErrUnsalted)
	require.ErrorIs(t, h.apply(cmdErase("w", "alice"))[0].Err, ErrNotFound, "erased already")

	after := h.snapshotBytes()
	require.False(t, bytes.Contains(after, key[:]), "the erased salt is in no later snapshot")
	bob := saltKey(0xB0)
	require.True(t, bytes.Contains(after, bob[:]))
	require.True(t, bytes.Contains(writeSnapshot(t, before), key[:]), "a snapshot taken before keeps its copy")

	h.apply(cmdSalt("w", "alice", 0xC0))
	salts, _, err := h.f.Salts("w")
	require.NoError(t, err)
	require.Equal(t, Salt{Player: "alice", Key: saltKey(0xC0), Since: 2}, salts[0])
}

// TestSaltCommandsRefuseWhatTheyCannotSalt: unknown and unsalted worlds,
// bad names.
func TestSaltCommandsRefuseWhatTheyCannotSalt(t *testing.T) {
	h := saltedHarness(t)
	h.createWorld("plain", counterRules(false))
	for _, c := range []Command{cmdSalt("nowhere", "p", 1), cmdErase("nowhere", "p")} {
		require.ErrorIs(t, h.apply(c)[0].Err, ErrUnknownWorld)
	}
	for _, c := range []Command{cmdSalt("plain", "p", 1), cmdErase("plain", "p")} {
		require.ErrorIs(t, h.apply(c)[0].Err, ErrNotSupported)
	}
	for _, c := range []Command{cmdSalt("w", "", 1), cmdErase("w", ""), cmdSalt("", "p", 1)} {
		require.ErrorIs(t, h.apply(c)[0].Err, ErrMalformed)
	}
	_, _, err := h.f.Salts("plain")
	require.ErrorIs(t, err, ErrNotSupported)
	_, _, err = h.f.Salts("nowhere")
	require.ErrorIs(t, err, ErrUnknownWorld)
	wi, err := h.f.World("plain")
	require.NoError(t, err)
	require.False(t, wi.Salted)
	h.event(act("plain", "p", 1, opIncr("e", "c", 1)))

	require.NoError(t, h.apply(cmdSalt("w", "p", 1))[0].Err)
	require.NoError(t, h.apply(cmdErase("w", "p"))[0].Err)
}

// TestSaltTableSurvivesSnapshotInFormat9: a restored replica holds the
// same table (an empty one too) and writes the same bytes; a state
// without a salted world keeps its older format.
func TestSaltTableSurvivesSnapshotInFormat9(t *testing.T) {
	plain := newHarness(t)
	plain.createWorld("w", counterRules(false))
	require.Less(t, plain.f.Snapshot().format(), byte(9))

	h := saltedHarness(t)
	h.apply(cmdSaltedWorld("empty", counterRules(false)))
	h.createWorld("plain", counterRules(false))
	snap := h.snapshotBytes()
	require.Equal(t, byte(9), snap[len(snapMagic)-1])
	empty := restored(t, snap)
	wi, err := empty.World("empty")
	require.NoError(t, err)
	require.True(t, wi.Salted, "a salted world without salts stays salted")
	wi, err = empty.World("plain")
	require.NoError(t, err)
	require.False(t, wi.Salted, "an unsalted world beside them stays unsalted")

	h.apply(cmdSalt("w", "alice", 1), cmdSalt("w", "bob", 2))
	h.event(act("w", "alice", 1, opIncr("e", "c", 1)))
	snap = h.snapshotBytes()
	r := restored(t, snap)
	require.Equal(t, snap, snapshotBytes(t, r))
	want, _, err := h.f.Salts("w")
	require.NoError(t, err)
	got, _, err := r.Salts("w")
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.False(t, r.NeedsSalt("w", "alice"))
	require.True(t, r.NeedsSalt("w", "carol"), "the restored view knows the world is salted")
	require.Equal(t, h.event(act("w", "bob", 1, opIncr("bob", "hp", 1))).Salted, restoredEvent(t, r, act("w", "bob", 1, opIncr("bob", "hp", 1))).Salted,
		"a restored replica gives the next event the same salted ids")

	// A table cut inside a salt is refused.
	key := saltKey(2)
	cut := snap[:bytes.Index(snap, key[:])+SaltLen/2]
	require.ErrorContains(t, restoreFails(t, newHarness(t).f, cut, "cut salt"), "malformed")
}

// TestSaltCommandsRoundTripTheLogAndNeedLogVersion13: the three kinds
// decode as encoded; a replica before log 13 does not read them.
func TestSaltCommandsRoundTripTheLogAndNeedLogVersion13(t *testing.T) {
	b := &Batch{Time: 5, Commands: []Command{cmdSaltedWorld("w", counterRules(true)), cmdSalt("w", "p", 9), cmdErase("w", "p")}}
	got, err := DecodeBatch(EncodeBatch(b))
	require.NoError(t, err)
	require.Equal(t, b, got)
	for i := range b.Commands {
		need := Needs(&b.Commands[i])
		require.Equal(t, Versions{Log: 13, Snapshot: 9, Wire: 1}, need)
		require.True(t, Supported().Covers(need))
		require.False(t, (Versions{Log: 12, Snapshot: 8, Wire: 1}).Covers(need))
	}
	require.Equal(t, Baseline(), Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{ID: "w"}}), "an unsalted create is as before")

	p := EncodeBatch(&Batch{Commands: []Command{cmdSalt("w", "p", 9)}})
	_, err = DecodeBatch(p[:len(p)-1])
	require.ErrorContains(t, err, "short salt")
	_, err = DecodeBatch(p[:6]) // cut in the world's name: the salt is not read
	require.ErrorIs(t, err, ErrMalformed)
}

// TestAnEventOfASaltedWorldCarriesTheSaltedIDsItNames: the player, an
// entity, a string value and a conflict's set elements that are salted
// players, each once; the archive keeps them, beside a notice too.
func TestAnEventOfASaltedWorldCarriesTheSaltedIDsItNames(t *testing.T) {
	h := newHarness(t)
	require.NoError(t, h.apply(cmdSaltedWorld("w", rules(false, map[string]FieldRule{"tags": {Type: KindString, Policy: PolicySet}, "owner": {Type: KindString, Policy: PolicyAuthoritative}})))[0].Err)
	h.apply(cmdSalt("w", "alice", 1), cmdSalt("w", "bob", 2))
	digest := func(p string, key byte) [32]byte { k := saltKey(key); return wire.SaltedID(k[:], p) }

	ev := h.event(act("w", "alice", 1, opSet("bob", "owner", String("alice")), opAdd("bob", "tags", String("bob"))))
	require.Equal(t, &Salting{Names: []SaltedName{{"alice", digest("alice", 1)}, {"bob", digest("bob", 2)}}}, ev.Salted)
	d, ok := ev.Salted.Lookup("bob")
	require.True(t, ok)
	require.Equal(t, digest("bob", 2), d)
	_, ok = ev.Salted.Lookup("carol")
	require.False(t, ok)
	_, ok = (*Salting)(nil).Lookup("bob")
	require.False(t, ok)

	h.event(act("w", "bob", 1, opAdd("e", "tags", String("alice")), opSet("e", "owner", String("carol"))))
	conflict := h.event(act("w", "bob", 2, withExpect(opAdd("e", "tags", String("y")), expectVersion(99))))
	require.Equal(t, StatusConflict, conflict.Status)
	require.Equal(t, []SaltedName{{"bob", digest("bob", 2)}, {"alice", digest("alice", 1)}}, conflict.Salted.Names, "the conflict's set names alice")

	rejected := h.do(act("w", "", 1, opIncr("e", "hp", 1))).Event
	require.Nil(t, rejected.Salted, "names no salted player")

	for _, e := range []*Event{ev, conflict, rejected, {World: "w", Seq: 9, Notice: &Notice{Kind: "rules", RulesVersion: 2}, Salted: ev.Salted}} {
		back, err := DecodeEvent(EncodeEvent(e))
		require.NoError(t, err)
		require.Equal(t, e.Salted, back.Salted)
		require.Equal(t, e.Notice, back.Notice)
	}
	p := EncodeEvent(ev)
	_, err := DecodeEvent(p[:len(p)-1])
	require.ErrorIs(t, err, ErrMalformed)
	_, err = DecodeEvent(append(p, 0))
	require.ErrorContains(t, err, "trailing")

	plain := newHarness(t)
	plain.createWorld("w", counterRules(false))
	require.Nil(t, plain.event(act("w", "alice", 1, opIncr("alice", "hp", 1))).Salted)
}

// restoredEvent applies a on f as the next entry and returns its event.
func restoredEvent(t *testing.T, f *FSM, a *Action) *Event {
	t.Helper()
	res := f.Apply(f.AppliedIndex()+1, EncodeBatch(&Batch{Time: 1, Commands: []Command{cmdAction(a)}}))
	require.NoError(t, res[0].Err)
	return res[0].Event
}
