package play

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// TestPlayKeepaliveRefreshesQuietConnectedSessions: with SessionKeepalive
// on, a connection with nothing new to ack has its last ack replicated
// again once per keepalive interval, so its session's seen time stays
// fresh for session expiry; a connection that replicated recently does not.
func TestPlayKeepaliveRefreshesQuietConnectedSessions(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, slowAcks, func(c *nodeConfig) { c.Play.SessionKeepalive = time.Hour })
	e.Do("POST", "/v1/worlds", arenaBody)
	conns := fakePlays(e.srv, 2) // s0, s1 with ack 1
	defer clearPlays(e.srv)
	quiet := &playConn{s: e.srv.Service, world: "arena", session: "s2"} // never acked
	bare := &playConn{s: e.srv.Service, world: "arena"}                 // no session yet
	e.srv.mu.Lock()
	e.srv.plays["s2"], e.srv.plays["bare"] = quiet, bare
	e.srv.mu.Unlock()

	e.srv.acks.round(context.Background())
	require.Len(t, fake.AckBatches, 1)
	require.Len(t, fake.AckBatches[0], 2, "the moved acks; the quiet session was just opened")
	e.srv.acks.round(context.Background())
	require.Len(t, fake.AckBatches, 1, "nothing moved and everything is fresh")

	old := time.Now().Add(-2 * time.Hour).UnixNano()
	conns[0].kept.Store(old)
	quiet.kept.Store(old)
	e.srv.acks.round(context.Background())
	require.Len(t, fake.AckBatches, 2)
	require.ElementsMatch(t, []fsm.SessionAck{{World: "arena", ID: "s0", Seq: 1}, {World: "arena", ID: "s2", Seq: 0}}, fake.AckBatches[1])
	require.Greater(t, conns[0].kept.Load(), old, "the keepalive counts as a replication")
	e.srv.acks.round(context.Background())
	require.Len(t, fake.AckBatches, 2)
	require.Zero(t, bare.kept.Load(), "a connection without a session has nothing to keep alive")
}

func TestPlayConfigRefusesANegativeKeepalive(t *testing.T) {
	c := DefaultConfig()
	c.SessionKeepalive = -time.Second
	require.ErrorContains(t, c.Validate(), "SessionKeepalive")
}
