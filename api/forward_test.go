package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// pair is a leader and a follower whose Leader() points at the leader's
// HTTP address (with or without the scheme, as the node table may hold it).
func newPair(t *testing.T, opts ...func(*Config)) (leader, follower *testEnv) {
	t.Helper()
	lf := apitest.NewFake()
	require.NoError(t, lf.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	leader = newEnv(t, lf, opts...)
	ff := apitest.NewFake()
	ff.LeaderFlag.Store(false)
	ff.ActErr = store.ErrNotLeader
	ff.CreateErr = store.ErrNotLeader
	ff.EntityErr = store.ErrNotLeader
	ff.JoinErr, ff.RemoveErr, ff.TransferErr = store.ErrNotLeader, store.ErrNotLeader, store.ErrNotLeader
	ff.SetLeader("n1", leader.TS.Listener.Addr().String())
	follower = newEnv(t, ff, opts...)
	return leader, follower
}

func TestFollowerForwardsWritesToTheLeader(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)

	code, h, b := follower.Do("POST", "/v1/worlds/arena/actions", incrBody)
	require.Equal(t, 200, code, "%s", b)
	require.Equal(t, "n1", h.Get(edge.HeaderLeader))
	require.Contains(t, h.Get("Content-Type"), "application/json")
	require.Contains(t, string(b), `"status":"applied"`)
	require.Equal(t, 1, leader.Fake.Acts)
	require.Zero(t, follower.Fake.Acts, "a follower must not call Act when it knows it is not the leader")
	require.Equal(t, 1, leader.Fake.Forwarded)

	// The leader's errors come back as they are, and the retry is a duplicate.
	code, m := follower.DoJSON("POST", "/v1/worlds/arena/actions", incrBody)
	require.Equal(t, 200, code)
	require.Equal(t, true, m["duplicate"])
	follower.RequireError(409, "world_exists", "POST", "/v1/worlds", `{"id":"arena"}`)
	code, _ = follower.DoJSON("POST", "/v1/worlds", arenaBody[:len(arenaBody)-1]+`,"x":1}`)
	require.Equal(t, 400, code, "bad input is refused before forwarding")
	code, m = follower.DoJSON("POST", "/v1/worlds", `{"id":"lobby"}`)
	require.Equal(t, 201, code)
	require.Equal(t, "lobby", m["id"])

	code, m = follower.DoJSON("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+incrBody+`]}`)
	require.Equal(t, 200, code)
	require.Len(t, m["results"], 1)

	code, _ = follower.DoJSON("POST", "/v1/cluster/join", `{"id":"n3","raft_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}`)
	require.Equal(t, 200, code)
	require.Equal(t, []fsm.NodeInfo{{ID: "n3", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}}, leader.Fake.Nodes)
	code, _ = follower.DoJSON("DELETE", "/v1/cluster/nodes/n3", "")
	require.Equal(t, 200, code)
	require.Equal(t, []string{"n3"}, leader.Fake.Removed)
	code, _ = follower.DoJSON("POST", "/v1/cluster/transfer-leadership", "")
	require.Equal(t, 200, code)
	require.Equal(t, 1, leader.Fake.Transfers)
	require.Zero(t, follower.Fake.Transfers)
}

func TestFollowerForwardsLinearizableReadsAndServesStaleOnes(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	code, _ := leader.DoJSON("POST", "/v1/worlds/arena/actions", incrBody)
	require.Equal(t, 200, code)

	for _, q := range []string{"", "?consistency=linearizable"} {
		code, h, b := follower.Do("GET", "/v1/worlds/arena/entities/e1"+q, "")
		require.Equal(t, 200, code, "%s", b)
		require.Equal(t, "n1", h.Get(edge.HeaderLeader))
		require.JSONEq(t, `{"id":"e1","version":1,"seq":1,"fields":{"score":1},"versions":{"score":1}}`, string(b))
	}
	require.Equal(t, store.Linearizable, leader.Fake.LastRead)

	// A stale read is the follower's own answer.
	follower.Fake.Set(func(f *apitest.Fake) { f.EntityErr = nil })
	follower.RequireError(404, "unknown_world", "GET", "/v1/worlds/arena/entities/e1?consistency=stale", "")
	require.Equal(t, store.Stale, follower.Fake.LastRead)
	follower.RequireError(400, "malformed", "GET", "/v1/worlds/arena/entities/e1?consistency=sorta", "")
}

func TestForwardedRequestOnNonLeaderIsRefusedNotForwardedAgain(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	follower.RequireError(503, "not_leader", "POST", "/v1/worlds/arena/actions", incrBody, edge.HeaderForwarded, "1")
	follower.RequireError(503, "not_leader", "GET", "/v1/worlds/arena/entities/e1", "", edge.HeaderForwarded, "1")
	require.Zero(t, leader.Fake.Acts)
	require.Zero(t, leader.Fake.Forwarded)

	// Two followers that each think the other leads: one hop, then refused.
	a, b := apitest.NewFake(), apitest.NewFake()
	a.LeaderFlag.Store(false)
	b.LeaderFlag.Store(false)
	ea, eb := newEnv(t, a), newEnv(t, b)
	a.SetLeader("b", eb.TS.URL)
	b.SetLeader("a", ea.TS.URL)
	ea.RequireError(503, "not_leader", "POST", "/v1/worlds/arena/actions", incrBody)
	require.Equal(t, 1, b.Forwarded)
	require.Zero(t, a.Forwarded)
}

func TestNoKnownOrReachableLeaderIsNotLeader(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	f.LeaderFlag.Store(false)
	f.SetLeader("", "")
	e := newEnv(t, f)
	m := e.RequireError(503, "not_leader", "POST", "/v1/worlds/arena/actions", incrBody)
	require.Contains(t, m["error"], "no known leader")

	// A leader whose address refuses connections: nothing was sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	f.SetLeader("n9", dead)
	m = e.RequireError(503, "not_leader", "POST", "/v1/worlds/arena/actions", incrBody)
	require.Contains(t, m["error"], "unreachable")

	f.SetLeader("n9", "bad host\x7f")
	e.RequireError(503, "not_leader", "POST", "/v1/worlds/arena/actions", incrBody)
	require.Zero(t, f.Acts)
}

func TestForwardThatTimesOutIsOutcomeUnknownForWritesOnly(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); slow.Close() })
	f := apitest.NewFake()
	f.LeaderFlag.Store(false)
	f.SetLeader("n1", slow.URL)
	e := newEnv(t, f, func(c *Config) { c.ForwardTimeout = 50 * time.Millisecond })
	e.RequireError(503, "outcome_unknown", "POST", "/v1/worlds/arena/actions", incrBody)
	e.RequireError(503, "not_leader", "GET", "/v1/worlds/arena/entities/e1", "")
}

