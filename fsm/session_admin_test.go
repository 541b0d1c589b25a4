package fsm

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSessionOpenAndResumeRecordTheNodeHoldingTheConnection(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	r := h.session(CmdSessionOpen, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t"), Node: "n1"})
	require.NoError(t, r.Err)
	require.Equal(t, "n1", r.Session.Node)
	r = h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t"), Node: "n2"})
	require.NoError(t, r.Err)
	require.Equal(t, "n2", r.Session.Node)
	r = h.session(CmdSessionAck, SessionCmd{World: "w", ID: "s1", Node: "n3"})
	require.NoError(t, r.Err)
	require.Equal(t, "n2", r.Session.Node, "only open and resume move the session")
	r = h.session(CmdSessionOpen, SessionCmd{World: "w", ID: "s2", Player: "bob", Node: strings.Repeat("n", MaxNameLen+1)})
	require.ErrorIs(t, r.Err, ErrMalformed)
}

func TestSessionKickMarksTheSessionAndRefusesItsResume(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t")
	require.ErrorIs(t, h.session(CmdSessionKick, SessionCmd{World: "w", ID: "s1"}).Err, ErrMalformed, "a kick needs a reason")
	require.ErrorIs(t, h.session(CmdSessionKick, SessionCmd{World: "w", ID: "s9", Reason: "x"}).Err, ErrSessionUnknown)
	r := h.session(CmdSessionKick, SessionCmd{World: "w", ID: "s1", Reason: "spam"})
	require.NoError(t, r.Err)
	require.Equal(t, "spam", r.Session.Kicked)
	got, err := h.f.Session("w", "s1")
	require.NoError(t, err)
	require.Equal(t, "spam", got.Kicked)

	r = h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("wrong")})
	require.ErrorIs(t, r.Err, ErrSessionDenied, "a wrong token learns nothing about the kick")
	r = h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t")})
	require.ErrorIs(t, r.Err, ErrSessionKicked)
	require.Equal(t, CodeSessionKicked, Code(r.Err))
	// The player may start over with a hello; the kicked session goes.
	info := h.openSession("w", "s2", "ann", "t2")
	require.Equal(t, "s1", info.Replaced)
	require.Empty(t, info.Kicked)
}

func TestSessionBanKicksAndRefusesThePlayerUntilUnbanned(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.createWorld("v", Rules{})
	h.openSession("w", "s1", "ann", "t")
	require.ErrorIs(t, h.session(CmdSessionBan, SessionCmd{World: "w", Player: "ann"}).Err, ErrMalformed, "a ban needs a reason")
	require.ErrorIs(t, h.session(CmdSessionBan, SessionCmd{World: "w", Player: "", Reason: "x"}).Err, ErrMalformed)
	require.ErrorIs(t, h.session(CmdSessionBan, SessionCmd{World: "w", Player: "ann", Reason: strings.Repeat("r", MaxStringLen+1)}).Err, ErrMalformed)

	r := h.session(CmdSessionBan, SessionCmd{World: "w", Player: "ann", Reason: "cheating"})
	require.NoError(t, r.Err)
	require.Equal(t, "s1", r.Session.ID)
	require.Equal(t, "banned: cheating", r.Session.Kicked)
	r = h.session(CmdSessionBan, SessionCmd{World: "w", Player: "eve", Reason: "griefing"})
	require.NoError(t, r.Err)
	require.Equal(t, SessionInfo{World: "w", Player: "eve"}, *r.Session, "a ban needs no session")

	reason, banned := h.f.Banned("w", "ann")
	require.True(t, banned)
	require.Equal(t, "cheating", reason)
	_, banned = h.f.Banned("v", "ann")
	require.False(t, banned, "bans are per world")
	_, banned = h.f.Banned("nope", "ann")
	require.False(t, banned)
	bans, err := h.f.Bans("w")
	require.NoError(t, err)
	require.Equal(t, []Ban{{"ann", "cheating"}, {"eve", "griefing"}}, bans)

	r = h.session(CmdSessionOpen, SessionCmd{World: "w", ID: "s2", Player: "ann"})
	require.ErrorIs(t, r.Err, ErrBanned)
	require.Equal(t, CodeBanned, Code(r.Err))
	r = h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t")})
	require.ErrorIs(t, r.Err, ErrBanned)
	h.openSession("v", "s3", "ann", "t")

	r = h.session(CmdSessionUnban, SessionCmd{World: "w", Player: "ann"})
	require.NoError(t, r.Err)
	_, banned = h.f.Banned("w", "ann")
	require.False(t, banned)
	h.openSession("w", "s4", "ann", "t")
	_, err = h.f.Bans("nope")
	require.ErrorIs(t, err, ErrUnknownWorld)
}

