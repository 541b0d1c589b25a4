package play

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// dialPlay opens a play connection with the JSON subprotocol.
func dialPlay(t *testing.T, url string, hdr ...string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{PlaySubprotocol}, HTTPHeader: h})
	require.NoError(t, err)
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func wsSend(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, b))
}

// wsRecv reads the next message, skipping server pings.
func wsRecv(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), "message: %s", b)
		if m["type"] != "ping" {
			return m
		}
	}
}

// wsClosed reads until the connection ends and requires close code code
// with a reason starting with prefix.
func wsClosed(t *testing.T, c *websocket.Conn, code websocket.StatusCode, prefix string) {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, _, err := c.Read(ctx)
		cancel()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		require.ErrorAs(t, err, &ce, "want close %d, got %v", code, err)
		require.Equal(t, code, ce.Code, "reason: %s", ce.Reason)
		require.True(t, strings.HasPrefix(ce.Reason, prefix), "reason %q, want prefix %q", ce.Reason, prefix)
		return
	}
}

// welcome says hello as player and returns the welcome.
func welcome(t *testing.T, c *websocket.Conn, player string) map[string]any {
	t.Helper()
	wsSend(t, c, map[string]any{"type": "hello", "player": player})
	m := wsRecv(t, c)
	require.Equal(t, "welcome", m["type"], "%v", m)
	return m
}

// nextEvents reads events messages until it has n events and returns their seqs.
func nextEvents(t *testing.T, c *websocket.Conn, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for len(seqs) < n {
		m := wsRecv(t, c)
		if m["type"] != "events" {
			continue
		}
		for _, ev := range m["events"].([]any) {
			seqs = append(seqs, uint64(ev.(map[string]any)["seq"].(float64)))
		}
	}
	return seqs
}

