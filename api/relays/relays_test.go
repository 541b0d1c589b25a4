package relays

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator/registry"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// env is a node's registry routes over a real one-node store, with auth
// on and a cluster secret, on a clock the test moves.
type env struct {
	*apitest.Env
	api *API
	st  *store.Store
	now time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := apitest.StartStore(t)
	cfg := apitest.Config()
	cfg.Auth = apitest.Auth()
	cfg.ClusterSecret = []byte(apitest.Secret)
	reg := prometheus.NewRegistry()
	core, err := edge.NewCore(cfg, st, edge.NewSingleGroupRouter(st), reg)
	require.NoError(t, err)
	e := &env{api: New(core), st: st, now: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	e.api.Now = func() time.Time { return e.now }
	mux := http.NewServeMux()
	e.api.Register(mux)
	e.Env = apitest.Serve(t, core.Handler(mux), nil, reg, nil, core.Close)
	return e
}

func token(t *testing.T, player, role string, admin bool) []string {
	return []string{"Authorization", "Bearer " + apitest.Sign(t, jwt.SigningMethodHS256, apitest.Keys.HS,
		edge.AdminClaims{RegisteredClaims: apitest.Claims(player), Role: role, Admin: admin})}
}

func list(t *testing.T, e *env, path string, hdr ...string) []wire.Relay {
	t.Helper()
	code, _, b := e.Do("GET", path, "", hdr...)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var out wire.RelayList
	require.NoError(t, json.Unmarshal(b, &out))
	require.NotNil(t, out.Relays, "an empty list is [], not null")
	return out.Relays
}

func ids(rs []wire.Relay) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestRelaysAreRegisteredListedPickedAndRemoved(t *testing.T) {
	e := newEnv(t)
	admin := token(t, "ops", "", true)
	player := token(t, "ann", "", false)
	require.Empty(t, list(t, e, wire.PathRelays, admin...), "no registry world yet")
	require.NoError(t, e.st.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	require.Empty(t, list(t, e, "/v1/worlds/arena/relays", player...))

	put := func(body string) map[string]any {
		t.Helper()
		code, m := e.DoJSON("POST", wire.PathRelays, body, admin...)
		require.Equal(t, http.StatusOK, code, "%v", m)
		return m
	}
	// An operator's record (static), a live one, one for another world.
	put(`{"id":"eu-1","url":"https://eu-1.example:7080","region":"eu","capacity":1000,"viewers":900}`)
	m := put(`{"id":"eu-2","url":"https://eu-2.example:7080","region":"eu","capacity":1000,"viewers":100,"live":true}`)
	require.Equal(t, true, m["live"])
	require.EqualValues(t, e.now.UnixMilli(), m["heartbeat_ms"])
	put(`{"id":"us-1","url":"http://us-1.example:7080","worlds":["lobby"],"capacity":10}`)
	put(`{"id":"full","url":"http://full.example","capacity":5,"viewers":5}`)
	put(`{"id":"nocap","url":"http://nocap.example","viewers":3}`)

	all := list(t, e, wire.PathRelays, admin...)
	require.Equal(t, []string{"eu-1", "eu-2", "full", "nocap", "us-1"}, ids(all), "by id")
	require.Equal(t, []string{"lobby"}, all[4].Worlds)
	require.False(t, all[1].Stale)

	// Least loaded first; neither the full one nor another world's.
	require.Equal(t, []string{"eu-2", "eu-1", "nocap"}, ids(list(t, e, "/v1/worlds/arena/relays", player...)))

	// The live relay's heartbeat ages: stale in the list, never picked;
	// it puts itself again and is back.
	e.now = e.now.Add(registry.DefaultStaleAfter + time.Second)
	all = list(t, e, wire.PathRelays, admin...)
	require.True(t, all[1].Stale)
	require.False(t, all[0].Stale, "an operator's record never goes stale")
	require.Equal(t, []string{"eu-1", "nocap"}, ids(list(t, e, "/v1/worlds/arena/relays", player...)))
	put(`{"id":"eu-2","url":"https://eu-2.example:7080","region":"eu","capacity":1000,"viewers":950,"live":true}`)
	require.Equal(t, []string{"eu-1", "eu-2", "nocap"}, ids(list(t, e, "/v1/worlds/arena/relays", player...)))

	// Removal.
	code, _, b := e.Do("DELETE", wire.PathRelays+"/eu-1", "", admin...)
	require.Equal(t, http.StatusNoContent, code, "%s", b)
	require.Equal(t, []string{"eu-2", "full", "nocap", "us-1"}, ids(list(t, e, wire.PathRelays, admin...)))
	e.RequireError(http.StatusNotFound, fsm.CodeNotFound, "DELETE", wire.PathRelays+"/eu-1", "", admin...)
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "DELETE", wire.PathRelays+"/bad%20id", "", admin...)

	// Who may: admins and the secret write and list; any token reads a
	// world's relays; players may not register.
	require.Len(t, list(t, e, wire.PathRelays, edge.HeaderClusterKey, apitest.Secret), 4)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "GET", wire.PathRelays, "", player...)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "POST", wire.PathRelays, `{"id":"x","url":"http://x"}`, player...)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "DELETE", wire.PathRelays+"/nocap", "", player...)
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "GET", "/v1/worlds/arena/relays", "")
	e.RequireError(http.StatusNotFound, fsm.CodeUnknownWorld, "GET", "/v1/worlds/nowhere/relays", "", player...)

	// Bad records.
	for _, body := range []string{
		`{"id":"","url":"http://x"}`, `{"id":"a b","url":"http://x"}`, `{"id":"x","url":"ftp://x"}`,
		`{"id":"x","url":"http://x","capacity":-1}`, `{"id":"x","url":"http://x","worlds":["a/b"]}`,
		`{"id":"x","url":"http://x","extra":1}`, `not json`,
	} {
		e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", wire.PathRelays, body, admin...)
	}
}