func TestSessionImportReplacesPlayerDataIdempotently(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"old", Int(1)}}}).Err)

	imp := SessionCmd{World: "w", Player: "ann", Data: []DataItem{{"gold", Int(5)}, {"skip", Value{}}, {"title", String("knight")}}}
	r := h.session(CmdSessionImport, imp)
	require.NoError(t, r.Err)
	want := map[string]Value{"gold": Int(5), "title": String("knight")}
	require.Equal(t, want, r.Session.Data)
	before := h.snapshotBytes()
	require.NoError(t, h.session(CmdSessionImport, imp).Err)
	require.Equal(t, before[9:], h.snapshotBytes()[9:], "importing again changes nothing")
	require.NoError(t, h.session(CmdSessionImport, SessionCmd{World: "w", Player: "bob", Data: []DataItem{{"xp", Int(3)}}}).Err)

	all, err := h.f.PlayerData("w")
	require.NoError(t, err)
	require.Equal(t, map[string]map[string]Value{"ann": want, "bob": {"xp": Int(3)}}, all)
	info, err := h.f.Session("w", "s1")
	require.NoError(t, err)
	require.Equal(t, want, info.Data, "the session sees the imported data")

	// An empty import forgets the player's data.
	r = h.session(CmdSessionImport, SessionCmd{World: "w", Player: "bob"})
	require.NoError(t, r.Err)
	require.Nil(t, r.Session.Data)
	all, err = h.f.PlayerData("w")
	require.NoError(t, err)
	require.NotContains(t, all, "bob")

	many := make([]DataItem, MaxSessionData+1)
	for i := range many {
		many[i] = DataItem{Key: fmt.Sprintf("k%d", i), Value: Int(1)}
	}
	require.ErrorIs(t, h.session(CmdSessionImport, SessionCmd{World: "w", Player: "ann", Data: many}).Err, ErrMalformed)
	require.ErrorIs(t, h.session(CmdSessionImport, SessionCmd{World: "w", Player: "", Data: nil}).Err, ErrMalformed)
	require.ErrorIs(t, h.session(CmdSessionImport, SessionCmd{World: "nope", Player: "ann"}).Err, ErrUnknownWorld)
	_, err = h.f.PlayerData("nope")
	require.ErrorIs(t, err, ErrUnknownWorld)
}

