package play

import (
	"context"
	"testing"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A world fenced on this node's group (moved to another shard) ends its
// play connections with world_moved, which clients resume from; a new
// hello is refused the same way.
func TestPlayConnectionsOfAMovedWorldCloseWithWorldMoved(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	env := newEnvFor(t, st, fastPlay)
	c := dialPlay(t, env.WSURL("arena"))
	welcome(t, c, "ann")
	_, err := st.MoveWorld(context.Background(), "arena", 7, 0)
	require.NoError(t, err)
	wsClosed(t, c, 4421, fsm.CodeWorldMoved)

	c2 := dialPlay(t, env.WSURL("arena"))
	wsSend(t, c2, map[string]any{"type": "hello", "player": "bob"})
	wsClosed(t, c2, 4421, fsm.CodeWorldMoved)
}
