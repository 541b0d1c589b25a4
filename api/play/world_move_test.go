package play

import (
	"context"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
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

// elsewhere is a backend on a node that runs no replica of world "far"'s
// shard (as shard.Backend answers for a shard placed on other nodes).
type elsewhere struct{ *store.Store }

func (e elsewhere) World(id string) (fsm.WorldInfo, error) {
	if id == "far" {
		return fsm.WorldInfo{}, fmt.Errorf("%w: world %q is on group 7: %w", store.ErrNotLeader, id, shard.ErrUnknownGroup)
	}
	return e.Store.World(id)
}

// A hello on a node without a replica of the world's shard is refused at
// once with 4503 not_leader (the client goes to another node), and opens
// no session.
func TestAHelloWhereTheWorldsShardIsNotRunIsRefusedAtOnce(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "far", fsm.Rules{}))
	env := newEnvFor(t, elsewhere{st}, fastPlay)
	c := dialPlay(t, env.WSURL("far"))
	wsSend(t, c, map[string]any{"type": "hello", "player": "ann"})
	wsClosed(t, c, 4503, "not_leader")
	sessions, err := st.Sessions("far")
	require.NoError(t, err)
	require.Empty(t, sessions)
}
