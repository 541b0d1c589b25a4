package moderation

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// env is a node's moderation routes over a real one-node store, with
// auth on and a cluster secret.
type env struct {
	*apitest.Env
	api *API
	st  *store.Store
	reg *prometheus.Registry
}

func config() edge.Config {
	cfg := apitest.Config()
	cfg.Auth = apitest.Auth()
	cfg.ClusterSecret = []byte(apitest.Secret)
	return cfg
}

func serve(t *testing.T, st *store.Store, router edge.Router) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	core, err := edge.NewCore(config(), st, router, reg)
	require.NoError(t, err)
	a, err := New(core, reg)
	require.NoError(t, err)
	a.Now = func() time.Time { return time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC) }
	mux := http.NewServeMux()
	a.Register(mux)
	return &env{Env: apitest.Serve(t, core.Handler(mux), nil, reg, nil, core.Close), api: a, st: st, reg: reg}
}

func newEnv(t *testing.T) *env {
	st := apitest.StartStore(t)
	return serve(t, st, edge.NewSingleGroupRouter(st))
}

func token(t *testing.T, player, role string, admin bool) []string {
	return []string{"Authorization", "Bearer " + apitest.Sign(t, jwt.SigningMethodHS256, apitest.Keys.HS,
		edge.AdminClaims{RegisteredClaims: apitest.Claims(player), Role: role, Admin: admin})}
}

func record(detector string, players ...string) moderation.Record {
	return moderation.Record{ID: moderation.ID(detector, players, "arena", 3), Detector: detector, Players: players, Score: 0.5,
		Evidence: []moderation.Ref{{World: "arena", Seq: 7}}, World: "arena", Incarnation: 3, RaisedBy: "n1", State: moderation.StateOpen}
}

func flags(t *testing.T, e *env, query string, hdr ...string) []wire.Flag {
	t.Helper()
	code, _, b := e.Do("GET", PathFlags+query, "", hdr...)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var out wire.FlagList
	require.NoError(t, json.Unmarshal(b, &out))
	return out.Flags
}

func TestFlagsAreRecordedOnceListedAndFiltered(t *testing.T) {
	e := newEnv(t)
	mod := token(t, "mia", moderation.Class, false)
	ctx := context.Background()
	require.Empty(t, flags(t, e, "", mod...), "no moderation world yet")

	created, err := e.api.Raise(ctx, record("speed", "ann"))
	require.NoError(t, err)
	require.True(t, created)
	created, err = e.api.Raise(ctx, record("speed", "ann"))
	require.NoError(t, err)
	require.False(t, created, "the same suspicion again")
	wi, err := e.api.World(moderation.World)
	require.NoError(t, err)
	require.Equal(t, moderation.World, wi.ID)

	// An admin records one by hand; a moderator may not.
	body := `{"detector":"funnel","players":["eve","mal"],"score":9,"evidence":[{"world":"arena","seq":8}],"world":"arena","incarnation":3,"raised_by":"ops"}`
	code, m := e.DoJSON("POST", PathFlags, body, token(t, "ops", "", true)...)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, true, m["created"])
	require.Equal(t, moderation.ID("funnel", []string{"eve", "mal"}, "arena", 3), m["id"])
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "POST", PathFlags, body, mod...)
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", PathFlags, `{"detector":"x"}`, token(t, "ops", "", true)...)
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", PathFlags, `{"detector":"x","state":"confirmed"}`, token(t, "ops", "", true)...)

	all := flags(t, e, "", mod...)
	require.Len(t, all, 2)
	require.Equal(t, "speed", all[0].Detector, "oldest first")
	require.Equal(t, []moderation.Ref{{World: "arena", Seq: 7}}, all[0].Evidence)
	require.Equal(t, moderation.StateOpen, all[0].State)
	require.Equal(t, "funnel", all[1].Detector)
	for q, want := range map[string]int{
		"?detector=funnel": 1, "?player=ann": 1, "?player=mal": 1, "?player=bob": 0,
		"?world=arena": 2, "?world=other": 0, "?state=open": 2, "?state=confirmed": 0,
	} {
		require.Len(t, flags(t, e, q, mod...), want, q)
	}
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "GET", PathFlags+"?state=banned", "", mod...)

	code, m = e.DoJSON("GET", PathFlags+"/"+all[1].ID, "", mod...)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, []any{"eve", "mal"}, m["players"])
	e.RequireError(http.StatusNotFound, fsm.CodeNotFound, "GET", PathFlags+"/flag-nope", "", mod...)
	e.RequireError(http.StatusNotFound, fsm.CodeNotFound, "GET", PathFlags+"/"+moderation.IndexEntity, "", mod...)

	// Who may read: moderators, admins, the secret; not players, not anonymous.
	require.Len(t, flags(t, e, "", token(t, "ops", "", true)...), 2)
	require.Len(t, flags(t, e, "", edge.HeaderClusterKey, apitest.Secret), 2)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "GET", PathFlags, "", token(t, "ann", "", false)...)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "GET", PathFlags+"/"+all[0].ID, "", token(t, "gs", fsm.RoleServer, false)...)
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "GET", PathFlags, "")

	// A record an admin deleted is left out; the index still names it.
	ev, _, err := e.st.Act(ctx, &fsm.Action{World: moderation.World, Player: "ops", Seq: 1, Role: fsm.RoleAdmin,
		Ops: []fsm.Op{{Kind: fsm.OpDelete, Entity: all[0].ID}}})
	require.NoError(t, err)
	require.Equal(t, fsm.StatusApplied, ev.Status)
	left := flags(t, e, "", mod...)
	require.Len(t, left, 1)
	require.Equal(t, "funnel", left[0].Detector)
}

