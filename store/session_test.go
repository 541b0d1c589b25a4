package store

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestSessionsReplicateAndResumeOnAFollowerState(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	_, _, err := l.Act(ctxT(t), incr("arena", "ann", 1, "e", "c", 1))
	require.NoError(t, err)

	hash := sha256.Sum256([]byte("resume-me"))
	info, err := l.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann", TokenHash: hash})
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.Acked)
	_, _, err = l.Act(ctxT(t), incr("arena", "ann", 2, "e", "c", 1))
	require.NoError(t, err)
	info, err = l.Session(ctxT(t), fsm.CmdSessionAck, &fsm.SessionCmd{World: "arena", ID: "s1", Seq: 2})
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.Acked)

	c.waitReplicated()
	for _, s := range c.nodes {
		got, err := s.SessionInfo("arena", "s1")
		require.NoError(t, err)
		require.Equal(t, uint64(2), got.Acked, "node %s", s.cfg.ID)
	}

	_, err = l.Session(ctxT(t), fsm.CmdSessionResume, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann", TokenHash: sha256.Sum256([]byte("guess"))})
	require.ErrorIs(t, err, fsm.ErrSessionDenied)
	_, err = l.Session(ctxT(t), fsm.CmdAction, &fsm.SessionCmd{World: "arena", ID: "s1"})
	require.ErrorIs(t, err, fsm.ErrMalformed)

	// A follower proposes nothing.
	for _, s := range c.nodes {
		if s != l {
			_, err = s.Session(ctxT(t), fsm.CmdSessionAck, &fsm.SessionCmd{World: "arena", ID: "s1", Seq: 2})
			require.ErrorIs(t, err, ErrNotLeader)
			break
		}
	}
}

func TestSessionsSurviveARestartFromSnapshot(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	hash := sha256.Sum256([]byte("tok"))
	_, err := l.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann", TokenHash: hash})
	require.NoError(t, err)
	_, err = l.Session(ctxT(t), fsm.CmdSessionData, &fsm.SessionCmd{World: "arena", ID: "s1", Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(9)}}})
	require.NoError(t, err)
	_, err = l.Snapshot(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, l.Close(ctxT(t)))

	s := c.restart(0)
	c.waitLeader()
	info, err := s.Session(ctxT(t), fsm.CmdSessionResume, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann", TokenHash: hash})
	require.NoError(t, err)
	require.Equal(t, map[string]fsm.Value{"gold": fsm.Int(9)}, info.Data)
	require.Equal(t, uint64(1), info.Epoch)
}

func TestImportedPlayerDataAndBansSurviveAFullRestart(t *testing.T) {
	t.Parallel()
	for _, snap := range []bool{false, true} {
		c := newCluster(t, 1, nil)
		l := c.leader()
		mustCreateWorld(t, l, "arena")
		imp := &fsm.SessionCmd{World: "arena", Player: "ann", Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(40)}, {Key: "rank", Value: fsm.String("gold")}}}
		_, err := l.Session(ctxT(t), fsm.CmdSessionImport, imp)
		require.NoError(t, err)
		_, err = l.Session(ctxT(t), fsm.CmdSessionImport, imp) // idempotent
		require.NoError(t, err)
		before, err := l.PlayerRecords("arena")
		require.NoError(t, err)
		require.Len(t, before, 1)
		require.NotZero(t, before[0].Version)
		_, err = l.Session(ctxT(t), fsm.CmdSessionBan, &fsm.SessionCmd{World: "arena", Player: "eve", Reason: "cheat"})
		require.NoError(t, err)
		if snap {
			_, err = l.Snapshot(ctxT(t))
			require.NoError(t, err)
		}
		require.NoError(t, l.Close(ctxT(t)))

		s := c.restart(0)
		c.waitLeader()
		require.Eventually(t, func() bool {
			d, err := s.PlayerData("arena")
			return err == nil && len(d) == 1
		}, 10*time.Second, 5*time.Millisecond, "snapshot %t", snap)
		d, err := s.PlayerData("arena")
		require.NoError(t, err)
		require.Equal(t, map[string]map[string]fsm.Value{"ann": {"gold": fsm.Int(40), "rank": fsm.String("gold")}}, d)
		after, err := s.PlayerRecords("arena")
		require.NoError(t, err)
		require.Equal(t, before, after, "the data's version survives the restart")
		stamp, err := s.PlayerDataStamp("arena")
		require.NoError(t, err)
		require.Equal(t, before[0].Version, stamp, "one player: the stamp is its version")
		reason, banned := s.Banned("arena", "eve")
		require.True(t, banned)
		require.Equal(t, "cheat", reason)
		bans, err := s.Bans("arena")
		require.NoError(t, err)
		require.Len(t, bans, 1)
		all, err := s.Sessions("arena")
		require.NoError(t, err)
		require.Empty(t, all)
	}
}
