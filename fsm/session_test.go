package fsm

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func tokenHash(s string) [TokenHashLen]byte { return sha256.Sum256([]byte(s)) }

func cmdSession(kind CmdKind, c SessionCmd) Command {
	return Command{Kind: kind, Session: &c}
}

// session applies one session command and returns its result.
func (h *harness) session(kind CmdKind, c SessionCmd) Result {
	h.t.Helper()
	return h.apply(cmdSession(kind, c))[0]
}

// openSession opens a session and requires success.
func (h *harness) openSession(world, id, player, token string) SessionInfo {
	h.t.Helper()
	r := h.session(CmdSessionOpen, SessionCmd{World: world, ID: id, Player: player, TokenHash: tokenHash(token)})
	require.NoError(h.t, r.Err)
	require.NotNil(h.t, r.Session)
	return *r.Session
}

func TestSessionOpenStartsAtTheWorldSeq(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e", "c", 1)))
	h.event(act("w", "bob", 1, opIncr("e", "c", 1)))
	info := h.openSession("w", "s1", "ann", "secret")
	require.Equal(t, SessionInfo{World: "w", ID: "s1", Player: "ann", Acked: 2, Opened: h.time, Seen: h.time}, info)

	got, err := h.f.Session("w", "s1")
	require.NoError(t, err)
	require.Equal(t, info, got)
	// Session commands leave the world's seq and hash alone.
	wi, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, uint64(2), wi.Seq)
}

func TestSessionOpenReplacesThePlayersPreviousSession(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t1")
	h.openSession("w", "s2", "bob", "t2")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"gold", Int(5)}}}).Err)

	info := h.openSession("w", "s3", "ann", "t3")
	require.Equal(t, "s1", info.Replaced)
	require.Equal(t, map[string]Value{"gold": Int(5)}, info.Data, "the player's data outlives the session")
	_, err := h.f.Session("w", "s1")
	require.ErrorIs(t, err, ErrSessionUnknown)
	all, err := h.f.Sessions("w")
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "s2", all[0].ID)
	require.Equal(t, "s3", all[1].ID)
}

func TestSessionCommandsRefuseBadInput(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t1")
	many := make([]DataItem, MaxSessionData+1)
	for i := range many {
		many[i] = DataItem{Key: fmt.Sprintf("k%d", i), Value: Int(1)}
	}
	cases := []struct {
		kind CmdKind
		cmd  SessionCmd
		err  error
	}{
		{CmdSessionOpen, SessionCmd{World: "nope", ID: "s9", Player: "ann"}, ErrUnknownWorld},
		{CmdSessionOpen, SessionCmd{World: "w", ID: "s1", Player: "bob"}, ErrSessionExists},
		{CmdSessionOpen, SessionCmd{World: "w", ID: "", Player: "bob"}, ErrMalformed},
		{CmdSessionOpen, SessionCmd{World: "w", ID: "s9", Player: ""}, ErrMalformed},
		{CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: strings.Repeat("p", MaxNameLen+1)}, ErrMalformed},
		{CmdSessionAck, SessionCmd{World: "w", ID: "s9", Seq: 0}, ErrSessionUnknown},
		{CmdSessionAck, SessionCmd{World: "w", ID: "s1", Seq: 1}, ErrMalformed}, // beyond the world's seq
		{CmdSessionClose, SessionCmd{World: "w", ID: "s9"}, ErrSessionUnknown},
		{CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: many}, ErrMalformed},
		{CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"", Int(1)}}}, ErrMalformed},
		{CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"k", String(strings.Repeat("x", MaxStringLen+1))}}}, ErrMalformed},
	}
	before := h.snapshotBytes()
	for i, c := range cases {
		r := h.session(c.kind, c.cmd)
		require.ErrorIs(t, r.Err, c.err, "case %d", i)
		require.Nil(t, r.Session, "case %d", i)
	}
	// A value the decoder would refuse, handed over decoded.
	h.index++
	res := h.f.ApplyBatch(h.index, &Batch{Time: h.time, Commands: []Command{
		cmdSession(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"k", Value{Kind: KindBool, Int: 2}}}}),
	}})
	require.ErrorIs(t, res[0].Err, ErrMalformed)
	require.Equal(t, before[9:], h.snapshotBytes()[9:], "refused commands change nothing but the applied index")
}

