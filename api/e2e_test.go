package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// node is a real single-group store behind a real api Server.
type node struct {
	st       *store.Store
	env      *testEnv
	raftAddr string
}

// startNode starts a store (bootstrapping a one-node cluster when asked)
// and serves it over HTTP; both stop in t.Cleanup.
func startNode(t *testing.T, id string, bootstrap bool) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return startNodeOn(t, id, bootstrap, ln)
}

func startLeader(t *testing.T) *node {
	t.Helper()
	n := startNode(t, "n1", true)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	return n
}

func action(player string, seq int, ops string) string {
	return fmt.Sprintf(`{"player":%q,"seq":%d,"ops":[%s]}`, player, seq, ops)
}

func TestEndToEndOnARealSingleNodeStore(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env

	code, m := e.DoJSON("POST", "/v1/worlds", arenaBody)
	require.Equal(t, 201, code, "%v", m)
	e.RequireError(409, "world_exists", "POST", "/v1/worlds", arenaBody)
	code, _ = e.DoJSON("POST", "/v1/worlds", `{"id":"fort","rules":{"strict":true,"fields":{"hp":{"type":"int","policy":"max"}}}}`)
	require.Equal(t, 201, code)

	// Seq 1 applies; its retry is a duplicate with the same seq; a
	// different payload under the same seq is refused.
	incr := action("p1", 1, `{"op":"incr","entity":"e1","field":"score","by":3}`)
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions", incr)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, "applied", m["status"])
	require.Equal(t, float64(1), m["seq"])
	require.Equal(t, map[string]any{"e1": map[string]any{"score": float64(1)}}, m["versions"])
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions", incr)
	require.Equal(t, 200, code)
	require.Equal(t, true, m["duplicate"])
	require.Equal(t, float64(1), m["seq"])
	require.Equal(t, "applied", m["status"])
	e.RequireError(409, "seq_reused", "POST", "/v1/worlds/arena/actions",
		action("p1", 1, `{"op":"incr","entity":"e1","field":"score","by":4}`))

	// OCC: "*" creates, a stale version is a committed conflict (200).
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions",
		action("p1", 2, `{"op":"set","entity":"door","field":"open","value":true,"expect":"*"}`))
	require.Equal(t, 200, code)
	require.Equal(t, "applied", m["status"])
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions",
		action("p2", 1, `{"op":"set","entity":"door","field":"open","value":false,"expect":"1"}`))
	require.Equal(t, 200, code)
	require.Equal(t, "conflict", m["status"], "%v", m)
	require.Equal(t, float64(3), m["seq"])
	ch := m["changes"].([]any)[0].(map[string]any)
	require.Equal(t, true, ch["value"])
	require.Equal(t, float64(2), ch["version"])

	// Rejected before commit: policy, type, strictness, unknown world.
	e.RequireError(400, "policy_violation", "POST", "/v1/worlds/arena/actions",
		action("p1", 3, `{"op":"set","entity":"e1","field":"score","value":1}`))
	e.RequireError(400, "type_mismatch", "POST", "/v1/worlds/arena/actions",
		action("p1", 3, `{"op":"set","entity":"door","field":"open","value":"wide"}`))
	e.RequireError(400, "undeclared_field", "POST", "/v1/worlds/fort/actions",
		action("p1", 1, `{"op":"set","entity":"wall","field":"color","value":"red"}`))
	e.RequireError(404, "unknown_world", "POST", "/v1/worlds/nowhere/actions", incr)

	// A batch: each action answered on its own, all committed.
	var acts []string
	for i := range 20 {
		acts = append(acts, action(fmt.Sprintf("b%d", i), 1, `{"op":"incr","entity":"e1","field":"score","by":1}`))
	}
	acts = append(acts, action("p1", 1, `{"op":"incr","entity":"e1","field":"score","by":9}`))
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+strings.Join(acts, ",")+`]}`)
	require.Equal(t, 200, code)
	res := m["results"].([]any)
	require.Len(t, res, 21)
	for _, r := range res[:20] {
		require.Equal(t, "applied", r.(map[string]any)["status"], "%v", r)
	}
	require.Equal(t, "seq_reused", res[20].(map[string]any)["code"])
	const last = 23 // 3 single actions + 20 batched

	// Reads: linearizable (once the new leader's barrier is applied) and stale.
	var body []byte
	require.Eventually(t, func() bool {
		code, _, body = e.Do("GET", "/v1/worlds/arena/entities/e1?consistency=linearizable", "")
		return code == 200
	}, 10*time.Second, 10*time.Millisecond, "linearizable read: %s", body)
	require.JSONEq(t, fmt.Sprintf(`{"id":"e1","version":%d,"seq":%d,"fields":{"score":23},"versions":{"score":%d}}`, last, last, last), string(body))
	code, _, body = e.Do("GET", "/v1/worlds/arena/entities/door?consistency=stale", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, fmt.Sprintf(`{"id":"door","version":2,"seq":%d,"fields":{"open":true},"versions":{"open":2}}`, last), string(body))
	e.RequireError(404, "not_found", "GET", "/v1/worlds/arena/entities/ghost", "")
	e.RequireError(404, "unknown_world", "GET", "/v1/worlds/nowhere/entities/e1?consistency=stale", "")

	// The feed from seq 1 replays every committed event in order, then
	// follows new ones.
	next, stop := e.Stream("/v1/worlds/arena/events?from=1")
	for seq := 1; seq <= last; seq++ {
		ev := next()
		require.NotNil(t, ev)
		require.Equal(t, float64(seq), ev["seq"])
		require.Equal(t, "arena", ev["world"])
	}
	newest, stopNew := e.Stream("/v1/worlds/arena/events")
	code, _ = e.DoJSON("POST", "/v1/worlds/arena/actions", action("p9", 1, `{"op":"incr","entity":"e2","field":"score","by":1}`))
	require.Equal(t, 200, code)
	ev := next()
	require.Equal(t, float64(last+1), ev["seq"])
	require.Equal(t, "p9", ev["player"])
	ev = newest()
	require.Equal(t, float64(last+1), ev["seq"], "from absent means only new events")
	stop()
	stopNew()
	// A lingering stream delivers the same events, in order.
	lingered, stopLingered := e.Stream("/v1/worlds/arena/events?from=1&linger=20ms")
	for seq := 1; seq <= last+1; seq++ {
		ev := lingered()
		require.NotNil(t, ev)
		require.Equal(t, float64(seq), ev["seq"])
	}
	stopLingered()

	// Hashes: now, at a retained seq, and at one never reached.
	code, m = e.DoJSON("GET", "/v1/worlds/arena/hash", "")
	require.Equal(t, 200, code)
	require.Equal(t, float64(last+1), m["seq"])
	require.Len(t, m["hash"], 16)
	code, m1 := e.DoJSON("GET", "/v1/worlds/arena/hash?seq=1", "")
	require.Equal(t, 200, code)
	require.Equal(t, float64(1), m1["seq"])
	require.NotEqual(t, m["hash"], m1["hash"])
	e.RequireError(404, "seq_unknown", "GET", "/v1/worlds/arena/hash?seq=1000", "")

	code, _, body = e.Do("GET", "/v1/worlds", "")
	require.Equal(t, 200, code)
	var worlds struct {
		Worlds []struct {
			ID      string `json:"id"`
			Seq     uint64 `json:"seq"`
			Players int    `json:"players"`
		} `json:"worlds"`
	}
	require.NoError(t, json.Unmarshal(body, &worlds))
	require.Len(t, worlds.Worlds, 2)
	require.Equal(t, "arena", worlds.Worlds[0].ID)
	require.Equal(t, uint64(last+1), worlds.Worlds[0].Seq)
	require.Equal(t, 23, worlds.Worlds[0].Players)

	code, m = e.DoJSON("GET", "/v1/status", "")
	require.Equal(t, 200, code)
	require.Equal(t, "n1", m["id"])
	require.Equal(t, "leader", m["state"])
	require.Equal(t, "n1", m["leader"])
	require.Positive(t, m["applied_index"])

	code, m = e.DoJSON("POST", "/v1/cluster/snapshot", "")
	require.Equal(t, 200, code, "%v", m)
	require.Positive(t, m["index"])

	code, _ = e.DoJSON("GET", "/readyz", "")
	require.Equal(t, 200, code)
	code, _, body = e.Do("GET", "/metrics", "")
	require.Equal(t, 200, code)
	require.Contains(t, string(body), "gsd_batch_commands")
	require.Contains(t, string(body), `gsd_http_requests_total{code="200",route="POST /v1/worlds/{world}/actions"}`)
}

