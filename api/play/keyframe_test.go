package play

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// keyframeHello says hello as player asking for a keyframe and returns
// the welcome and the keyframe, which must come right after it.
func keyframeHello(t *testing.T, c *websocket.Conn, player string) (welcome, keyframe map[string]any) {
	t.Helper()
	wsSend(t, c, map[string]any{"type": "hello", "player": player, "keyframe": true})
	welcome = wsRecv(t, c)
	require.Equal(t, "welcome", welcome["type"], "%v", welcome)
	keyframe = wsRecv(t, c)
	require.Equal(t, "keyframe", keyframe["type"], "%v", keyframe)
	return welcome, keyframe
}

// fields returns a keyframe's entities as entity → field → value.
func fields(t *testing.T, kf map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for id, e := range kf["entities"].(map[string]any) {
		out[id] = map[string]any{}
		for name, f := range e.(map[string]any)["fields"].(map[string]any) {
			out[id][name] = f.(map[string]any)["value"]
		}
	}
	return out
}

// A player joining a world with hidden fields gets, right after the
// welcome, the state its view may see at the welcome's seq; the stream
// then starts after that seq.
func TestHelloWithKeyframeGetsTheVisibleStateAtTheWelcomesSeq(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "fog", fsm.Rules{}))
	rs := apitest.NewRuledStore(st, fogRules)
	env := newEnvFor(t, rs, fastPlay)
	fogSet(t, st, 1, false, "ann", "team", fsm.String("red"))
	fogSet(t, st, 2, false, "bob", "team", fsm.String("red"))
	fogSet(t, st, 3, false, "cat", "team", fsm.String("blue"))
	fogSet(t, st, 4, false, "ann", "gold", fsm.String("ann-gold"))
	fogSet(t, st, 5, false, "base", "owner", fsm.String("ann"))
	fogSet(t, st, 6, false, "base", "plan", fsm.String("red-plan"))
	fogSet(t, st, 7, true, "base", "trap", fsm.String("the-trap"))

	for p, want := range map[string]map[string]map[string]any{
		"ann": {"ann": {"team": "red", "gold": "ann-gold"}, "bob": {"team": "red"}, "cat": {"team": "blue"}, "base": {"owner": "ann", "plan": "red-plan"}},
		"bob": {"ann": {"team": "red"}, "bob": {"team": "red"}, "cat": {"team": "blue"}, "base": {"owner": "ann", "plan": "red-plan"}},
		"cat": {"ann": {"team": "red"}, "bob": {"team": "red"}, "cat": {"team": "blue"}, "base": {"owner": "ann"}},
	} {
		c := dialPlay(t, env.WSURL("fog"))
		w, kf := keyframeHello(t, c, p)
		require.Equal(t, float64(7), w["seq"], p)
		require.Equal(t, float64(7), kf["seq"], p)
		require.Equal(t, "fog", kf["world"])
		require.Equal(t, want, fields(t, kf), p)
	}

	// The stream goes on after the keyframe's seq, cut to the view.
	c := dialPlay(t, env.WSURL("fog"))
	keyframeHello(t, c, "cat")
	fogSet(t, st, 8, false, "ann", "gold", fsm.String("more-gold"))
	fogSet(t, st, 9, false, "cat", "gold", fsm.String("cat-gold"))
	got := readUpTo(t, c, 9)
	require.NotContains(t, got, "more-gold")
	require.Contains(t, got, "cat-gold")
	var first struct{ From uint64 }
	require.NoError(t, json.Unmarshal([]byte(got), &first))
	require.Equal(t, uint64(8), first.From, "the first frame follows the keyframe")
}

// In a world that restricts nothing the keyframe is the whole state, and a
// resume that asks for one skips the events it missed: the welcome names
// the node's seq and the stream goes on from there.
func TestResumeWithKeyframeSkipsTheMissedEvents(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "open", fsm.Rules{}))
	env := newEnvFor(t, st, fastPlay)
	set := func(seq uint64, entity, field string, v fsm.Value) {
		_, _, err := st.Act(context.Background(), &fsm.Action{World: "open", Player: "gm", Seq: seq,
			Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: entity, Field: field, Value: v}}})
		require.NoError(t, err)
	}
	set(1, "flag", "holder", fsm.String("red"))

	c := dialPlay(t, env.WSURL("open"))
	w, kf := keyframeHello(t, c, "ann")
	require.Equal(t, float64(1), w["seq"])
	require.Equal(t, map[string]map[string]any{"flag": {"holder": "red"}}, fields(t, kf))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))

	set(2, "flag", "holder", fsm.String("blue"))
	set(3, "score", "red", fsm.Int(1))
	c2 := dialPlay(t, env.WSURL("open"))
	wsSend(t, c2, map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"], "last_seq": 1, "keyframe": true})
	w2 := wsRecv(t, c2)
	require.Equal(t, "welcome", w2["type"], "%v", w2)
	require.Equal(t, float64(3), w2["seq"], "the keyframe's seq, not the resume's")
	kf2 := wsRecv(t, c2)
	require.Equal(t, "keyframe", kf2["type"])
	require.Equal(t, float64(3), kf2["seq"])
	require.Equal(t, map[string]map[string]any{"flag": {"holder": "blue"}, "score": {"red": float64(1)}}, fields(t, kf2))
	set(4, "score", "red", fsm.Int(2))
	require.Equal(t, []uint64{4}, nextEvents(t, c2, 1), "nothing of what the keyframe holds comes again")

	// A resume without a keyframe replays from its position, as before.
	require.NoError(t, c2.Close(websocket.StatusNormalClosure, ""))
	c3 := dialPlay(t, env.WSURL("open"))
	wsSend(t, c3, map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"], "last_seq": 3})
	require.Equal(t, "welcome", wsRecv(t, c3)["type"])
	require.Equal(t, []uint64{4}, nextEvents(t, c3, 1))
}

// The keyframe travels in the connection's codec.
func TestKeyframeInMsgpack(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "open", fsm.Rules{}))
	_, _, err := st.Act(context.Background(), &fsm.Action{World: "open", Player: "gm", Seq: 1,
		Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "e", Field: "n", Value: fsm.Int(42)}}})
	require.NoError(t, err)
	env := newEnvFor(t, st, fastPlay)
	c := dialProtocols(t, env.WSURL("open"), MsgpackSubprotocol)
	mpSend(t, c, map[string]any{"type": "hello", "player": "ann", "keyframe": true})
	require.Equal(t, "welcome", mpRecv(t, c)["type"])
	kf := mpRecv(t, c)
	require.Equal(t, "keyframe", kf["type"])
	require.Equal(t, uint64(1), toU64(t, kf["seq"]))
	e := kf["entities"].(map[string]any)["e"].(map[string]any)
	require.Equal(t, uint64(42), toU64(t, e["fields"].(map[string]any)["n"].(map[string]any)["value"]))
}

// A backend that reads no world state refuses a keyframe, clearly.
func TestKeyframeNeedsABackendThatReadsState(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "open", fsm.Rules{}))
	env := newEnvFor(t, noState{st}, fastPlay)
	c := dialPlay(t, env.WSURL("open"))
	wsSend(t, c, map[string]any{"type": "hello", "player": "ann", "keyframe": true})
	wsClosed(t, c, 4422, fsm.CodeNotSupported)
}

// noState hides the store's state reads.
type noState struct{ *store.Store }

func (noState) Entities() {}
