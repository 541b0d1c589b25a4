package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The edge checks bans before proposing; an action that slipped past that
// check (here: the store is asked directly) is still refused in apply, by
// every replica alike.
func TestActionOfABannedPlayerCommitsAsRejectedOnEveryReplica(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	_, err := l.Session(ctxT(t), fsm.CmdSessionBan, &fsm.SessionCmd{World: "arena", Player: "eve", Reason: "aimbot"})
	require.NoError(t, err)
	ev, dup, err := l.Act(ctxT(t), incr("arena", "eve", 1, "e", "score", 5))
	require.NoError(t, err)
	require.False(t, dup)
	require.Equal(t, fsm.StatusRejected, ev.Status)
	require.Equal(t, fsm.CodeBanned, ev.Reason)
	c.waitReplicated()
	for _, s := range c.nodes {
		got := s.feed.event("arena", ev.Seq)
		require.NotNil(t, got, "node %s", s.cfg.ID)
		require.Equal(t, fsm.StatusRejected, got.Status, "node %s", s.cfg.ID)
		require.Equal(t, fsm.CodeBanned, got.Reason, "node %s", s.cfg.ID)
		_, err := s.Entity(ctxT(t), "arena", "e", Stale)
		require.ErrorIs(t, err, fsm.ErrNotFound, "node %s: nothing applied", s.cfg.ID)
	}
	c.ensureSameHashes("arena")
}
