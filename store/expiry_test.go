package store

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// TestExpireSessionsClosesIdleSessionsOnEveryReplica: a session with no
// command for longer than the expiry closes on every node; one that acked
// within it stays.
func TestExpireSessionsClosesIdleSessionsOnEveryReplica(t *testing.T) {
	t.Parallel()
	const after = 2 * time.Second
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	_, _, err := l.Act(ctxT(t), incr("arena", "bob", 1, "e", "c", 1))
	require.NoError(t, err)
	idle, err := l.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "idle", Player: "ann", TokenHash: sha256.Sum256([]byte("a"))})
	require.NoError(t, err)
	_, err = l.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "active", Player: "bob", TokenHash: sha256.Sum256([]byte("b"))})
	require.NoError(t, err)
	require.False(t, l.IdleSessions("arena", after))

	// Wait on the clock (not on a state) until ann's session is idle for
	// longer than the expiry, then bob acks: his session is fresh.
	require.Eventually(t, func() bool { return l.IdleSessions("arena", after) }, 10*time.Second, 10*time.Millisecond)
	require.Less(t, idle.Seen, time.Now().Add(-after).UnixNano())
	_, err = l.SessionAcks(ctxT(t), []fsm.SessionAck{{World: "arena", ID: "active", Seq: 1}})
	require.NoError(t, err)

	// The harness's members joined without reporting their versions: the
	// gate refuses the log version 4 command until they do.
	_, err = l.ExpireSessions(ctxT(t), "arena", after)
	require.ErrorIs(t, err, ErrVersionGate)
	for _, s := range c.nodes {
		require.NoError(t, l.Join(ctxT(t), s.Self()))
	}
	expired, err := l.ExpireSessions(ctxT(t), "arena", after)
	require.NoError(t, err)
	require.Len(t, expired, 1)
	require.Equal(t, "idle", expired[0].ID)

	c.waitReplicated()
	for _, s := range c.nodes {
		_, err := s.SessionInfo("arena", "idle")
		require.ErrorIs(t, err, fsm.ErrSessionUnknown, "node %s", s.cfg.ID)
		got, err := s.SessionInfo("arena", "active")
		require.NoError(t, err, "node %s", s.cfg.ID)
		require.Equal(t, uint64(1), got.Acked)
	}
	c.ensureSameHashes("arena")

	_, err = l.ExpireSessions(ctxT(t), "arena", 0)
	require.ErrorIs(t, err, fsm.ErrMalformed)
	_, err = l.ExpireSessions(ctxT(t), "nope", after)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
}