func TestSessionAckIsMonotonicAndBoundedByTheWorldSeq(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t")
	for seq := uint64(1); seq <= 5; seq++ {
		h.event(act("w", "ann", seq, opIncr("e", "c", 1)))
	}
	r := h.session(CmdSessionAck, SessionCmd{World: "w", ID: "s1", Seq: 4})
	require.NoError(t, r.Err)
	require.Equal(t, uint64(4), r.Session.Acked)
	r = h.session(CmdSessionAck, SessionCmd{World: "w", ID: "s1", Seq: 2})
	require.NoError(t, r.Err)
	require.Equal(t, uint64(4), r.Session.Acked, "an older ack does not move it back")
	require.Equal(t, h.time, r.Session.Seen)
	r = h.session(CmdSessionAck, SessionCmd{World: "w", ID: "s1", Seq: 6})
	require.ErrorIs(t, r.Err, ErrMalformed)
}

func TestSessionResumeNeedsTheTokenAndThePlayer(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "right")
	h.event(act("w", "ann", 1, opIncr("e", "c", 1)))
	h.event(act("w", "ann", 2, opIncr("e", "c", 1)))

	r := h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("wrong")})
	require.ErrorIs(t, r.Err, ErrSessionDenied)
	r = h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "eve", TokenHash: tokenHash("right")})
	require.ErrorIs(t, r.Err, ErrSessionDenied)

	r = h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("right"), Seq: 1})
	require.NoError(t, r.Err)
	require.Equal(t, uint64(1), r.Session.Acked)
	require.Equal(t, uint64(1), r.Session.Epoch)
	r = h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("right")})
	require.NoError(t, r.Err)
	require.Equal(t, uint64(1), r.Session.Acked, "resume never moves the ack back")
	require.Equal(t, uint64(2), r.Session.Epoch)
}

func TestSessionCloseRemovesItButKeepsPlayerData(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"xp", Int(7)}}}).Err)
	r := h.session(CmdSessionClose, SessionCmd{World: "w", ID: "s1", Reason: "kicked"})
	require.NoError(t, r.Err)
	require.Equal(t, "s1", r.Session.ID)
	_, err := h.f.Session("w", "s1")
	require.ErrorIs(t, err, ErrSessionUnknown)
	r = h.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t")})
	require.ErrorIs(t, r.Err, ErrSessionUnknown)

	info := h.openSession("w", "s2", "ann", "t2")
	require.Empty(t, info.Replaced)
	require.Equal(t, map[string]Value{"xp": Int(7)}, info.Data)
}

func TestSessionDataSetsAndDeletesKeysWithinTheLimit(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t")
	r := h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{
		{"gold", Int(10)}, {"title", String("knight")}, {"gold", Int(12)},
	}})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"gold": Int(12), "title": String("knight")}, r.Session.Data)
	r = h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"title", Value{}}}})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"gold": Int(12)}, r.Session.Data)

	// Filling past the limit across commands is refused whole.
	for i := range MaxSessionData - 1 {
		require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{fmt.Sprintf("k%02d", i), Int(1)}}}).Err)
	}
	r = h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"one-too-many", Int(1)}}})
	require.ErrorIs(t, r.Err, ErrMalformed)
	info, err := h.f.Session("w", "s1")
	require.NoError(t, err)
	require.Len(t, info.Data, MaxSessionData)
	require.NotContains(t, info.Data, "one-too-many")
}

// An open may carry data (log version 10: the player's team from a token
// claim), set with the open as a data command sets it; a null value
// deletes the key, and an open that would pass the limit is refused whole.
func TestSessionOpenSetsItsDataWithTheOpen(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	open := func(id string, data ...DataItem) Result {
		return h.session(CmdSessionOpen, SessionCmd{World: "w", ID: id, Player: "ann", TokenHash: tokenHash("t"), Data: data})
	}
	r := open("s1", DataItem{"team", String("red")})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"team": String("red")}, r.Session.Data)
	v := r.Session.DataVersion
	require.NotZero(t, v)
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"gold", Int(3)}}}).Err)

	r = open("s2", DataItem{"team", String("blue")})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"team": String("blue"), "gold": Int(3)}, r.Session.Data, "the other keys stay")
	r = open("s3", DataItem{"team", Value{}})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"gold": Int(3)}, r.Session.Data, "a token without the claim: no team")

	// Only the team: the open leaves no data behind, as before it.
	h.session(CmdSessionOpen, SessionCmd{World: "w", ID: "b1", Player: "bob", TokenHash: tokenHash("t"), Data: []DataItem{{"team", Value{}}}})
	all, err := h.f.PlayerData("w")
	require.NoError(t, err)
	require.NotContains(t, all, "bob")

	for i := range MaxSessionData - 1 {
		require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s3", Data: []DataItem{{fmt.Sprintf("k%02d", i), Int(1)}}}).Err)
	}
	r = open("s4", DataItem{"team", String("red")})
	require.ErrorIs(t, r.Err, ErrMalformed)
	_, err = h.f.Session("w", "s4")
	require.ErrorIs(t, err, ErrSessionUnknown, "refused whole")

	c := cmdSession(CmdSessionOpen, SessionCmd{World: "w", ID: "s5", Player: "ann", Data: []DataItem{{"team", String("red")}}})
	require.Equal(t, Versions{Log: 10, Snapshot: 3, Wire: 1}, Needs(&c))
	require.False(t, Versions{Log: 9, Snapshot: SnapshotVersion, Wire: 1}.Covers(Needs(&c)))
}

