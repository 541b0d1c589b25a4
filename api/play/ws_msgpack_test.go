package play

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// dialProtocols opens a play connection offering protocols in order.
func dialProtocols(t *testing.T, url string, protocols ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protocols})
	require.NoError(t, err)
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func mpSend(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, err := wire.MarshalMsgpack(v)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageBinary, b))
}

// mpDecode decodes a msgpack message as a plain reader in another
// language would: maps, ints (int64 or uint64), float64, strings, bools.
func mpDecode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.UseLooseInterfaceDecoding(true)
	var m map[string]any
	require.NoError(t, dec.Decode(&m), "message %x", b)
	return m
}

// mpRecv reads the next message (a binary one), skipping server pings.
func mpRecv(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		typ, b, err := c.Read(ctx)
		cancel()
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, typ)
		m := mpDecode(t, b)
		if m["type"] != "ping" {
			return m
		}
	}
}

// toU64 returns a loosely decoded msgpack int as a uint64.
func toU64(t *testing.T, v any) uint64 {
	t.Helper()
	switch n := v.(type) {
	case uint64:
		return n
	case int64:
		require.GreaterOrEqual(t, n, int64(0))
		return uint64(n)
	}
	t.Fatalf("not an int: %#v", v)
	return 0
}

// mpCollect reads until it has one message of each of types (they may
// come in any order: results and events are independent streams).
func mpCollect(t *testing.T, c *websocket.Conn, types ...string) map[string]map[string]any {
	t.Helper()
	got := map[string]map[string]any{}
	for len(got) < len(types) {
		m := mpRecv(t, c)
		for _, typ := range types {
			if m["type"] == typ && got[typ] == nil {
				got[typ] = m
			}
		}
	}
	return got
}

// mpRecvType reads until a message of type typ.
func mpRecvType(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		if m := mpRecv(t, c); m["type"] == typ {
			return m
		}
	}
}

const typedArena = `{"id":"arena","rules":{"fields":{"score":{"type":"int","policy":"counter"},"x":{"type":"float","policy":"authoritative"},"name":{"type":"string","policy":"authoritative"},"alive":{"type":"bool","policy":"authoritative"}}}}`

