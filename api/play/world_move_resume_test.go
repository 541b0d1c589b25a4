package play

import (
	"context"
	"testing"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// docs/PROTOCOL.md: a connection open at a world's old home when it moves
// closes with 4421 world_moved, and the client resumes "as after any
// drop (the session moved with the world)". A client that had not yet
// received the last events before the fence resumes at the new home from
// a seq at or before the fence; the new group's feed starts after it
// (store.ImportWorld: earlier events stay in the old group's archive), so
// the resume ends with archive_gap there, and one that asks for a keyframe
// goes on from the world's state (docs/PROTOCOL.md).
func TestResumeAtTheNewHomeFromBeforeTheFence(t *testing.T) {
	ctx := context.Background()
	src := apitest.StartStore(t)
	require.NoError(t, src.CreateWorld(ctx, "arena", fsm.Rules{}))
	old := newEnvFor(t, src, fastPlay)
	c := dialPlay(t, old.WSURL("arena"))
	w := welcome(t, c, "ann")
	for seq := uint64(1); seq <= 3; seq++ { // events the client has not read yet
		_, _, err := src.Act(ctx, &fsm.Action{World: "arena", Player: "gm", Seq: seq,
			Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
		require.NoError(t, err)
	}
	_, err := src.MoveWorld(ctx, "arena", 7, 0)
	require.NoError(t, err)
	wsClosed(t, c, 4421, fsm.CodeWorldMoved)
	blob, _, err := src.ExportWorld("arena", 1)
	require.NoError(t, err)

	dst := apitest.StartStore(t)
	_, err = dst.ImportWorld(ctx, "arena", blob)
	require.NoError(t, err)
	home := newEnvFor(t, dst, fastPlay)
	resume := map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"], "last_seq": w["seq"]}
	c2 := dialPlay(t, home.WSURL("arena"))
	wsSend(t, c2, resume)
	wsClosed(t, c2, 4410, "archive_gap")

	resume["keyframe"] = true
	c3 := dialPlay(t, home.WSURL("arena"))
	wsSend(t, c3, resume)
	w3 := wsRecv(t, c3)
	require.Equal(t, "welcome", w3["type"], "the session resumes at the world's new home")
	require.Equal(t, float64(3), w3["seq"])
	kf := wsRecv(t, c3)
	require.Equal(t, "keyframe", kf["type"])
	require.Equal(t, map[string]map[string]any{"e": {"n": float64(3)}}, fields(t, kf))
	_, _, err = dst.Act(ctx, &fsm.Action{World: "arena", Player: "gm", Seq: 4, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
	require.NoError(t, err)
	require.Equal(t, []uint64{4}, nextEvents(t, c3, 1), "the world's seq goes on at its new home")
	_ = c3.Close(websocket.StatusNormalClosure, "")
}