func TestLeaderThatLosesLeadershipMidRequestForwards(t *testing.T) {
	t.Parallel()
	leader, _ := newPair(t)
	f := apitest.NewFake()
	f.SetLeader("n1", leader.TS.URL)
	// Leads when the request arrives, has lost it by the time it proposes.
	f.ActHook = func(context.Context, *fsm.Action) (*fsm.Event, bool, error) {
		f.LeaderFlag.Store(false)
		return nil, false, store.ErrNotLeader
	}
	f.EntityHook = func(context.Context) error { return store.ErrNotLeader }
	f.CreateErr = store.ErrNotLeader
	e := newEnv(t, f)
	code, _ := e.DoJSON("POST", "/v1/worlds/arena/actions", incrBody)
	require.Equal(t, 200, code)
	require.Equal(t, 1, leader.Fake.Acts)
	code, _ = e.DoJSON("GET", "/v1/worlds/arena/entities/e1", "")
	require.Equal(t, 200, code)
	code, _ = e.DoJSON("POST", "/v1/worlds", `{"id":"lobby"}`)
	require.Equal(t, 201, code)
}

func TestLeaderNotYetReadyAnswersNotLeader(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake() // IsLeader stays true: forwarding would reach itself
	f.SetLeader("self", "127.0.0.1:1")
	f.ActErr = store.ErrNotLeader
	f.EntityErr = store.ErrNotLeader
	f.JoinErr = store.ErrNotLeader
	e := newEnv(t, f)
	e.RequireError(503, "not_leader", "POST", "/v1/worlds/arena/actions", incrBody)
	e.RequireError(503, "not_leader", "GET", "/v1/worlds/arena/entities/e1", "")
	e.RequireError(503, "not_leader", "POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"x:1"}`)
	require.Zero(t, f.Forwarded)
}

func TestLeaderURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "http://10.0.0.1:8080", edge.LeaderURL("10.0.0.1:8080"))
	require.Equal(t, "https://gsd.example:443", edge.LeaderURL("https://gsd.example:443/"))
	require.Equal(t, "http://h:1", edge.LeaderURL("http://h:1"))
}
