package play

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// startPlayCluster starts n real nodes (n1 leads) with config tweaks and
// waits until every follower knows the leader's HTTP address.
func startPlayCluster(t *testing.T, n int, opts ...func(*nodeConfig)) []*node {
	t.Helper()
	nodes := []*node{startLeaderWith(t, opts...)}
	for i := 2; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		f := startNodeOn(t, fmt.Sprintf("n%d", i), false, ln, opts...)
		// The join reports the versions the node reads, as gsd's does: with
		// auth on, actions carry a role (log 3), which the leader proposes
		// only once every voter reads it.
		v := fsm.Supported()
		join := fmt.Sprintf(`{"id":"n%d","raft_addr":%q,"http_addr":%q,"versions":{"log":%d,"snapshot":%d,"wire":%d}}`,
			i, f.raftAddr, f.env.TS.Listener.Addr().String(), v.Log, v.Snapshot, v.Wire)
		// Right after a join the leader may step down for a moment (its
		// new quorum includes a node still starting): join again.
		var m map[string]any
		require.Eventually(t, func() bool {
			var code int
			// The secret, or with auth on and no secret an admin token.
			code, m = nodes[0].env.DoJSON("POST", "/v1/cluster/join", join, append(apitest.AdminHeader(t),
				edge.HeaderClusterKey, string(nodes[0].env.srv.Config().ClusterSecret))...)
			return code == 200
		}, 10*time.Second, 20*time.Millisecond, "join n%d: %v", i, m)
		nodes = append(nodes, f)
	}
	for _, f := range nodes[1:] {
		require.Eventually(t, func() bool {
			_, addr := f.st.Leader()
			return addr == nodes[0].env.TS.Listener.Addr().String()
		}, 10*time.Second, 10*time.Millisecond, "the follower learns the leader's HTTP address")
	}
	return nodes
}

// kill stops a node's edge and store, as a crash would for its clients.
func (n *node) kill(t *testing.T) {
	t.Helper()
	n.env.srv.Close()
	n.env.TS.CloseClientConnections()
	n.env.TS.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, n.st.Close(ctx))
}