func actBody(player string, seq int) string {
	return fmt.Sprintf(`{"player":%q,"seq":%d,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`, player, seq)
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func fastPlay(c *nodeConfig) {
	c.Play.AckInterval = 10 * time.Millisecond
}

func TestPlayWelcomesPushesEventsAndAnswersActionsAndPings(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	n.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 1))

	c := dialPlay(t, n.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	require.NotEmpty(t, w["session"])
	require.NotEmpty(t, w["resume_token"])
	require.Equal(t, "ann", w["player"])
	require.Equal(t, float64(1), w["seq"], "the session starts after the world's current event")

	// Someone else's HTTP action reaches the player.
	n.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 2))
	require.Equal(t, []uint64{2}, nextEvents(t, c, 1))

	// The player's own action: a result, and the event in the stream.
	wsSend(t, c, map[string]any{"type": "action", "action": map[string]any{
		"seq": 1, "ops": []any{map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": 5}}}})
	var sawResult, sawEvent bool
	for !sawResult || !sawEvent {
		m := wsRecv(t, c)
		switch m["type"] {
		case "result":
			require.Equal(t, float64(1), m["seq"])
			ev := m["event"].(map[string]any)
			require.Equal(t, "ann", ev["player"])
			require.Equal(t, "applied", ev["status"])
			sawResult = true
		case "events":
			require.Equal(t, float64(3), m["events"].([]any)[0].(map[string]any)["seq"])
			sawEvent = true
		}
	}
	// An action for another player is refused, the connection stays.
	wsSend(t, c, map[string]any{"type": "action", "action": json.RawMessage(actBody("bob", 7))})
	m := wsRecv(t, c)
	require.Equal(t, "error", m["type"])
	require.Equal(t, float64(7), m["seq"])
	require.Equal(t, edge.CodeForbidden, m["code"])
	// A malformed action is an error answer too.
	wsSend(t, c, map[string]any{"type": "action", "action": map[string]any{"seq": 8, "ops": []any{}}})
	m = wsRecv(t, c)
	require.Equal(t, "error", m["type"])
	require.Equal(t, fsm.CodeMalformed, m["code"])

	// The server timed each part of the way: the actions, the events'
	// fan-out and the frames' writes.
	metrics := n.metrics(t)
	for _, stage := range []string{stageAct, stageFanout, stageWrite} {
		require.Regexp(t, `gsd_play_stage_seconds_count\{stage="`+stage+`"\} [1-9]`, metrics)
	}

	wsSend(t, c, map[string]any{"type": "ping", "t": 12345})
	m = wsRecv(t, c)
	require.Equal(t, "pong", m["type"])
	require.Equal(t, float64(12345), m["t"])
	require.NotZero(t, m["server_time"])

	// bye forgets the session.
	wsSend(t, c, map[string]any{"type": "bye"})
	wsClosed(t, c, websocket.StatusNormalClosure, "bye")
	_, err := n.st.SessionInfo("arena", w["session"].(string))
	require.ErrorIs(t, err, fsm.ErrSessionUnknown)
}

func TestPlayResumeDeliversEverySinceTheLastAckWithoutGapsOrDuplicates(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, n.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	id, token := w["session"].(string), w["resume_token"].(string)
	for i := 1; i <= 5; i++ {
		n.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", i))
	}
	require.Equal(t, seqRange(1, 5), nextEvents(t, c, 5))
	wsSend(t, c, map[string]any{"type": "ack", "seq": 3})
	require.Eventually(t, func() bool {
		s, err := n.st.SessionInfo("arena", id)
		return err == nil && s.Acked == 3
	}, 10*time.Second, 5*time.Millisecond, "the ack is replicated")
	_ = c.CloseNow() // the network drops

	for i := 6; i <= 8; i++ {
		n.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", i))
	}
	// A wrong resume token is denied.
	bad := dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, bad, map[string]any{"type": "resume", "player": "ann", "session": id, "resume_token": "guess"})
	wsClosed(t, bad, 4403, fsm.CodeSessionDenied)

	// The server only knows the ack (3): it sends 4..8.
	c2 := dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, c2, map[string]any{"type": "resume", "player": "ann", "session": id, "resume_token": token})
	m := wsRecv(t, c2)
	require.Equal(t, "welcome", m["type"])
	require.Equal(t, float64(3), m["seq"])
	require.Nil(t, m["resume_token"], "the token is only handed out once")
	require.Equal(t, seqRange(4, 8), nextEvents(t, c2, 5))
	_ = c2.CloseNow()

	// A client that says it holds up to 8 gets only what follows.
	n.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 9))
	c3 := dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, c3, map[string]any{"type": "resume", "player": "ann", "session": id, "resume_token": token, "last_seq": 8})
	m = wsRecv(t, c3)
	require.Equal(t, float64(8), m["seq"])
	require.Equal(t, float64(2), m["epoch"], "two resumes so far")
	require.Equal(t, []uint64{9}, nextEvents(t, c3, 1))
}

func TestPlayANewerConnectionOfTheSessionReplacesTheOlder(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, n.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	c2 := dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, c2, map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"]})
	require.Equal(t, "welcome", wsRecv(t, c2)["type"])
	wsClosed(t, c, 4409, edge.CodeSessionReplaced)
	// A fresh hello of the same player replaces the session itself.
	c3 := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c3, "ann")
	wsClosed(t, c2, 4409, edge.CodeSessionReplaced)
}

