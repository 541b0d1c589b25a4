package fsm

import (
	"bytes"
	"testing"

	"github.com/gsd-dev/gsd/internal/golden"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func cmdEraseKeep(world, player string) Command {
	return Command{Kind: CmdEraseSaltKeep, Salt: &SaltCmd{World: world, Player: player}}
}

func saltDigest(player string, key byte) [wire.SaltedIDLen]byte {
	k := saltKey(key)
	return wire.SaltedID(k[:], player)
}

// TestAnErasureKeepsTheDigestOnlyWhenItsCommandSaysSo: CmdEraseSalt (the
// erasure before every voter reads log 14) keeps nothing; CmdEraseSaltKeep
// keeps HMAC-SHA256(salt, id) with the seqs the salt salted, not the salt
// nor the id; a salt that salted no seq keeps nothing; a player salted
// again and erased again has a second digest of a later range.
func TestAnErasureKeepsTheDigestOnlyWhenItsCommandSaysSo(t *testing.T) {
	h := saltedHarness(t)
	h.apply(cmdSalt("w", "alice", 0xA0), cmdSalt("w", "bob", 0xB0))
	h.event(act("w", "alice", 1, opIncr("e", "c", 1)))
	h.event(act("w", "bob", 1, opIncr("e", "c", 1)))
	h.event(act("w", "alice", 2, opIncr("e", "c", 1)))

	require.NoError(t, h.apply(cmdErase("w", "bob"))[0].Err)
	tab, err := h.f.SaltTable("w")
	require.NoError(t, err)
	require.Empty(t, tab.Erased, "an erasure of log 13 keeps no digest")

	require.NoError(t, h.apply(cmdEraseKeep("w", "alice"))[0].Err)
	first := ErasedSalt{Digest: saltDigest("alice", 0xA0), Since: 1, Until: 3}
	tab, err = h.f.SaltTable("w")
	require.NoError(t, err)
	require.Equal(t, []ErasedSalt{first}, tab.Erased)
	require.Empty(t, tab.Salts)
	require.True(t, h.f.NeedsSalt("w", "alice"))
	require.ErrorIs(t, h.apply(cmdEraseKeep("w", "alice"))[0].Err, ErrNotFound, "erased already")
	key := saltKey(0xA0)
	snap := h.snapshotBytes()
	require.False(t, bytes.Contains(snap, key[:]), "the salt is in no later snapshot")
	require.True(t, bytes.Contains(snap, first.Digest[:]), "its digest is")

	// Carol's salt salted nothing: no leaf commits to its digest.
	h.apply(cmdSalt("w", "carol", 0xC0))
	require.NoError(t, h.apply(cmdEraseKeep("w", "carol"))[0].Err)

	// Alice again: a new salt from seq 4, erased at seq 5.
	h.apply(cmdSalt("w", "alice", 0xD0))
	h.event(act("w", "alice", 3, opIncr("e", "c", 1)))
	h.event(act("w", "alice", 4, opIncr("alice", "c", 1)))
	require.NoError(t, h.apply(cmdEraseKeep("w", "alice"))[0].Err)
	tab, err = h.f.SaltTable("w")
	require.NoError(t, err)
	require.Equal(t, []ErasedSalt{first, {Digest: saltDigest("alice", 0xD0), Since: 4, Until: 5}}, tab.Erased)

	for _, c := range []Command{cmdEraseKeep("nowhere", "p"), cmdEraseKeep("w", ""), cmdEraseKeep("w", "nobody")} {
		require.Error(t, h.apply(c)[0].Err)
	}
	plain := newHarness(t)
	plain.createWorld("plain", counterRules(false))
	require.ErrorIs(t, plain.apply(cmdEraseKeep("plain", "p"))[0].Err, ErrNotSupported)
	_, err = plain.f.SaltTable("plain")
	require.ErrorIs(t, err, ErrNotSupported)

	// The digests go with the world's incarnation.
	h.apply(cmdDelete(WorldDelete{World: "w"}))
	require.NoError(t, h.apply(cmdSaltedWorld("w", counterRules(false)))[0].Err)
	tab, err = h.f.SaltTable("w")
	require.NoError(t, err)
	require.Empty(t, tab.Erased)
}

// TestEraseSaltKeepRoundTripsTheLogAndNeedsLogVersion14: a replica before
// log 14 does not read it; the erasure without it needs log 13 as before.
func TestEraseSaltKeepRoundTripsTheLogAndNeedsLogVersion14(t *testing.T) {
	log13 := Versions{Log: 13, Snapshot: 9, Wire: 1}
	b := &Batch{Time: 5, Commands: []Command{cmdEraseKeep("w", "p"), cmdErase("w", "p")}}
	got, err := DecodeBatch(EncodeBatch(b))
	require.NoError(t, err)
	require.Equal(t, b, got)
	for c, want := range map[*Command]Versions{&b.Commands[0]: {Log: 14, Snapshot: 10, Wire: 1}, &b.Commands[1]: log13} {
		require.Equal(t, want, Needs(c), "kind %d", c.Kind)
		require.True(t, Supported().Covers(want))
	}
	require.False(t, log13.Covers(Needs(&b.Commands[0])), "a log 13 replica does not read it")
}

// erasedState is a salted world with a kept digest beside an unsalted
// world: a state that needs snapshot format 10.
func erasedState(t *testing.T) *harness {
	h := saltedHarness(t)
	h.createWorld("plain", counterRules(false))
	h.apply(cmdSalt("w", "alice", 0xA0), cmdSalt("w", "bob", 0xB0))
	h.event(act("w", "alice", 1, opIncr("bob", "c", 1)))
	h.event(act("w", "bob", 1, opIncr("alice", "c", 1)))
	require.NoError(t, h.apply(cmdEraseKeep("w", "alice"))[0].Err)
	return h
}

// TestErasedDigestsSurviveSnapshotInFormat10: a restored replica keeps
// the same digests and writes the same bytes; a salted state without
// digests keeps format 9, and a format 9 snapshot of a state with them
// restores without them (what a log 13 binary wrote).
func TestErasedDigestsSurviveSnapshotInFormat10(t *testing.T) {
	require.Equal(t, byte(9), saltedHarness(t).f.Snapshot().format(), "no digest: format 9")

	h := erasedState(t)
	snap := h.snapshotBytes()
	require.Equal(t, byte(10), snap[len(snapMagic)-1])
	golden.Binary(t, "snapshot_salted_v10.bin", snap)
	r := restored(t, golden.Read(t, "snapshot_salted_v10.bin"))
	require.Equal(t, snap, snapshotBytes(t, r))
	want, err := h.f.SaltTable("w")
	require.NoError(t, err)
	got, err := r.SaltTable("w")
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Len(t, got.Erased, 1)
	require.Equal(t, h.f.Worlds(), r.Worlds(), "state hashes included")

	// The same state written in format 9 has its salts, not its digests.
	s := h.f.Snapshot()
	s.version = 9
	v9 := writeSnapshot(t, s)
	golden.Binary(t, "snapshot_salted_v9.bin", v9)
	old := restored(t, golden.Read(t, "snapshot_salted_v9.bin"))
	tab, err := old.SaltTable("w")
	require.NoError(t, err)
	require.Equal(t, want.Salts, tab.Salts)
	require.Empty(t, tab.Erased)
	require.Equal(t, h.f.Worlds(), old.Worlds())

	// A taken snapshot is not changed by a later erasure.
	h.apply(cmdEraseKeep("w", "bob"))
	require.Equal(t, snap, writeSnapshot(t, s0(s)))
}

// s0 is s to be written in the format its state needs.
func s0(s *Snapshot) *Snapshot { c := *s; c.version = 0; return &c }

// TestRestoreRefusesErasedDigestsItCannotHold: digests in a world that is
// not salted, an empty or inverted range, a digest cut short.
func TestRestoreRefusesErasedDigestsItCannotHold(t *testing.T) {
	plain := craftedWorld("plain", Rules{}, nil)
	plain.erased = []ErasedSalt{{Since: 1, Until: 1}}
	err := restoreFails(t, newHarness(t).f, writeSnapshot(t, &Snapshot{applied: 1, worlds: []*world{plain}}), "unsalted")
	require.ErrorContains(t, err, "not salted")

	for what, x := range map[string]ErasedSalt{"since 0": {Until: 1}, "inverted": {Since: 3, Until: 2}} {
		w := craftedWorld("w", Rules{}, nil)
		w.salts = map[string]saltEntry{}
		w.erased = []ErasedSalt{x}
		require.ErrorContains(t, restoreFails(t, newHarness(t).f, writeSnapshot(t, &Snapshot{applied: 1, worlds: []*world{w}}), what), "erased digest of seqs", what)
	}

	snap := erasedState(t).snapshotBytes()
	d := saltDigest("alice", 0xA0)
	cut := snap[:bytes.Index(snap, d[:])+8]
	require.ErrorContains(t, restoreFails(t, newHarness(t).f, cut, "cut digest"), "malformed")
}
