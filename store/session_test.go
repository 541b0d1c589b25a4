package store

import (
	"crypto/sha256"
	"testing"

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