func review(t *testing.T, e *env, id, op, body string, hdr ...string) wire.FlagReviewed {
	t.Helper()
	code, _, b := e.Do("POST", PathFlags+"/"+id+"/"+op, body, hdr...)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var out wire.FlagReviewed
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestReviewsFollowTheStateMachine(t *testing.T) {
	e := newEnv(t)
	mod := token(t, "mia", moderation.Class, false)
	path := func(id, op string) string { return PathFlags + "/" + id + "/" + op }
	e.RequireError(http.StatusNotFound, fsm.CodeNotFound, "POST", path("flag-x", "confirm"), `{"reason":"r"}`, mod...)
	rec := record("reaction", "bob")
	_, err := e.api.Raise(context.Background(), rec)
	require.NoError(t, err)
	id := rec.ID

	e.RequireError(http.StatusConflict, moderation.CodeIllegal, "POST", path(id, "appeal"), `{"reason":"nothing to appeal"}`, mod...)
	out := review(t, e, id, "confirm", `{"reason":"120 ms on every target"}`, mod...)
	require.Equal(t, moderation.StateConfirmed, out.Flag.State)
	require.Equal(t, moderation.Review{N: 1, Op: "confirm", From: "open", To: "confirmed", By: "mia", Reason: "120 ms on every target",
		At: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}, out.Review)
	m := e.RequireError(http.StatusConflict, moderation.CodeIllegal, "POST", path(id, "dismiss"), `{"reason":"changed my mind"}`, mod...)
	require.Contains(t, m["error"], "it allows appeal")
	// The token names the moderator: a body naming another is forbidden.
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "POST", path(id, "appeal"), `{"by":"someone","reason":"r"}`, mod...)
	review(t, e, id, "appeal", `{"by":"mia","reason":"the player says lag"}`, mod...)
	// The secret's holder names the moderator in the body.
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", path(id, "dismiss"), `{"reason":"lag"}`, edge.HeaderClusterKey, apitest.Secret)
	out = review(t, e, id, "dismiss", `{"by":"lead","reason":"lag confirmed"}`, edge.HeaderClusterKey, apitest.Secret)
	require.Equal(t, moderation.StateDismissed, out.Flag.State)
	require.Len(t, out.Flag.History, 3)
	e.RequireError(http.StatusConflict, moderation.CodeIllegal, "POST", path(id, "confirm"), `{"reason":"r"}`, mod...)

	got := flags(t, e, "?state=dismissed", mod...)
	require.Len(t, got, 1)
	require.Equal(t, []string{"confirm", "appeal", "dismiss"}, []string{got[0].History[0].Op, got[0].History[1].Op, got[0].History[2].Op})
	require.Equal(t, "lead", got[0].History[2].By)

	// Bad input, on an open flag.
	fresh := record("reaction", "cat")
	_, err = e.api.Raise(context.Background(), fresh)
	require.NoError(t, err)
	id = fresh.ID
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", path(id, "ban"), `{"reason":"r"}`, mod...)
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", path(id, "confirm"), `{}`, mod...)
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", path(id, "confirm"), `{"why":"r"}`, mod...)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "POST", path(id, "confirm"), `{"reason":"r"}`, token(t, "ann", "", false)...)
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", path(id, "confirm"), `{"reason":"r"}`, "Authorization", "Bearer forged")

	require.Equal(t, 1.0, testutil.ToFloat64(e.api.metrics.Reviews(moderation.StateConfirmed)))
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.metrics.Reviews(moderation.StateAppealed)))
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.metrics.Reviews(moderation.StateDismissed)))
}