func TestPlayClosesMalformedAndOversizedMessagesWithACode(t *testing.T) {
	n := startLeaderWith(t, func(c *nodeConfig) { c.Play.MaxMessageBytes = 1024 })
	n.env.Do("POST", "/v1/worlds", arenaBody)
	url := n.env.WSURL("arena")
	raw := func(c *websocket.Conn, typ websocket.MessageType, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Write(ctx, typ, b)
	}
	cases := map[string]struct {
		after bool // send after a welcome
		typ   websocket.MessageType
		msg   string
		code  websocket.StatusCode
		want  string
	}{
		"not json":            {false, websocket.MessageText, "{nope", 4400, fsm.CodeMalformed},
		"binary":              {false, websocket.MessageBinary, "\x00\x01", 4400, fsm.CodeMalformed},
		"unknown field":       {false, websocket.MessageText, `{"type":"hello","player":"a","x":1}`, 4400, fsm.CodeMalformed},
		"action before hello": {false, websocket.MessageText, `{"type":"action","action":{}}`, 4400, fsm.CodeMalformed},
		"hello without name":  {false, websocket.MessageText, `{"type":"hello"}`, 4400, fsm.CodeMalformed},
		"unknown world":       {false, websocket.MessageText, `{"type":"resume","player":"a","session":"s"}`, 4404, fsm.CodeSessionUnknown},
		"oversized":           {false, websocket.MessageText, `{"type":"hello","player":"` + strings.Repeat("a", 2000) + `"}`, websocket.StatusMessageTooBig, "read limited"},
		"unknown type":        {true, websocket.MessageText, `{"type":"dance"}`, 4400, fsm.CodeMalformed},
		"second hello":        {true, websocket.MessageText, `{"type":"hello","player":"a"}`, 4400, fsm.CodeMalformed},
		"oversized later":     {true, websocket.MessageText, strings.Repeat(" ", 1025), websocket.StatusMessageTooBig, "read limited"},
	}
	for what, tc := range cases {
		t.Run(what, func(t *testing.T) {
			c := dialPlay(t, url)
			if tc.after {
				welcome(t, c, "p-"+strings.ReplaceAll(what, " ", "-"))
			}
			raw(c, tc.typ, []byte(tc.msg))
			wsClosed(t, c, tc.code, tc.want)
		})
	}
	// Without the subprotocol the server says which one it speaks.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	defer c.CloseNow()
	wsClosed(t, c, 4400, fsm.CodeMalformed)
	// An unknown world is refused at the hello.
	u := dialPlay(t, n.env.WSURL("nowhere"))
	wsSend(t, u, map[string]any{"type": "hello", "player": "a"})
	wsClosed(t, u, 4404, fsm.CodeUnknownWorld)
}

func TestPlayRejectsForgedExpiredAndMisaddressedTokens(t *testing.T) {
	n := startLeaderWith(t, fastPlay, withAuth)
	n.env.Do("POST", "/v1/worlds", arenaBody, apitest.AdminHeader(t)...)
	url := n.env.WSURL("arena")
	good := sign(t, jwt.SigningMethodEdDSA, keys.Ed, claims("ann"))
	for what, tok := range map[string]string{
		"missing": "",
		"forged":  sign(t, jwt.SigningMethodHS256, keys.OtherHS, claims("ann")),
		"expired": sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Hour))
		})),
		"wrong audience": sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) {
			c.Audience = jwt.ClaimStrings{"elsewhere"}
		})),
	} {
		t.Run(what, func(t *testing.T) {
			c := dialPlay(t, url)
			wsSend(t, c, map[string]any{"type": "hello", "token": tok})
			wsClosed(t, c, 4401, edge.CodeUnauthorized)
			if tok != "" {
				// In the upgrade's header, refused before the upgrade.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{PlaySubprotocol},
					HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
				require.Error(t, err)
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			}
		})
	}
	// A token for ann cannot play as bob.
	c := dialPlay(t, url)
	wsSend(t, c, map[string]any{"type": "hello", "token": good, "player": "bob"})
	wsClosed(t, c, 4403, edge.CodeForbidden)
	// The header's token is enough; actions are the token's player's.
	c = dialPlay(t, url, "Authorization", "Bearer "+good)
	wsSend(t, c, map[string]any{"type": "hello"})
	w := wsRecv(t, c)
	require.Equal(t, "ann", w["player"])
	// Resuming needs the same player as well as the resume token.
	bobTok := sign(t, jwt.SigningMethodHS256, keys.HS, claims("bob"))
	c2 := dialPlay(t, url)
	wsSend(t, c2, map[string]any{"type": "resume", "token": bobTok, "session": w["session"], "resume_token": w["resume_token"]})
	wsClosed(t, c2, 4403, fsm.CodeSessionDenied)
}