func TestSessionReadsOfUnknownWorldsFail(t *testing.T) {
	h := newHarness(t)
	_, err := h.f.Session("nope", "s")
	require.ErrorIs(t, err, ErrUnknownWorld)
	_, err = h.f.Sessions("nope")
	require.ErrorIs(t, err, ErrUnknownWorld)
}

// sessionState builds a world with sessions, player data and events.
func sessionState(t *testing.T) *harness {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.createWorld("v", Rules{})
	h.event(act("w", "ann", 1, opIncr("e", "c", 1)))
	h.openSession("w", "s1", "ann", "t1")
	h.openSession("w", "s2", "bob", "t2")
	h.openSession("v", "s3", "ann", "t3")
	h.event(act("w", "ann", 2, opIncr("e", "c", 1)))
	require.NoError(t, h.session(CmdSessionAck, SessionCmd{World: "w", ID: "s1", Seq: 2}).Err)
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s2", Data: []DataItem{{"gold", Int(3)}, {"hat", String("red")}}}).Err)
	return h
}

func TestSessionsSurviveSnapshotAndRestore(t *testing.T) {
	h := sessionState(t)
	snap := h.f.Snapshot()
	want, err := h.f.Sessions("w")
	require.NoError(t, err)

	// Writes after the snapshot do not leak into it (copy on write).
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s2", Data: []DataItem{{"gold", Int(99)}}}).Err)
	require.NoError(t, h.session(CmdSessionClose, SessionCmd{World: "w", ID: "s1"}).Err)
	var buf bytes.Buffer
	_, err = snap.WriteTo(&buf)
	require.NoError(t, err)

	g := restored(t, buf.Bytes())
	got, err := g.Sessions("w")
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, buf.Bytes(), snapshotBytes(t, g))
	// The restored FSM resumes with the stored token hash only.
	gh := &harness{t: t, f: g, index: g.AppliedIndex(), time: h.time}
	r := gh.session(CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t1")})
	require.NoError(t, r.Err)
	require.Equal(t, uint64(2), r.Session.Acked)
}

func TestRestoreReadsVersion1Snapshots(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e", "c", 1)))
	forgetIncarnations(h.f)
	cur := h.snapshotBytes()
	snap := h.f.Snapshot()
	snap.version = 1
	v1 := writeSnapshot(t, snap)
	require.Equal(t, byte(1), v1[len(snapMagic)-1])
	require.Len(t, v1, len(cur)-3, "version 1 lacks the sessions, data and bans counts")
	g := restored(t, v1)
	requireSameState(t, h.f, g)
	require.Equal(t, cur, snapshotBytes(t, g))
}

func TestRestoreFailsCleanlyOnEveryTruncationOfSessions(t *testing.T) {
	valid := sessionState(t).snapshotBytes()
	g := newHarness(t)
	g.createWorld("mine", Rules{})
	for i := len(valid) - 120; i < len(valid); i++ {
		restoreFails(t, g.f, valid[:i], fmt.Sprintf("prefix of %d bytes", i))
	}
}

func TestRestoreRefusesTwoSessionsOfOnePlayer(t *testing.T) {
	w := craftedWorld("w", Rules{}, nil)
	w.sessions = map[string]*session{"a": {id: "a", player: "ann"}, "b": {id: "b", player: "ann"}}
	p := writeSnapshot(t, &Snapshot{applied: 1, worlds: []*world{w}})
	err := restoreFails(t, newHarness(t).f, p, "two sessions of one player")
	require.ErrorIs(t, err, ErrMalformed)
}

func TestSessionCommandsRoundTripThroughTheCodec(t *testing.T) {
	b := &Batch{Time: 9, Commands: []Command{
		cmdSession(CmdSessionOpen, SessionCmd{World: "w", ID: "s", Player: "p", TokenHash: tokenHash("x")}),
		cmdSession(CmdSessionAck, SessionCmd{World: "w", ID: "s", Seq: 300}),
		cmdSession(CmdSessionResume, SessionCmd{World: "w", ID: "s", Player: "p", TokenHash: tokenHash("x"), Seq: 2}),
		cmdSession(CmdSessionClose, SessionCmd{World: "w", ID: "s", Reason: "kicked"}),
		cmdSession(CmdSessionData, SessionCmd{World: "w", ID: "s", Data: []DataItem{{"a", Int(1)}, {"b", Value{}}}}),
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
