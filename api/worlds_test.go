package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func listWorlds(t *testing.T, e *testEnv, query string) wire.Worlds {
	t.Helper()
	code, _, b := e.Do("GET", "/v1/worlds"+query, "")
	require.Equal(t, 200, code, "%s", b)
	var out wire.Worlds
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func ids(ws wire.Worlds) []string {
	out := []string{}
	for _, w := range ws.Worlds {
		out = append(out, w.ID)
	}
	return out
}

// TestWorldListingFiltersByModeLabelsCapacityAndPlayersAndPages: what a
// matchmaker asks of GET /v1/worlds.
func TestWorldListingFiltersByModeLabelsCapacityAndPlayersAndPages(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env
	for _, body := range []string{
		`{"id":"a1","rules":{"mode":"duel","capacity":2,"labels":{"map":"dust","region":"eu"}}}`,
		`{"id":"a2","rules":{"mode":"duel","capacity":1,"labels":{"map":"mirage"}}}`,
		`{"id":"b1","rules":{"mode":"ffa","labels":{"map":"dust"}}}`,
		`{"id":"c1","rules":{}}`,
	} {
		code, m := e.DoJSON("POST", "/v1/worlds", body)
		require.Equal(t, 201, code, "%v", m)
	}
	// A session in a2 fills it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.st.Session(ctx, fsm.CmdSessionOpen, &fsm.SessionCmd{World: "a2", ID: "s1", Player: "ann", TokenHash: sha256.Sum256([]byte("t"))})
	require.NoError(t, err)

	all := listWorlds(t, e, "")
	require.Equal(t, []string{"a1", "a2", "b1", "c1"}, ids(all))
	require.Empty(t, all.Next)
	require.Equal(t, "duel", all.Worlds[0].Rules.Mode)
	require.Equal(t, 2, all.Worlds[0].Rules.Capacity)
	require.Equal(t, map[string]string{"map": "dust", "region": "eu"}, all.Worlds[0].Rules.Labels)
	require.NotZero(t, all.Worlds[0].Incarnation)

	require.Equal(t, []string{"a1", "a2"}, ids(listWorlds(t, e, "?mode=duel")))
	require.Equal(t, []string{"a1", "b1"}, ids(listWorlds(t, e, "?label=map:dust")))
	require.Equal(t, []string{"a1"}, ids(listWorlds(t, e, "?label=map:dust&label=region:eu")))
	require.Equal(t, []string{"a1"}, ids(listWorlds(t, e, "?mode=duel&has_capacity=true")), "a2 is full")
	require.Equal(t, []string{"a2"}, ids(listWorlds(t, e, "?has_capacity=false")))
	require.Equal(t, []string{"a1", "b1", "c1"}, ids(listWorlds(t, e, "?min_players=0&max_players=0")))
	require.Equal(t, []string{"a2"}, ids(listWorlds(t, e, "?min_players=1")))
	require.Equal(t, 1, listWorlds(t, e, "?min_players=1").Worlds[0].Sessions)

	// Pages: limit and the cursor in next.
	p1 := listWorlds(t, e, "?limit=3")
	require.Equal(t, []string{"a1", "a2", "b1"}, ids(p1))
	require.Equal(t, "b1", p1.Next)
	p2 := listWorlds(t, e, "?limit=3&cursor="+p1.Next)
	require.Equal(t, []string{"c1"}, ids(p2))
	require.Empty(t, p2.Next)
	require.Equal(t, []string{"b1"}, ids(listWorlds(t, e, "?label=map:dust&cursor=a1")))

	for _, q := range []string{"?label=map", "?label=:x", "?has_capacity=maybe", "?min_players=-1", "?max_players=x", "?limit=0", "?limit=1001"} {
		e.RequireError(400, "malformed", "GET", "/v1/worlds"+q, "")
	}
}

// TestDeleteWorldOverHTTPRemovesItAndARecreateGetsANewIncarnation.
func TestDeleteWorldOverHTTPRemovesItAndARecreateGetsANewIncarnation(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env
	code, m := e.DoJSON("POST", "/v1/worlds", arenaBody)
	require.Equal(t, 201, code, "%v", m)
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions", action("p1", 1, `{"op":"incr","entity":"e1","field":"score","by":3}`))
	require.Equal(t, 200, code, "%v", m)
	code, _, b := e.Do("GET", "/v1/worlds/arena", "")
	require.Equal(t, 200, code, "%s", b)
	var before wire.World
	require.NoError(t, json.Unmarshal(b, &before))
	require.NotZero(t, before.Incarnation)
	require.Equal(t, uint64(1), before.Seq)

	e.RequireError(400, "malformed", "DELETE", "/v1/worlds/arena?incarnation=x", "")
	e.RequireError(404, "unknown_world", "DELETE", "/v1/worlds/arena?incarnation=1", "")
	code, _, b = e.Do("DELETE", "/v1/worlds/arena", "")
	require.Equal(t, 200, code, "%s", b)
	var gone wire.World
	require.NoError(t, json.Unmarshal(b, &gone))
	require.Equal(t, before, gone, "the answer is the world as it was")

	e.RequireError(404, "unknown_world", "GET", "/v1/worlds/arena", "")
	e.RequireError(404, "unknown_world", "DELETE", "/v1/worlds/arena", "")
	e.RequireError(404, "unknown_world", "POST", "/v1/worlds/arena/actions", action("p1", 2, `{"op":"incr","entity":"e1","field":"score","by":3}`))
	require.Empty(t, ids(listWorlds(t, e, "")))

	code, m = e.DoJSON("POST", "/v1/worlds", arenaBody)
	require.Equal(t, 201, code, "%v", m)
	code, _, b = e.Do("GET", "/v1/worlds/arena", "")
	require.Equal(t, 200, code)
	var again wire.World
	require.NoError(t, json.Unmarshal(b, &again))
	require.Greater(t, again.Incarnation, before.Incarnation)
	require.Equal(t, uint64(0), again.Seq)
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions", action("p1", 1, `{"op":"incr","entity":"e1","field":"score","by":3}`))
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, float64(1), m["seq"], "seqs start over, and the old idempotency window is gone")
	require.Equal(t, "applied", m["status"])
}

