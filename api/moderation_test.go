package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// Flags are moderator-only: the flagged player and any other player read
// nothing of them through entity reads, the event stream, a play stream
// or the watch stream, while a moderator (view=moderator) and an admin
// read them.
func TestFlagsAreNeverVisibleToPlayers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln, withAuth, withSecret)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	ctx := context.Background()
	rec := moderation.Record{Detector: "reaction", Players: []string{"ann"}, Score: 0.9, Evidence: []moderation.Ref{{World: "arena", Seq: 4}},
		World: "arena", Incarnation: 2, RaisedBy: "node-raiser"} // a name no random token holds ("n1" did, 1 run in ~100)
	rec.ID = moderation.ID(rec.Detector, rec.Players, rec.World, rec.Incarnation)
	created, err := n.env.srv.Moderation().Raise(ctx, rec)
	require.NoError(t, err)
	require.True(t, created)
	world := "/v1/worlds/" + moderation.World

	// A moderator reads the record through the public read with its
	// class; an admin without one.
	mod := roleToken(t, "mia", moderation.Class, false)
	code, m := n.env.DoJSON("GET", world+"/entities/"+rec.ID+"?view="+moderation.Class, "", "Authorization", mod)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, "reaction", m["fields"].(map[string]any)["detector"])
	code, _ = n.env.DoJSON("GET", world+"/entities/"+rec.ID, "", asAdmin(t)...)
	require.Equal(t, http.StatusOK, code)

	for _, p := range []string{"ann", "bob"} {
		tok := roleToken(t, p, "", false)
		for _, id := range []string{rec.ID, moderation.IndexEntity} {
			n.env.RequireError(http.StatusNotFound, fsm.CodeNotFound, "GET", world+"/entities/"+id, "", "Authorization", tok)
			n.env.RequireError(http.StatusNotFound, fsm.CodeNotFound, "GET", world+"/entities/"+id+"?consistency=stale", "", "Authorization", tok)
		}
		// Not even as the moderators' class.
		n.env.RequireError(http.StatusForbidden, "forbidden", "GET", world+"/entities/"+rec.ID+"?view="+moderation.Class, "", "Authorization", tok)
	}

	// Streams: the players' own (refused) action is the first thing they
	// get; nothing of the flag before it.
	stream := func(tok string) func() string {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(sctx, "GET", n.env.TS.URL+world+"/events?from=1", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", tok)
		resp, err := n.env.TS.Client().Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		require.Equal(t, http.StatusOK, resp.StatusCode)
		sc := bufio.NewScanner(resp.Body)
		return func() string {
			require.True(t, sc.Scan(), "the stream ended: %v", sc.Err())
			return sc.Text()
		}
	}
	play := func(tok string) func() string {
		c, _, err := websocket.Dial(ctx, n.env.WSURL(moderation.World), &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolJSON}})
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		hello, _ := json.Marshal(map[string]any{"type": "hello", "token": strings.TrimPrefix(tok, "Bearer ")})
		require.NoError(t, c.Write(ctx, websocket.MessageText, hello))
		return func() string {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, b, err := c.Read(rctx)
			require.NoError(t, err)
			return string(b)
		}
	}
	watch := func(tok string) func() string {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.env.TS.URL, "http")+world+"/watch?mode=events",
			&websocket.DialOptions{Subprotocols: []string{wire.SubprotocolJSON}, HTTPHeader: http.Header{"Authorization": {tok}}})
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		return func() string {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, b, err := c.Read(rctx)
			require.NoError(t, err)
			return string(b)
		}
	}
	for i, p := range []string{"ann", "bob"} {
		tok := roleToken(t, p, "", false)
		lines, msgs, frames := stream(tok), play(tok), watch(tok)
		welcome := msgs()
		require.Contains(t, welcome, `"welcome"`)
		// A player may not write the moderation world: rejected, and
		// its own event comes to it.
		body := fmt.Sprintf(`{"seq":%d,"ops":[{"op":"set","entity":%q,"field":"state","value":"dismissed"}]}`, i+1, rec.ID)
		code, m := n.env.DoJSON("POST", world+"/actions", body, "Authorization", tok)
		require.Equal(t, http.StatusOK, code, "%v", m)
		require.Equal(t, "rejected", m["status"], "%v", m)
		own := uint64(m["seq"].(float64))
		seen := []string{welcome}
		for {
			l := lines()
			seen = append(seen, l)
			var ev struct{ Seq uint64 }
			require.NoError(t, json.Unmarshal([]byte(l), &ev))
			if ev.Seq == own {
				break
			}
		}
		for {
			msg := msgs()
			seen = append(seen, msg)
			if strings.Contains(msg, fmt.Sprintf(`"seq":%d`, own)) {
				break
			}
		}
		secrets := []string{rec.ID, "reaction", "node-raiser", "arena", "0.9"}
		if p != "ann" {
			secrets = append(secrets, `"ann"`) // ann's own messages name her
		}
		var watched []string
		for {
			f := frames()
			watched = append(watched, f)
			if strings.Contains(f, fmt.Sprintf(`"seq":%d`, own)) {
				break
			}
		}
		require.Contains(t, watched[0], `"type":"keyframe"`)
		require.Contains(t, watched[0], `"entities":{}`, "the state as the player sees it: no record")
		seen = append(seen, watched...)
		for _, s := range seen {
			for _, secret := range secrets {
				require.NotContains(t, s, secret, "%s read %s", p, s)
			}
		}
		require.Len(t, seen, 3+len(watched), "%s: the welcome and its own event on each stream, nothing else: %v", p, seen)
	}
	// The record did not change.
	again, err := n.env.srv.Moderation().Raise(ctx, rec)
	require.NoError(t, err)
	require.False(t, again)
	code, m = n.env.DoJSON("GET", "/v1/moderation/flags/"+rec.ID, "", "Authorization", mod)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, "open", m["state"])
}
