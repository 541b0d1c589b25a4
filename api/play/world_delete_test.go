package play

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// TestDeletingTheWorldClosesItsPlayersWithUnknownWorld: the welcome names
// the world's incarnation, and a delete ends connected players' connections
// with 4404 unknown_world.
func TestDeletingTheWorldClosesItsPlayersWithUnknownWorld(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, n.st.CreateWorld(ctx, "arena", fsm.Rules{}))
	wi, err := n.st.World("arena")
	require.NoError(t, err)
	require.NotZero(t, wi.Incarnation)

	c := dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, c, map[string]any{"type": "hello", "player": "ann"})
	welcome := wsRecv(t, c)
	require.Equal(t, "welcome", welcome["type"])
	require.Equal(t, float64(wi.Incarnation), welcome["incarnation"])

	_, err = n.st.DeleteWorld(ctx, "arena", wi.Incarnation)
	require.NoError(t, err)
	wsClosed(t, c, websocket.StatusCode(4404), "unknown_world")
}

// TestAHelloBeyondTheWorldsCapacityClosesWithWorldFull: capacity counts
// sessions; the player beyond it is refused with 4409 world_full.
func TestAHelloBeyondTheWorldsCapacityClosesWithWorldFull(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, n.st.CreateWorld(ctx, "duel", fsm.Rules{Schema: fsm.Schema{Capacity: 1}}))
	a := dialPlay(t, n.env.WSURL("duel"))
	wsSend(t, a, map[string]any{"type": "hello", "player": "ann"})
	require.Equal(t, "welcome", wsRecv(t, a)["type"])
	b := dialPlay(t, n.env.WSURL("duel"))
	wsSend(t, b, map[string]any{"type": "hello", "player": "bob"})
	wsClosed(t, b, websocket.StatusCode(4409), "world_full")
}