func TestPlayMsgpackRoundTripKeepsValueTypes(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", typedArena)
	url := n.env.WSURL("arena")

	c := dialProtocols(t, url, MsgpackSubprotocol)
	require.Equal(t, MsgpackSubprotocol, c.Subprotocol())
	mpSend(t, c, map[string]any{"type": "hello", "player": "ann"})
	w := mpRecv(t, c)
	require.Equal(t, "welcome", w["type"])
	require.Equal(t, "ann", w["player"])
	require.Equal(t, "arena", w["world"])
	require.EqualValues(t, 0, w["seq"])
	id, token := w["session"].(string), w["resume_token"].(string)
	require.NotEmpty(t, id)
	require.NotEmpty(t, token)

	// A critical action: its result, then the same event in an events frame.
	mpSend(t, c, map[string]any{"type": "action", "action": map[string]any{"seq": uint64(1), "ops": []any{
		map[string]any{"op": "set", "entity": "e1", "field": "x", "value": 2.0},
		map[string]any{"op": "set", "entity": "e1", "field": "name", "value": "zed"},
		map[string]any{"op": "set", "entity": "e1", "field": "alive", "value": true},
		map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": 3},
	}}})
	both := mpCollect(t, c, "result", "events")
	res, frame := both["result"], both["events"]
	require.EqualValues(t, 1, res["seq"])
	ev := res["event"].(map[string]any)
	require.Equal(t, "applied", ev["status"])
	values := map[string]any{}
	for _, ch := range ev["changes"].([]any) {
		ch := ch.(map[string]any)
		values[ch["field"].(string)] = ch["value"]
	}
	require.Equal(t, map[string]any{"x": 2.0, "name": "zed", "alive": true, "score": int64(3)}, values,
		"each value keeps its msgpack type: an integral float stays a float")
	require.EqualValues(t, 1, frame["from"])
	require.EqualValues(t, 1, frame["seq"])
	require.Len(t, frame["events"], 1)
	require.Equal(t, ev["seq"], frame["events"].([]any)[0].(map[string]any)["seq"])

	// A bulk action coalesces into a delta frame.
	mpSend(t, c, map[string]any{"type": "action", "action": map[string]any{"seq": uint64(2), "priority": "bulk", "ops": []any{
		map[string]any{"op": "set", "entity": "e1", "field": "x", "value": 2.5}}}})
	both = mpCollect(t, c, "result", "delta")
	d := both["delta"]
	require.EqualValues(t, 2, both["result"]["seq"])
	require.EqualValues(t, 2, d["seq"])
	require.NotNil(t, d["tick"])
	f := d["entities"].(map[string]any)["e1"].(map[string]any)["fields"].(map[string]any)["x"].(map[string]any)
	require.Equal(t, 2.5, f["value"])
	require.EqualValues(t, 2, f["version"])

	// Errors answer in msgpack too.
	mpSend(t, c, map[string]any{"type": "action", "action": map[string]any{"seq": uint64(3), "ops": []any{
		map[string]any{"op": "set", "entity": "e1", "field": "x", "value": "not a float"}}}})
	e := mpRecvType(t, c, "error")
	require.EqualValues(t, 3, e["seq"])
	require.NotEmpty(t, e["code"])

	mpSend(t, c, map[string]any{"type": "ping", "t": int64(12345)})
	p := mpRecvType(t, c, "pong")
	require.EqualValues(t, 12345, p["t"])
	require.NotZero(t, p["server_time"])

	// Ack, drop, resume: the welcome says where, and later events follow.
	mpSend(t, c, map[string]any{"type": "ack", "seq": uint64(2)})
	require.Eventually(t, func() bool {
		s, err := n.st.SessionInfo("arena", id)
		return err == nil && s.Acked == 2
	}, 10*time.Second, 5*time.Millisecond)
	_ = c.CloseNow()
	n.env.Do("POST", "/v1/worlds/arena/actions", `{"player":"bob","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`)
	c2 := dialProtocols(t, url, MsgpackSubprotocol)
	mpSend(t, c2, map[string]any{"type": "resume", "player": "ann", "session": id, "resume_token": token})
	w2 := mpRecv(t, c2)
	require.Equal(t, "welcome", w2["type"])
	require.EqualValues(t, 2, w2["seq"])
	require.EqualValues(t, 1, w2["epoch"])
	fr := mpRecvType(t, c2, "events")
	got := fr["events"].([]any)[0].(map[string]any)
	require.EqualValues(t, 3, got["seq"])
	require.Equal(t, "bob", got["player"])

	mpSend(t, c2, map[string]any{"type": "bye"})
	wsClosed(t, c2, websocket.StatusNormalClosure, "bye")
}