// adminState is sessionState plus nodes, a kick and bans.
func adminState(t *testing.T) *harness {
	h := sessionState(t)
	require.NoError(t, h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t1"), Node: "n2"}).Err)
	require.NoError(t, h.session(CmdSessionKick, SessionCmd{World: "w", ID: "s2", Reason: "afk"}).Err)
	require.NoError(t, h.session(CmdSessionBan, SessionCmd{World: "v", Player: "eve", Reason: "cheat"}).Err)
	return h
}

func TestSessionNodesKicksAndBansSurviveSnapshotAndRestore(t *testing.T) {
	h := adminState(t)
	forgetIncarnations(h.f)
	p := h.snapshotBytes()
	require.Equal(t, byte(3), p[len(snapMagic)-1], "nothing in the state needs format 4")
	g := restored(t, p)
	for _, w := range []string{"w", "v"} {
		want, err := h.f.Sessions(w)
		require.NoError(t, err)
		got, err := g.Sessions(w)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	got, err := g.Session("w", "s1")
	require.NoError(t, err)
	require.Equal(t, "n2", got.Node)
	got, err = g.Session("w", "s2")
	require.NoError(t, err)
	require.Equal(t, "afk", got.Kicked)
	bans, err := g.Bans("v")
	require.NoError(t, err)
	require.Equal(t, []Ban{{"eve", "cheat"}}, bans)
	require.Equal(t, p, snapshotBytes(t, g))

	// Copy on write: a ban after the snapshot stays out of it.
	snap := h.f.Snapshot()
	require.NoError(t, h.session(CmdSessionBan, SessionCmd{World: "w", Player: "zed", Reason: "late"}).Err)
	require.Equal(t, p[9:], writeSnapshot(t, snap)[9:])
}

func TestRestoreReadsVersion2SnapshotsWithoutNodesKicksOrBans(t *testing.T) {
	h := adminState(t)
	snap := h.f.Snapshot()
	snap.version = 2
	v2 := writeSnapshot(t, snap)
	require.Equal(t, byte(2), v2[len(snapMagic)-1])
	g := restored(t, v2)
	got, err := g.Session("w", "s1")
	require.NoError(t, err)
	require.Empty(t, got.Node)
	want, err := h.f.Session("w", "s1")
	require.NoError(t, err)
	want.Node = ""
	require.Equal(t, want, got)
	bans, err := g.Bans("v")
	require.NoError(t, err)
	require.Empty(t, bans)
	for i := len(v2) - 80; i < len(v2); i++ {
		restoreFails(t, newHarness(t).f, v2[:i], fmt.Sprintf("v2 prefix of %d bytes", i))
	}
}

func TestRestoreRefusesUnknownSnapshotVersions(t *testing.T) {
	p := adminState(t).snapshotBytes()
	for _, v := range []byte{0, snapVersion + 1} {
		bad := bytes.Clone(p)
		bad[len(snapMagic)-1] = v
		require.ErrorIs(t, restoreFails(t, newHarness(t).f, bad, fmt.Sprintf("version %d", v)), ErrMalformed)
	}
	require.ErrorIs(t, restoreFails(t, newHarness(t).f, p[:len(snapMagic)-1], "magic without version"), ErrMalformed)
}

func TestRestoreFailsCleanlyOnEveryTruncationOfBans(t *testing.T) {
	valid := adminState(t).snapshotBytes()
	for i := len(valid) - 60; i < len(valid); i++ {
		restoreFails(t, newHarness(t).f, valid[:i], fmt.Sprintf("prefix of %d bytes", i))
	}
}

func TestAdminSessionCommandsRoundTripThroughTheCodec(t *testing.T) {
	b := &Batch{Time: 9, Commands: []Command{
		cmdSession(CmdSessionOpen, SessionCmd{World: "w", ID: "s", Player: "p", TokenHash: tokenHash("x"), Node: "n1"}),
		cmdSession(CmdSessionKick, SessionCmd{World: "w", ID: "s", Reason: "afk"}),
		cmdSession(CmdSessionBan, SessionCmd{World: "w", Player: "p", Reason: "cheat"}),
		cmdSession(CmdSessionUnban, SessionCmd{World: "w", Player: "p"}),
		cmdSession(CmdSessionImport, SessionCmd{World: "w", Player: "p", Data: []DataItem{{"a", Int(1)}}}),
	}}
	p := EncodeBatch(b)
	got, err := DecodeBatch(p)
	require.NoError(t, err)
	require.Equal(t, b, got)
	for i := range len(p) {
		_, err := DecodeBatch(p[:i])
		require.ErrorIs(t, err, ErrMalformed, "prefix of %d bytes", i)
	}
}

func TestVersion1BatchesOfSessionCommandsStillDecode(t *testing.T) {
	c := SessionCmd{World: "w", ID: "s", Player: "p", TokenHash: tokenHash("x"), Seq: 3}
	e := &encoder{}
	e.byte(batchMagicV1)
	e.varint(9)
	e.uvarint(1)
	e.byte(byte(CmdSessionResume))
	e.sessionCmd(&c)
	v1 := e.b[:len(e.b)-1] // version 1 had no node (here "", one byte)
	got, err := DecodeBatch(v1)
	require.NoError(t, err)
	require.Equal(t, &Batch{Time: 9, Commands: []Command{cmdSession(CmdSessionResume, c)}}, got)
}