// A node that does not lead the moderation world sends records and
// reviews to the one that does; a refusal there is final for a recorder.
func TestAFollowerSendsRecordsAndReviewsToTheLeader(t *testing.T) {
	leader := newEnv(t)
	router := &apitest.TableRouter{Routes: map[string]edge.Route{}}
	router.Set(moderation.World, edge.Route{GroupID: "0", Node: "n1", Addr: strings.TrimPrefix(leader.TS.URL, "http://")})
	follower := serve(t, leader.st, router) // reads this node's (shared) state
	ctx := context.Background()

	rec := record("lockstep", "r1", "r2")
	created, err := follower.api.Raise(ctx, rec)
	require.NoError(t, err)
	require.True(t, created)
	created, err = follower.api.Raise(ctx, rec)
	require.NoError(t, err)
	require.False(t, created)
	_, err = follower.api.Raise(ctx, moderation.Record{Detector: "x"})
	require.ErrorIs(t, err, moderation.ErrInvalid, "the leader refused it")

	mod := token(t, "mia", moderation.Class, false)
	out := review(t, follower, rec.ID, "confirm", `{"reason":"same tick, same delta"}`, mod...)
	require.Equal(t, "mia", out.Review.By)
	require.Equal(t, moderation.StateConfirmed, out.Flag.State)
	follower.RequireError(http.StatusConflict, moderation.CodeIllegal, "POST", PathFlags+"/"+rec.ID+"/dismiss", `{"reason":"r"}`, mod...)
	code, m := follower.DoJSON("POST", PathFlags, `{"detector":"speed","players":["z"],"raised_by":"ops"}`, edge.HeaderClusterKey, apitest.Secret)
	require.Equal(t, http.StatusOK, code, "%v", m)

	// The leader unreachable: a recorder retries.
	router.Set(moderation.World, edge.Route{GroupID: "0", Node: "n9", Addr: "127.0.0.1:1"})
	_, err = follower.api.Raise(ctx, record("speed", "q"))
	require.ErrorIs(t, err, store.ErrNotLeader)
	require.NotErrorIs(t, err, moderation.ErrInvalid)
}

func TestNewFailsOnARegisteredCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	core := apitest.Core(t, apitest.NewFake(), nil)
	_, err := New(core, reg)
	require.NoError(t, err)
	_, err = New(core, reg)
	require.Error(t, err)
}

// A world named like the moderation world but made by someone else (its
// records could be visible) gets no flag and no review.
func TestAModerationWorldOfOtherRulesGetsNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.NoError(t, e.st.CreateWorld(ctx, moderation.World, fsm.Rules{}))
	_, err := e.api.Raise(ctx, record("speed", "ann"))
	require.ErrorIs(t, err, moderation.ErrNotModeration)
	require.NotErrorIs(t, err, moderation.ErrInvalid, "the recorder retries: an operator deletes that world")
	wi, err := e.st.World(moderation.World)
	require.NoError(t, err)
	require.Equal(t, uint64(0), wi.Seq, "nothing written")
	// A fake record there is not reviewed.
	ev, _, err := e.st.Act(ctx, &fsm.Action{World: moderation.World, Player: "gs", Seq: 1, Role: fsm.RoleServer, Ops: []fsm.Op{
		{Kind: fsm.OpSet, Entity: "flag-x", Field: moderation.FieldDetector, Value: fsm.String("speed")},
		{Kind: fsm.OpSet, Entity: "flag-x", Field: moderation.FieldState, Value: fsm.String("open")}}})
	require.NoError(t, err)
	require.Equal(t, fsm.StatusApplied, ev.Status)
	e.RequireError(http.StatusInternalServerError, edge.CodeInternal, "POST", PathFlags+"/flag-x/confirm", `{"reason":"r"}`, token(t, "mia", moderation.Class, false)...)
}