func TestPlayMsgpackClosesMalformedFramesWith4400(t *testing.T) {
	n := startLeaderWith(t, func(c *nodeConfig) { c.Play.MaxMessageBytes = 1024 })
	n.env.Do("POST", "/v1/worlds", arenaBody)
	url := n.env.WSURL("arena")
	mp := func(v any) []byte {
		b, err := wire.MarshalMsgpack(v)
		require.NoError(t, err)
		return b
	}
	cases := map[string]struct {
		after bool
		typ   websocket.MessageType
		msg   []byte
		code  websocket.StatusCode
		want  string
	}{
		"text on binary":   {false, websocket.MessageText, []byte(`{"type":"hello","player":"a"}`), 4400, fsm.CodeMalformed},
		"not msgpack":      {false, websocket.MessageBinary, []byte{0xc1}, 4400, fsm.CodeMalformed},
		"not a map":        {false, websocket.MessageBinary, mp([]any{"hello"}), 4400, fsm.CodeMalformed},
		"unknown field":    {false, websocket.MessageBinary, mp(map[string]any{"type": "hello", "player": "a", "x": 1}), 4400, fsm.CodeMalformed},
		"wrong type":       {false, websocket.MessageBinary, mp(map[string]any{"type": "hello", "player": 7}), 4400, fsm.CodeMalformed},
		"float for a seq":  {false, websocket.MessageBinary, mp(map[string]any{"type": "resume", "player": "a", "session": "s", "last_seq": 1.5}), 4400, fsm.CodeMalformed},
		"trailing bytes":   {false, websocket.MessageBinary, append(mp(map[string]any{"type": "hello", "player": "a"}), 0x00), 4400, fsm.CodeMalformed},
		"bin value":        {false, websocket.MessageBinary, mp(map[string]any{"type": "hello", "player": []byte("a")}), 4400, fsm.CodeMalformed},
		"int key":          {false, websocket.MessageBinary, mp(map[int]any{1: "hello"}), 4400, fsm.CodeMalformed},
		"oversized":        {false, websocket.MessageBinary, mp(map[string]any{"type": "hello", "player": strings.Repeat("a", 2000)}), websocket.StatusMessageTooBig, "read limited"},
		"text later":       {true, websocket.MessageText, []byte(`{"type":"ping","t":1}`), 4400, fsm.CodeMalformed},
		"unknown type":     {true, websocket.MessageBinary, mp(map[string]any{"type": "dance"}), 4400, fsm.CodeMalformed},
		"bad action later": {true, websocket.MessageBinary, mp(map[string]any{"type": "action", "action": map[string]any{"seq": 1, "ops": []any{}}, "extra": true}), 4400, fsm.CodeMalformed},
	}
	for what, tc := range cases {
		t.Run(what, func(t *testing.T) {
			c := dialProtocols(t, url, MsgpackSubprotocol)
			if tc.after {
				mpSend(t, c, map[string]any{"type": "hello", "player": "p-" + strings.ReplaceAll(what, " ", "-")})
				require.Equal(t, "welcome", mpRecv(t, c)["type"])
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = c.Write(ctx, tc.typ, tc.msg)
			wsClosed(t, c, tc.code, tc.want)
		})
	}
}

func TestPlaySubprotocolFollowsTheClientsOrder(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	url := n.env.WSURL("arena")
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{MsgpackSubprotocol, PlaySubprotocol}, MsgpackSubprotocol},
		{[]string{PlaySubprotocol, MsgpackSubprotocol}, PlaySubprotocol},
		{[]string{"gsd.cbor.v9", MsgpackSubprotocol}, MsgpackSubprotocol},
		{[]string{PlaySubprotocol}, PlaySubprotocol},
	} {
		c := dialProtocols(t, url, tc.offer...)
		require.Equal(t, tc.want, c.Subprotocol(), "offer %v", tc.offer)
		_ = c.CloseNow()
	}
	// One header with both, comma-separated, counts the same.
	r, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	r.Header.Set("Sec-WebSocket-Protocol", "x, "+MsgpackSubprotocol+", "+PlaySubprotocol)
	require.Equal(t, []string{MsgpackSubprotocol}, playSubprotocols(r))
	r.Header.Set("Sec-WebSocket-Protocol", "x")
	require.Equal(t, []string{PlaySubprotocol, MsgpackSubprotocol}, playSubprotocols(r))
}

func TestPlayServesBothSubprotocolsAtOnce(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	url := n.env.WSURL("arena")
	j := dialPlay(t, url)
	welcome(t, j, "ann")
	m1 := dialProtocols(t, url, MsgpackSubprotocol)
	mpSend(t, m1, map[string]any{"type": "hello", "player": "bob"})
	require.Equal(t, "welcome", mpRecv(t, m1)["type"])
	m2 := dialProtocols(t, url, MsgpackSubprotocol)
	mpSend(t, m2, map[string]any{"type": "hello", "player": "cid"})
	require.Equal(t, "welcome", mpRecv(t, m2)["type"])
	require.Equal(t, 1, n.env.srv.hubCount(), "one hub serves both codecs")

	for i := 1; i <= 3; i++ {
		n.env.Do("POST", "/v1/worlds/arena/actions", actBody("dan", i))
	}
	require.Equal(t, seqRange(1, 3), nextEvents(t, j, 3))
	for _, c := range []*websocket.Conn{m1, m2} {
		var seqs []uint64
		for len(seqs) < 3 {
			for _, ev := range mpRecvType(t, c, "events")["events"].([]any) {
				ev := ev.(map[string]any)
				require.Equal(t, "dan", ev["player"])
				require.IsType(t, int64(0), ev["changes"].([]any)[0].(map[string]any)["value"], "the counter's value, an int")
				seqs = append(seqs, toU64(t, ev["seq"]))
			}
		}
		require.Equal(t, seqRange(1, 3), seqs)
	}
	// The JSON connection still refuses binary, and a msgpack one text.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, j.Write(ctx, websocket.MessageBinary, []byte{0x80}))
	wsClosed(t, j, 4400, fsm.CodeMalformed)
	require.NoError(t, m1.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","t":1}`)))
	wsClosed(t, m1, 4400, fsm.CodeMalformed)
}