func TestARegistryWorldOfOtherRulesGetsNothing(t *testing.T) {
	e := newEnv(t)
	admin := token(t, "ops", "", true)
	require.NoError(t, e.st.CreateWorld(context.Background(), registry.World, fsm.Rules{}))
	code, m := e.DoJSON("POST", wire.PathRelays, `{"id":"x","url":"http://x"}`, admin...)
	require.Equal(t, http.StatusInternalServerError, code, "%v", m)
	require.Empty(t, list(t, e, wire.PathRelays, admin...))
}

func TestTheClockAndStaleTimeHaveDefaults(t *testing.T) {
	a := &API{}
	require.WithinDuration(t, time.Now(), a.now(), time.Minute)
	require.Equal(t, registry.DefaultStaleAfter, a.staleAfter())
	a.StaleAfter = time.Second
	require.Equal(t, time.Second, a.staleAfter())
}

func TestRecordsAnAdminBrokeOrDeletedAreLeftOutOrRefused(t *testing.T) {
	e := newEnv(t)
	admin := token(t, "ops", "", true)
	player := token(t, "ann", "", false)
	ctx := context.Background()
	require.NoError(t, e.st.CreateWorld(ctx, "arena", fsm.Rules{}))
	for _, id := range []string{"a", "b"} {
		code, m := e.DoJSON("POST", wire.PathRelays, `{"id":"`+id+`","url":"http://`+id+`.example"}`, admin...)
		require.Equal(t, http.StatusOK, code, "%v", m)
	}
	act := func(ops ...fsm.Op) {
		ev, _, err := e.st.Act(ctx, &fsm.Action{World: registry.World, Player: "ops", Seq: uint64(time.Now().UnixNano()), Role: fsm.RoleAdmin, Ops: ops})
		require.NoError(t, err)
		require.Equal(t, fsm.StatusApplied, ev.Status, ev.Reason)
	}
	// Deleted by hand: the index still names it; it is left out.
	act(fsm.Op{Kind: fsm.OpDelete, Entity: "a"})
	require.Equal(t, []string{"b"}, ids(list(t, e, wire.PathRelays, admin...)))
	// Broken by hand: the lists fail rather than guess.
	act(fsm.Op{Kind: fsm.OpSet, Entity: "b", Field: registry.FieldWorlds, Value: fsm.String("{")})
	code, _, _ := e.Do("GET", wire.PathRelays, "", admin...)
	require.Equal(t, http.StatusInternalServerError, code)
	code, _, _ = e.Do("GET", "/v1/worlds/arena/relays", "", player...)
	require.Equal(t, http.StatusInternalServerError, code)
}