func TestServerCloseEndsOpenStreams(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	next, _ := e.Stream("/v1/worlds/arena/events")
	require.Eventually(t, func() bool {
		_, _, b := e.Do("GET", "/metrics", "")
		return strings.Contains(string(b), "gsd_http_event_streams 1")
	}, 5*time.Second, 5*time.Millisecond)
	e.srv.Close()
	require.Nil(t, next(), "the stream ends when the server closes")
}

func TestStreamOnAClosedStoreEndsWithAnErrorLine(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	require.NoError(t, n.st.Close(context.Background()))
	next, _ := e.Stream("/v1/worlds/arena/events")
	m := next()
	require.Equal(t, "unavailable", m["code"], "%v", m)
	require.Nil(t, next())
	// Writes on a closed store were never proposed.
	e.RequireError(503, "not_leader", "POST", "/v1/worlds/arena/actions", incrBody)
}

func TestFollowerForwardsToARealLeader(t *testing.T) {
	t.Parallel()
	n1 := startLeader(t)
	n2 := startNode(t, "n2", false)
	// n2 reports what it reads, as gsd's --join does: the version gate
	// refuses a joiner below its members' floor.
	v := n2.st.Versions()
	join := fmt.Sprintf(`{"id":"n2","raft_addr":%q,"http_addr":%q,"versions":{"log":%d,"snapshot":%d,"wire":%d}}`,
		n2.raftAddr, n2.env.TS.Listener.Addr().String(), v.Log, v.Snapshot, v.Wire)
	code, m := n1.env.DoJSON("POST", "/v1/cluster/join", join)
	require.Equal(t, 200, code, "%v", m)
	require.Eventually(t, func() bool {
		_, addr := n2.st.Leader()
		return addr == n1.env.TS.Listener.Addr().String()
	}, 10*time.Second, 10*time.Millisecond, "the follower learns the leader's HTTP address")

	e := n2.env
	code, h, body := e.Do("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code, "%s", body)
	require.Equal(t, "n1", h.Get(edge.HeaderLeader))
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions", action("p1", 1, `{"op":"incr","entity":"e1","field":"score","by":2}`))
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, "applied", m["status"])
	code, _, body = e.Do("GET", "/v1/worlds/arena/entities/e1", "")
	require.Equal(t, 200, code, "%s", body)
	require.Contains(t, string(body), `"score":2`)
	require.Eventually(t, func() bool {
		code, _, _ := e.Do("GET", "/v1/worlds/arena/entities/e1?consistency=stale", "")
		return code == 200
	}, 10*time.Second, 10*time.Millisecond, "the follower applies the write")
	next, _ := e.Stream("/v1/worlds/arena/events?from=1")
	require.Equal(t, float64(1), next()["seq"], "any node serves the feed")

	// Leave a one-node cluster behind, so that closing needs no transfer.
	code, m = e.DoJSON("DELETE", "/v1/cluster/nodes/n2", "")
	require.Equal(t, 200, code, "%v", m)
}