func TestPlayOnAFollowerActsAndReceivesEvents(t *testing.T) {
	nodes := startPlayCluster(t, 2, fastPlay)
	l, f := nodes[0], nodes[1]
	l.env.Do("POST", "/v1/worlds", arenaBody)
	l.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 1))

	c := dialPlay(t, f.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	require.Equal(t, float64(1), w["seq"])
	// Another player's action through the leader reaches the follower's player.
	l.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 2))
	require.Equal(t, []uint64{2}, nextEvents(t, c, 1))
	// The player's own action is forwarded and answered.
	wsSend(t, c, map[string]any{"type": "action", "action": map[string]any{
		"seq": 1, "ops": []any{map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": 5}}}})
	var sawResult, sawEvent bool
	for !sawResult || !sawEvent {
		m := wsRecv(t, c)
		switch m["type"] {
		case "result":
			ev := m["event"].(map[string]any)
			require.Equal(t, "ann", ev["player"])
			require.Equal(t, float64(3), ev["seq"])
			sawResult = true
		case "events":
			require.Equal(t, float64(3), m["events"].([]any)[0].(map[string]any)["seq"])
			sawEvent = true
		}
	}
	// An error of the leader comes back with its code.
	wsSend(t, c, map[string]any{"type": "action", "action": map[string]any{
		"seq": 1, "ops": []any{map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": 6}}}})
	m := wsRecv(t, c)
	require.Equal(t, "error", m["type"])
	require.Equal(t, fsm.CodeSeqReused, m["code"])
	require.Equal(t, float64(http.StatusConflict), m["status"])

	// Acks are replicated through the leader; presence names the node.
	wsSend(t, c, map[string]any{"type": "ack", "seq": 3})
	id := w["session"].(string)
	require.Eventually(t, func() bool {
		s, err := l.st.SessionInfo("arena", id)
		return err == nil && s.Acked == 3
	}, 10*time.Second, 5*time.Millisecond)
	for _, n := range nodes {
		code, p := n.env.DoJSON("GET", "/v1/worlds/arena/sessions", "")
		require.Equal(t, 200, code)
		s := p["sessions"].([]any)[0].(map[string]any)
		require.Equal(t, "ann", s["player"])
		require.Equal(t, "n2", s["node"])
		require.Nil(t, s["data"])
	}
	// A wrong resume token on the follower is the leader's refusal.
	bad := dialPlay(t, f.env.WSURL("arena"))
	wsSend(t, bad, map[string]any{"type": "resume", "player": "ann", "session": id, "resume_token": "guess"})
	wsClosed(t, bad, 4403, fsm.CodeSessionDenied)
	// bye closes the session on the leader.
	wsSend(t, c, map[string]any{"type": "bye"})
	wsClosed(t, c, websocket.StatusNormalClosure, "bye")
	require.Eventually(t, func() bool {
		_, err := f.st.SessionInfo("arena", id)
		return err != nil
	}, 10*time.Second, 5*time.Millisecond)
}

func TestPlayClientOnFollowersKeepsPlayingWhenTheLeaderGoesWithoutGapsOrDuplicates(t *testing.T) {
	nodes := startPlayCluster(t, 3, fastPlay)
	nodes[0].env.Do("POST", "/v1/worlds", arenaBody)
	cl := client.New([]string{nodes[1].env.TS.URL, nodes[2].env.TS.URL}, client.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := cl.Play(ctx, "arena", client.PlayOptions{Player: "ann", AckInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()

	const total = 60
	got := make(chan []wire.Event, 1)
	go func() {
		var evs []wire.Event
		defer func() { got <- evs }()
		for len(evs) < total {
			ev, err := p.Next(ctx)
			if err != nil {
				return
			}
			evs = append(evs, ev)
		}
	}()
	act := func(seq int) {
		for {
			_, err := p.Act(ctx, client.ActionRequest{Seq: uint64(seq), Ops: []fsm.Op{client.Incr("e1", "score", 1)}})
			if err == nil {
				return
			}
			require.NoError(t, ctx.Err(), "action %d: %v", seq, err)
			time.Sleep(20 * time.Millisecond) // an unknown outcome: the same seq again
		}
	}
	for seq := 1; seq <= total; seq++ {
		switch seq {
		case 20:
			nodes[0].kill(t) // the leader goes mid-play
		case 40:
			p.Drop() // and the connection too: resume, possibly on the other node
		}
		act(seq)
	}
	evs := <-got
	require.Len(t, evs, total)
	seen := map[uint64]bool{}
	for i, ev := range evs {
		require.Equal(t, uint64(i+1), ev.Seq, "consecutive world seqs")
		require.False(t, seen[ev.ClientSeq], "client seq %d applied twice", ev.ClientSeq)
		seen[ev.ClientSeq] = true
	}
	_, resumes := p.Session()
	require.GreaterOrEqual(t, resumes, 1)
}

func TestPlayResumeOnAnotherNodeClosesTheOlderConnection(t *testing.T) {
	nodes := startPlayCluster(t, 3, fastPlay)
	nodes[0].env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, nodes[1].env.WSURL("arena"))
	w := welcome(t, c, "ann")
	c2 := dialPlay(t, nodes[2].env.WSURL("arena"))
	wsSend(t, c2, map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"]})
	m := wsRecv(t, c2)
	require.Equal(t, "welcome", m["type"])
	require.Equal(t, float64(1), m["epoch"])
	wsClosed(t, c, 4409, edge.CodeSessionReplaced)
	// A hello on the leader replaces the session itself.
	c3 := dialPlay(t, nodes[0].env.WSURL("arena"))
	welcome(t, c3, "ann")
	wsClosed(t, c2, 4409, edge.CodeSessionReplaced)
}

func TestPlayKickAndBanCloseConnectionsOnAnyNode(t *testing.T) {
	nodes := startPlayCluster(t, 2, fastPlay)
	l, f := nodes[0], nodes[1]
	l.env.Do("POST", "/v1/worlds", arenaBody)

	// Kick, asked of the follower (forwarded), of a connection on the leader.
	c := dialPlay(t, l.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	id := w["session"].(string)
	code, m := f.env.DoJSON("POST", "/v1/worlds/arena/sessions/"+id+"/kick", `{"reason":"spamming chat"}`)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, "spamming chat", m["kicked"])
	wsClosed(t, c, 4403, fsm.CodeSessionKicked)
	// The node that held the connection closes the kicked session.
	require.Eventually(t, func() bool {
		_, p := f.env.DoJSON("GET", "/v1/worlds/arena/sessions", "")
		return len(p["sessions"].([]any)) == 0
	}, 10*time.Second, 5*time.Millisecond)
	c2 := dialPlay(t, f.env.WSURL("arena"))
	wsSend(t, c2, map[string]any{"type": "resume", "player": "ann", "session": id, "resume_token": w["resume_token"]})
	wsClosed(t, c2, 4404, fsm.CodeSessionUnknown)
	f.env.RequireError(404, fsm.CodeSessionUnknown, "POST", "/v1/worlds/arena/sessions/nope/kick", "")
	f.env.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/sessions/"+id+"/kick", `{"player":"ann"}`)
	f.env.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/sessions/"+id+"/kick", `{"reason":`)

	// Ban: the connection (on the follower) closes, hello and actions are refused.
	c3 := dialPlay(t, f.env.WSURL("arena"))
	welcome(t, c3, "ann")
	code, m = f.env.DoJSON("POST", "/v1/worlds/arena/bans", `{"player":"ann","reason":"aimbot"}`)
	require.Equal(t, 200, code, "%v", m)
	wsClosed(t, c3, 4403, fsm.CodeSessionKicked)
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			_, ok := n.st.Banned("arena", "ann")
			return ok
		}, 10*time.Second, 5*time.Millisecond)
		c := dialPlay(t, n.env.WSURL("arena"))
		wsSend(t, c, map[string]any{"type": "hello", "player": "ann"})
		wsClosed(t, c, 4403, fsm.CodeBanned)
		n.env.With(t).RequireError(403, fsm.CodeBanned, "POST", "/v1/worlds/arena/actions", actBody("ann", 1))
		code, m := n.env.DoJSON("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+actBody("ann", 1)+`]}`)
		require.Equal(t, 200, code)
		require.Equal(t, fsm.CodeBanned, m["results"].([]any)[0].(map[string]any)["code"])
		code, m = n.env.DoJSON("GET", "/v1/worlds/arena/bans", "")
		require.Equal(t, 200, code)
		require.Equal(t, []any{map[string]any{"player": "ann", "reason": "aimbot"}}, m["bans"])
	}
	f.env.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/bans", `{"player":"bob"}`)
	f.env.RequireError(404, fsm.CodeUnknownWorld, "GET", "/v1/worlds/nowhere/bans", "")
	f.env.RequireError(404, fsm.CodeUnknownWorld, "GET", "/v1/worlds/nowhere/sessions", "")

	code, _ = f.env.DoJSON("DELETE", "/v1/worlds/arena/bans/ann", "")
	require.Equal(t, 200, code)
	require.Eventually(t, func() bool {
		_, ok := f.st.Banned("arena", "ann")
		return !ok
	}, 10*time.Second, 5*time.Millisecond)
	welcome(t, dialPlay(t, f.env.WSURL("arena")), "ann")
}

func TestPlayerDataExportsAndImportsIdempotentlyThroughAnyNode(t *testing.T) {
	nodes := startPlayCluster(t, 2, fastPlay)
	l, f := nodes[0], nodes[1]
	l.env.Do("POST", "/v1/worlds", arenaBody)
	file := `{"format":"gsd.players.v1","world":"old-arena","players":[
		{"player":"bob","data":{"gold":12,"title":"knight"}},
		{"player":"ann","data":{"gold":40,"vip":true}}]}`
	for range 2 {
		code, m := f.env.DoJSON("POST", "/v1/worlds/arena/sessions:import", file)
		require.Equal(t, 200, code, "%v", m)
		require.Equal(t, float64(2), m["imported"])
	}
	want := `{"format":"gsd.players.v1","world":"arena","players":[
		{"player":"ann","data":{"gold":40,"vip":true}},
		{"player":"bob","data":{"gold":12,"title":"knight"}}]}`
	var versions []any
	for _, n := range nodes {
		code, _, b := n.env.Do("GET", "/v1/worlds/arena/sessions:export", "")
		require.Equal(t, 200, code, "%s", b)
		// Each player's data_version (the world's, not the file's) is
		// the same through any node; the rest is the file imported.
		var got map[string]any
		require.NoError(t, json.Unmarshal(b, &got))
		var vs []any
		for _, p := range got["players"].([]any) {
			vs = append(vs, p.(map[string]any)["data_version"])
			require.Positive(t, p.(map[string]any)["data_version"])
			delete(p.(map[string]any), "data_version")
		}
		if versions != nil {
			require.Equal(t, versions, vs)
		}
		versions = vs
		b, err := json.Marshal(got)
		require.NoError(t, err)
		require.JSONEq(t, want, string(b))
	}
	// A player who connects finds their data in the welcome.
	c := dialPlay(t, f.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	require.Equal(t, map[string]any{"gold": float64(40), "vip": true}, w["data"])

	for what, body := range map[string]string{
		"bad json":       `{"players":`,
		"unknown format": `{"format":"csv","players":[]}`,
		"twice":          `{"players":[{"player":"a","data":{}},{"player":"a","data":{}}]}`,
		"no name":        `{"players":[{"player":"","data":{}}]}`,
	} {
		f.env.With(t).RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/sessions:import", body)
		_ = what
	}
	l.env.RequireError(404, fsm.CodeUnknownWorld, "POST", "/v1/worlds/nowhere/sessions:import", file)
	l.env.RequireError(404, fsm.CodeUnknownWorld, "GET", "/v1/worlds/nowhere/sessions:export", "")
	l.env.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/sessions:import",
		`{"players":[{"player":"a","data":{"":1}}]}`)
}

func TestClusterSecretGuardsAdminAndInternalEndpointsAndForwardingStillWorks(t *testing.T) {
	// startPlayCluster joins with the secret: a join without it fails below.
	nodes := startPlayCluster(t, 2, withSecret, fastPlay)
	l, f := nodes[0], nodes[1]
	key := []string{edge.HeaderClusterKey, testSecret}
	l.env.Do("POST", "/v1/worlds", arenaBody) // public
	code, _, _ := f.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 1))
	require.Equal(t, 200, code, "public routes stay open, forwarded with the secret")

	admin := []struct{ method, path, body string }{
		{"POST", "/v1/cluster/join", `{"id":"n9","raft_addr":"127.0.0.1:1"}`},
		{"DELETE", "/v1/cluster/nodes/n9", ""},
		{"POST", "/v1/cluster/transfer-leadership", ""},
		{"POST", "/v1/cluster/snapshot", ""},
		{"POST", "/v1/worlds/arena/sessions/s1/kick", ""},
		{"GET", "/v1/worlds/arena/sessions:export", ""},
		{"POST", "/v1/worlds/arena/sessions:import", `{"players":[]}`},
		{"POST", "/v1/worlds/arena/bans", `{"player":"bob"}`},
		{"DELETE", "/v1/worlds/arena/bans/bob", ""},
		{"POST", "/v1/node/drain", ""},
		{"DELETE", "/v1/node/drain", ""},
	}
	for _, n := range nodes {
		for _, r := range admin {
			m := n.env.With(t).RequireError(401, edge.CodeUnauthorized, r.method, r.path, r.body)
			require.Contains(t, m["error"], edge.HeaderClusterKey, "%s %s", r.method, r.path)
			m = n.env.With(t).RequireError(401, edge.CodeUnauthorized, r.method, r.path, r.body, edge.HeaderClusterKey, testSecret+"x")
			require.Contains(t, m["error"], "wrong cluster secret")
			// No auth configured: a Bearer token cannot be an admin token.
			n.env.With(t).RequireError(401, edge.CodeUnauthorized, r.method, r.path, r.body, "Authorization", "Bearer x.y.z")
		}
		// The internal endpoint, even with the forwarding mark.
		m := n.env.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/sessions/ack", `{"id":"s1","seq":1}`, edge.HeaderForwarded, "1")
		require.Contains(t, m["error"], "internal endpoint")
		// A forged forwarding mark on a public route.
		n.env.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/actions", actBody("bob", 2), edge.HeaderForwarded, "1")
	}

	// With the secret: kick and ban through the follower (forwarded).
	c := dialPlay(t, l.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	code, m := f.env.DoJSON("POST", "/v1/worlds/arena/sessions/"+w["session"].(string)+"/kick", `{"reason":"spam"}`, key...)
	require.Equal(t, 200, code, "%v", m)
	wsClosed(t, c, 4403, fsm.CodeSessionKicked)
	code, m = f.env.DoJSON("POST", "/v1/worlds/arena/bans", `{"player":"eve","reason":"x"}`, key...)
	require.Equal(t, 200, code, "%v", m)
	code, m = f.env.DoJSON("DELETE", "/v1/worlds/arena/bans/eve", "", key...)
	require.Equal(t, 200, code, "%v", m)
	code, _, b := f.env.Do("GET", "/v1/worlds/arena/sessions:export", "", key...)
	require.Equal(t, 200, code, "%s", b)

	// Play on the follower: its session commands reach the leader's
	// internal endpoint with the secret.
	c2 := dialPlay(t, f.env.WSURL("arena"))
	welcome(t, c2, "bob")
	wsSend(t, c2, map[string]any{"type": "action", "action": map[string]any{
		"seq": 5, "ops": []any{map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": 1}}}})
	for {
		m := wsRecv(t, c2)
		if m["type"] == "result" {
			break
		}
		require.Equal(t, "events", m["type"], "%v", m)
	}
}
