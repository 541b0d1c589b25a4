package client

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestFindWorldsWorldAndDeleteWorldAgainstANode(t *testing.T) {
	c := New([]string{testnode.Start(t)})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "a", wire.Rules{Mode: "duel", Capacity: 1, Labels: map[string]string{"map": "dust"}}))
	require.NoError(t, c.CreateWorld(ctx, "b", wire.Rules{Mode: "ffa"}))

	yes, zero := true, 0
	ws, next, err := c.FindWorlds(ctx, WorldFilter{Mode: "duel", Labels: map[string]string{"map": "dust"}, HasCapacity: &yes, MinPlayers: &zero, MaxPlayers: &zero, Limit: 1})
	require.NoError(t, err)
	require.Len(t, ws, 1)
	require.Equal(t, "a", ws[0].ID)
	require.Empty(t, next)
	ws, next, err = c.FindWorlds(ctx, WorldFilter{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, "a", ws[0].ID)
	require.Equal(t, "a", next)
	ws, _, err = c.FindWorlds(ctx, WorldFilter{Cursor: next})
	require.NoError(t, err)
	require.Equal(t, "b", ws[0].ID)

	w, err := c.World(ctx, "a")
	require.NoError(t, err)
	require.NotZero(t, w.Incarnation)
	p, err := c.Play(ctx, "a", PlayOptions{Player: "ann"})
	require.NoError(t, err)
	require.Equal(t, w.Incarnation, p.Incarnation(), "the welcome names it")
	require.NoError(t, p.Close())
	_, err = c.DeleteWorld(ctx, "a", w.Incarnation+1)
	require.Equal(t, CodeUnknownWorld, Code(err))
	gone, err := c.DeleteWorld(ctx, "a", w.Incarnation)
	require.NoError(t, err)
	require.Equal(t, w.ID, gone.ID)
	require.Equal(t, w.Incarnation, gone.Incarnation, "the world as it was")
	_, err = c.World(ctx, "a")
	require.Equal(t, CodeUnknownWorld, Code(err))
	_, err = c.DeleteWorld(ctx, "b", 0)
	require.NoError(t, err)
}
