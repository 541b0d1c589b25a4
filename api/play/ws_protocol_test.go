package play

import (
	"encoding/json"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The tests in this file check rules of docs/PROTOCOL.md that a client
// written from the document alone relies on.

func TestPlayRefusesAHelloOrResumeTokenForAnotherPlayerThanTheHeaderToken(t *testing.T) {
	n := startLeaderWith(t, fastPlay, withAuth)
	n.env.Do("POST", "/v1/worlds", arenaBody, apitest.AdminHeader(t)...)
	url := n.env.WSURL("arena")
	ann := sign(t, jwt.SigningMethodEdDSA, keys.Ed, claims("ann"))
	ann2 := sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann"))
	bob := sign(t, jwt.SigningMethodHS256, keys.HS, claims("bob"))

	// Two tokens of the same player: the message's one counts.
	c := dialPlay(t, url, "Authorization", "Bearer "+ann)
	wsSend(t, c, map[string]any{"type": "hello", "token": ann2})
	w := wsRecv(t, c)
	require.Equal(t, "welcome", w["type"], "%v", w)
	require.Equal(t, "ann", w["player"])

	// A hello token naming another player than the header's is refused.
	c2 := dialPlay(t, url, "Authorization", "Bearer "+bob)
	wsSend(t, c2, map[string]any{"type": "hello", "token": ann})
	wsClosed(t, c2, 4403, edge.CodeForbidden)
	// So is a resume token, even one that owns the session.
	c3 := dialPlay(t, url, "Authorization", "Bearer "+bob)
	wsSend(t, c3, map[string]any{"type": "resume", "token": ann, "session": w["session"], "resume_token": w["resume_token"]})
	wsClosed(t, c3, 4403, edge.CodeForbidden)

	// Nothing happened to ann's session: her connection still plays.
	wsSend(t, c, map[string]any{"type": "ping", "t": 7})
	require.Equal(t, "pong", wsRecv(t, c)["type"])
}

func TestPlayActionBodyWithUnknownKeysIsAnErrorAnswerAndKeepsTheConnection(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann")

	for what, body := range map[string]string{
		"in the action": `{"seq":1,"speed":9,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`,
		"in an op":      `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1,"speed":9}]}`,
	} {
		wsSend(t, c, map[string]any{"type": "action", "action": json.RawMessage(body)})
		m := wsRecv(t, c)
		require.Equal(t, "error", m["type"], "%s: %v", what, m)
		require.Equal(t, float64(1), m["seq"], what)
		// error.status is a JSON number (the HTTP status), unlike an
		// event's status, a string.
		require.Equal(t, float64(400), m["status"], what)
		require.Equal(t, fsm.CodeMalformed, m["code"], what)
	}
	// The connection is still open, nothing was applied and the client
	// seq is not used up: the corrected action with seq 1 is the world's
	// first event.
	wsSend(t, c, map[string]any{"type": "action", "action": json.RawMessage(`{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`)})
	for {
		m := wsRecv(t, c)
		if m["type"] != "result" {
			continue
		}
		ev := m["event"].(map[string]any)
		require.Equal(t, "applied", ev["status"])
		require.Equal(t, float64(1), ev["seq"])
		require.Nil(t, ev["duplicate"])
		break
	}

	// The same in msgpack: an error message with an integer status.
	mp := dialProtocols(t, n.env.WSURL("arena"), MsgpackSubprotocol)
	mpSend(t, mp, map[string]any{"type": "hello", "player": "bob"})
	require.Equal(t, "welcome", mpRecv(t, mp)["type"])
	mpSend(t, mp, map[string]any{"type": "action", "action": map[string]any{"seq": uint64(4), "speed": uint64(9), "ops": []any{
		map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": uint64(1)}}}})
	m := mpRecvType(t, mp, "error")
	require.EqualValues(t, 4, m["seq"])
	require.EqualValues(t, 400, m["status"])
	require.Equal(t, fsm.CodeMalformed, m["code"])
	mpSend(t, mp, map[string]any{"type": "ping", "t": int64(5)})
	require.EqualValues(t, 5, mpRecvType(t, mp, "pong")["t"], "the connection stays open")
}

func TestPlayResumeWithALastSeqBeyondTheWorldSeqClosesWith4400(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	n.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 1))
	c := dialPlay(t, n.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	require.Equal(t, float64(1), w["seq"])
	_ = c.CloseNow()

	c2 := dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, c2, map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"], "last_seq": 2})
	wsClosed(t, c2, 4400, fsm.CodeMalformed)

	// The session is untouched: a resume from the world's seq works.
	c3 := dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, c3, map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"], "last_seq": 1})
	m := wsRecv(t, c3)
	require.Equal(t, "welcome", m["type"], "%v", m)
	require.Equal(t, float64(1), m["seq"])
}