// smallBuffers wraps a listener so that accepted connections have tiny
// kernel send buffers: a client that stops reading backs up at once.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

func TestPlaySlowConsumerIsCutOffWithoutSlowingOthers(t *testing.T) {
	n := startSmallBufferLeader(t, func(c *nodeConfig) {
		c.Play.QueueSize = 4
		c.Play.SlowTimeout = time.Second
	})
	url := n.env.WSURL("arena")

	// The slow player's socket reads nothing and has a tiny receive buffer.
	slow := dialSlowReader(t, url, "slow")
	fast := dialPlay(t, url)
	welcome(t, fast, "fast")

	// Big events: each carries a 3 KiB string.
	const total = 300
	got := make(chan []uint64, 1)
	go func() { // the fast player reads as events come
		var seqs []uint64
		defer func() { got <- seqs }()
		for len(seqs) < total {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, b, err := fast.Read(ctx)
			cancel()
			if err != nil {
				return
			}
			var m wire.Events
			if json.Unmarshal(b, &m) == nil {
				for _, ev := range m.Events {
					seqs = append(seqs, ev.Seq)
				}
			}
		}
	}()
	big := strings.Repeat("x", 3000)
	for i := 1; i <= total; i++ {
		body := fmt.Sprintf(`{"player":"bob","seq":%d,"ops":[{"op":"set","entity":"e%d","field":"blob","value":%q}]}`, i, i, big)
		code, _, b := n.env.Do("POST", "/v1/worlds/arena/actions", body)
		require.Equal(t, http.StatusOK, code, "%s", b)
	}
	require.Equal(t, seqRange(1, total), <-got, "the fast player gets everything")
	// The server cut the slow one off as a slow consumer.
	closes := n.env.srv.playMetrics.closes.WithLabelValues("4429")
	require.Eventually(t, func() bool { return value(closes) == 1 }, 20*time.Second, 5*time.Millisecond)
	// Once it reads, it finds its connection closed: with 4429 when the
	// close frame fitted in its full buffers, else cut (EOF).
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, _, err := slow.Read(ctx)
		cancel()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			require.Equal(t, websocket.StatusCode(4429), ce.Code, "reason: %s", ce.Reason)
			require.True(t, strings.HasPrefix(ce.Reason, edge.CodeSlowConsumer), "reason %q", ce.Reason)
		} else {
			require.NotErrorIs(t, err, context.DeadlineExceeded, "the slow connection stayed open")
		}
		break
	}
}

func TestPlayConnectionsEndWithGoingAwayWhenTheServerCloses(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann")
	go n.env.srv.Close()
	wsClosed(t, c, websocket.StatusGoingAway, edge.CodeUnavailable)
}

func TestPlayConfigValidation(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for what, mod := range map[string]func(*Config){
		"queue":    func(c *Config) { c.QueueSize = 0 },
		"interval": func(c *Config) { c.AckInterval = 0 },
		"idle":     func(c *Config) { c.IdleTimeout = c.PingInterval },
	} {
		c := DefaultConfig()
		mod(&c)
		require.Error(t, c.Validate(), what)
	}
}

// startLeaderWith starts a one-node cluster with config tweaks and waits
// for it to lead.
func startLeaderWith(t *testing.T, opts ...func(*nodeConfig)) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln, opts...)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	return n
}

// startSmallBufferLeader starts a one-node cluster on a listener with small
// socket buffers, its play config tuned by opt, with world arena created.
func startSmallBufferLeader(t *testing.T, opt func(*nodeConfig)) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, smallBuffers{ln}, opt)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	return n
}

// dialSlowReader opens a play connection through a 4 KiB receive buffer, so
// that a client that stops reading fills its socket, and then the
// server's, quickly; it says hello as player.
func dialSlowReader(t *testing.T, url, player string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{PlaySubprotocol}, HTTPClient: smallReadBufferClient()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	c.SetReadLimit(64 << 20)
	welcome(t, c, player)
	return c
}

func smallReadBufferClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10)
		}
		return c, err
	}}}
}
