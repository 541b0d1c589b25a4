package fsm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func cmdExpire(world string, after time.Duration) Command {
	return Command{Kind: CmdSessionExpire, Expire: &SessionExpiry{World: world, After: int64(after)}}
}

// TestSessionExpireClosesIdleSessionsOnEveryReplica applies one log to two
// replicas: the session with no command for longer than the expiry closes
// on both, the one that acked meanwhile stays, and the replicas' state
// hashes and snapshots stay equal.
func TestSessionExpireClosesIdleSessionsOnEveryReplica(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	var log [][]byte
	step := func(at int64, cmds ...Command) []Result {
		log = append(log, EncodeBatch(&Batch{Time: at, Commands: cmds}))
		ra := a.f.Apply(uint64(len(log)), log[len(log)-1])
		rb := b.f.Apply(uint64(len(log)), log[len(log)-1])
		require.Equal(t, ra, rb)
		return ra
	}
	t0 := int64(1_700_000_000_000_000_000)
	sec := int64(time.Second)
	step(t0, cmdWorld("w", Rules{}))
	step(t0, cmdSession(CmdSessionOpen, SessionCmd{World: "w", ID: "idle", Player: "ann", TokenHash: tokenHash("a")}),
		cmdSession(CmdSessionOpen, SessionCmd{World: "w", ID: "active", Player: "bob", TokenHash: tokenHash("b")}))
	require.NoError(t, step(t0, cmdAction(act("w", "bob", 1, opIncr("e", "c", 1))))[0].Err)
	// bob acks 40s later: his session was seen then.
	step(t0+40*sec, Command{Kind: CmdSessionAcks, Acks: []SessionAck{{World: "w", ID: "active", Seq: 1}}})

	// At 60s nobody has been idle for more than 60s: nothing closes.
	r := step(t0+60*sec, cmdExpire("w", time.Minute))
	require.NoError(t, r[0].Err)
	require.Empty(t, r[0].Expired)

	// At 61s ann has been idle for 61s, bob for 21s.
	before := a.hash("w")
	r = step(t0+61*sec, cmdExpire("w", time.Minute))
	require.NoError(t, r[0].Err)
	require.Len(t, r[0].Expired, 1)
	require.Equal(t, "idle", r[0].Expired[0].ID)
	require.Equal(t, "ann", r[0].Expired[0].Player)
	require.NotEqual(t, before, a.hash("w"), "the closed session leaves the state hash")
	for _, h := range []*harness{a, b} {
		_, err := h.f.Session("w", "idle")
		require.ErrorIs(t, err, ErrSessionUnknown)
		got, err := h.f.Session("w", "active")
		require.NoError(t, err)
		require.Equal(t, t0+40*sec, got.Seen)
	}
	require.Equal(t, a.hash("w"), b.hash("w"))
	require.Equal(t, a.snapshotBytes(), b.snapshotBytes())
	// A replica restored from the snapshot holds the same state.
	require.Equal(t, a.hash("w"), restored(t, a.snapshotBytes()).stateHashOf(t, "w"))
}

func (f *FSM) stateHashOf(t *testing.T, world string) uint64 {
	t.Helper()
	wi, err := f.World(world)
	require.NoError(t, err)
	return wi.Hash
}

func TestSessionExpireKeepsPlayerDataAndBans(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"gold", Int(5)}}}).Err)
	h.time += int64(2 * time.Hour)
	r := h.apply(cmdExpire("w", time.Hour))[0]
	require.NoError(t, r.Err)
	require.Len(t, r.Expired, 1)
	require.Equal(t, map[string]Value{"gold": Int(5)}, r.Expired[0].Data)
	data, err := h.f.PlayerData("w")
	require.NoError(t, err)
	require.Equal(t, map[string]map[string]Value{"ann": {"gold": Int(5)}}, data)
	// A second expiry finds nothing left.
	require.Empty(t, h.apply(cmdExpire("w", time.Hour))[0].Expired)
}

func TestSessionExpireIgnoresSessionsSeenAfterTheLeaderTime(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t")
	// A new leader whose clock is an hour behind proposes the expiry.
	r := h.f.Apply(100, EncodeBatch(&Batch{Time: h.time - int64(time.Hour), Commands: []Command{cmdExpire("w", time.Second)}}))[0]
	require.NoError(t, r.Err)
	require.Empty(t, r.Expired)
}

func TestSessionExpireRefusesBadPayloads(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	for _, tc := range []struct {
		name string
		cmd  Command
		want error
	}{
		{"no world name", cmdExpire("", time.Minute), ErrMalformed},
		{"zero expiry", cmdExpire("w", 0), ErrMalformed},
		{"negative expiry", cmdExpire("w", -time.Second), ErrMalformed},
		{"expiry beyond the bound", cmdExpire("w", MaxSessionExpiry+1), ErrMalformed},
		{"unknown world", cmdExpire("nope", time.Minute), ErrUnknownWorld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, h.apply(tc.cmd)[0].Err, tc.want)
		})
	}
	require.NoError(t, h.apply(cmdExpire("w", MaxSessionExpiry))[0].Err)
}

func TestIdleSessionsReportsWorldsWithSessionsPastTheExpiry(t *testing.T) {
	h := newHarness(t)
	require.False(t, h.f.IdleSessions("w", time.Unix(0, h.time), time.Second), "no such world")
	h.createWorld("w", Rules{})
	require.False(t, h.f.IdleSessions("w", time.Unix(0, h.time), time.Second), "no sessions")
	h.openSession("w", "s1", "ann", "t")
	seen := h.time
	require.False(t, h.f.IdleSessions("w", time.Unix(0, seen).Add(time.Second), time.Second))
	require.True(t, h.f.IdleSessions("w", time.Unix(0, seen).Add(time.Second+1), time.Second))
}

func TestSessionExpireRoundTripsTheLogAndNeedsLogVersion4(t *testing.T) {
	in := &Batch{Time: 7, Commands: []Command{cmdExpire("w", 90*time.Second)}}
	out, err := DecodeBatch(EncodeBatch(in))
	require.NoError(t, err)
	require.Equal(t, in, out)
	require.Equal(t, Versions{Log: 4, Snapshot: 3, Wire: 1}, Needs(&in.Commands[0]))
	require.True(t, Supported().Covers(Needs(&in.Commands[0])))
	require.False(t, Baseline().Covers(Needs(&in.Commands[0])))
}
