package store

import (
	"crypto/sha256"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestSessionAcksReplicateManySessionsInOneCommandAndSkipUnknownOnes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	for _, id := range []string{"s1", "s2"} {
		_, err := l.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: id, Player: "p" + id, TokenHash: sha256.Sum256([]byte(id))})
		require.NoError(t, err)
	}
	for i := range 3 {
		_, _, err := l.Act(ctxT(t), incr("arena", "ann", uint64(i+1), "e", "c", 1))
		require.NoError(t, err)
	}
	n, err := l.SessionAcks(ctxT(t), []fsm.SessionAck{
		{World: "arena", ID: "s1", Seq: 3},
		{World: "arena", ID: "s2", Seq: 2},
		{World: "arena", ID: "gone", Seq: 3},
	})
	require.NoError(t, err)
	require.Equal(t, 2, n, "the unknown session is skipped")

	c.waitReplicated()
	for _, s := range c.nodes {
		for id, want := range map[string]uint64{"s1": 3, "s2": 2} {
			got, err := s.SessionInfo("arena", id)
			require.NoError(t, err)
			require.Equal(t, want, got.Acked, "node %s session %s", s.cfg.ID, id)
		}
	}

	_, err = l.SessionAcks(ctxT(t), nil)
	require.ErrorIs(t, err, fsm.ErrMalformed)
	_, err = l.SessionAcks(ctxT(t), make([]fsm.SessionAck, fsm.MaxSessionAcks+1))
	require.ErrorIs(t, err, fsm.ErrMalformed, "an oversized batch never reaches the log")
	for _, s := range c.nodes {
		if s != l {
			_, err = s.SessionAcks(ctxT(t), []fsm.SessionAck{{World: "arena", ID: "s1", Seq: 3}})
			require.ErrorIs(t, err, ErrNotLeader)
			break
		}
	}
}