func TestFollowerForwardsAWorldDeleteWithItsIncarnation(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	follower.RequireError(400, "malformed", "DELETE", "/v1/worlds/arena?incarnation=-1", "")
	code, h, b := follower.Do("DELETE", "/v1/worlds/arena?incarnation=7", "")
	require.Equal(t, 200, code, "%s", b)
	require.Equal(t, "n1", h.Get(edge.HeaderLeader))
	require.Equal(t, []uint64{7}, leader.Fake.Deleted, "the query travels with the forwarded call")
	require.Empty(t, follower.Fake.Deleted)
	follower.RequireError(404, "unknown_world", "DELETE", "/v1/worlds/arena", "")
}

// TestAWorldDeleteEndsItsEventStreamsWithUnknownWorld: a stream following
// a world ends with an error line when the world is deleted.
func TestAWorldDeleteEndsItsEventStreamsWithUnknownWorld(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env
	code, m := e.DoJSON("POST", "/v1/worlds", arenaBody)
	require.Equal(t, 201, code, "%v", m)
	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions", action("p1", 1, `{"op":"incr","entity":"e1","field":"score","by":3}`))
	require.Equal(t, 200, code, "%v", m)
	next, _ := e.Stream("/v1/worlds/arena/events?from=1")
	first := next()
	require.Equal(t, float64(1), first["seq"], "%v", first)

	code, _, b := e.Do("DELETE", "/v1/worlds/arena", "")
	require.Equal(t, 200, code, "%s", b)
	for {
		line := next()
		require.NotNil(t, line, "the stream ends with an error line")
		if line["code"] != nil {
			require.Equal(t, "unknown_world", line["code"], "%v", line)
			break
		}
	}
	require.Nil(t, next(), "and then ends")
}
