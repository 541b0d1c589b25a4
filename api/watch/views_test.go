package watch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// viewRules declare a scoreboard over the visible score and one over the
// hidden gold, which only the caster class sees.
func viewRules() fsm.Rules {
	return fsm.Rules{
		Fields: map[string]fsm.FieldRule{
			"score": {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
			"gold":  {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		},
		Schema: fsm.Schema{
			Access:  map[string]fsm.FieldAccess{"gold": {Visible: "hidden"}},
			Viewers: map[string]fsm.ViewerRule{"caster": {Sees: []string{"hidden"}}},
			Views: map[string]fsm.ViewRule{
				"score": {Kind: "sum", Field: "score"},
				"gold":  {Kind: "sum", Field: "gold"},
			},
		},
	}
}

// newViewsEnv is newWatchEnv with viewRules.
func newViewsEnv(t *testing.T) *watchEnv {
	t.Helper()
	e := newWatchEnv(t)
	_, err := e.st.UpdateRules(context.Background(), "arena", viewRules(), 0)
	require.NoError(t, err)
	return e
}

// earn adds to e1's score and gold and returns the event's seq.
func (e *watchEnv) earn(t *testing.T, score, gold int64) uint64 {
	t.Helper()
	e.seq++
	ev, _, err := e.st.Act(context.Background(), &fsm.Action{World: "arena", Player: "p1", Seq: e.seq,
		Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: score}, {Kind: fsm.OpIncr, Entity: "e1", Field: "gold", By: gold}}})
	require.NoError(t, err)
	return ev.Seq
}

// get answers a GET as its status and body.
func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// views reads GET .../views with query until its seq reaches seq.
func (e *watchEnv) views(t *testing.T, query string, seq uint64) wire.Views {
	t.Helper()
	var vs wire.Views
	require.Eventually(t, func() bool {
		code, b := get(t, e.ts.URL+"/v1/worlds/arena/views"+query, "")
		require.Equal(t, http.StatusOK, code, "%s", b)
		require.NoError(t, json.Unmarshal(b, &vs))
		return vs.Seq >= seq
	}, 20*time.Second, 5*time.Millisecond)
	return vs
}

// The watch stream sends each aggregated view its viewer may see after
// the keyframe and when it changes; an aggregate of a field the view may
// not see is never sent to it.
func TestWatchSendsTheViewsItsViewerMaySee(t *testing.T) {
	t.Parallel()
	e := newViewsEnv(t)
	e.earn(t, 2, 100)
	public := e.dial(t, "")
	caster := e.dial(t, "?view=caster")
	next(t, public, wire.TypeKeyframe, 0)
	next(t, caster, wire.TypeKeyframe, 0)
	seq := e.earn(t, 3, 50)

	got := map[string]float64{}
	for len(got) < 2 {
		f := next(t, caster, wire.TypeView, seq)
		got[f["name"].(string)] = f["groups"].(map[string]any)[""].(float64)
	}
	require.Equal(t, map[string]float64{"score": 5, "gold": 150}, got)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, b, err := public.Read(ctx)
		require.NoError(t, err)
		require.NotContains(t, string(b), `"gold"`, "the public view may not see gold, nor its sum")
		var f wire.ViewFrame
		require.NoError(t, json.Unmarshal(b, &f))
		if f.Type == wire.TypeView && f.Seq >= seq {
			require.Equal(t, "score", f.Name)
			require.Equal(t, fsm.Int(5), f.Groups[""])
			return
		}
	}
}

// GET .../views serves the views the caller's view may see, at the seq
// they are at; GET .../views/{name} one of them; a view the caller may
// not see is not_found, as one the rules do not declare.
func TestViewsOverHTTPAreCutToTheCallersView(t *testing.T) {
	t.Parallel()
	e := newViewsEnv(t)
	e.earn(t, 2, 100)
	seq := e.earn(t, 3, 50)

	vs := e.views(t, "", seq)
	require.Equal(t, "arena", vs.World)
	require.Equal(t, []string{"score"}, keys(vs.Views))
	require.Equal(t, fsm.Int(5), vs.Views["score"].Groups[""])
	require.Equal(t, vs.Seq, vs.Views["score"].Seq)

	vs = e.views(t, "?view=caster", seq)
	require.Equal(t, []string{"gold", "score"}, keys(vs.Views))
	require.Equal(t, fsm.Int(150), vs.Views["gold"].Groups[""])

	code, b := get(t, e.ts.URL+"/v1/worlds/arena/views/score", "")
	require.Equal(t, http.StatusOK, code, "%s", b)
	var one wire.ViewFrame
	require.NoError(t, json.Unmarshal(b, &one))
	require.Equal(t, wire.ViewFrame{Type: wire.TypeView, World: "arena", Name: "score", Kind: "sum", Seq: one.Seq,
		Groups: map[string]wire.Value{"": fsm.Int(5)}}, one)
	require.GreaterOrEqual(t, one.Seq, seq)

	for _, path := range []string{"/views/gold", "/views/nope"} {
		code, b = get(t, e.ts.URL+"/v1/worlds/arena"+path, "")
		require.Equal(t, http.StatusNotFound, code, "%s: %s", path, b)
		require.Contains(t, string(b), fsm.CodeNotFound)
	}
	code, b = get(t, e.ts.URL+"/v1/worlds/arena/views/gold?view=caster", "")
	require.Equal(t, http.StatusOK, code, "%s", b)

	for query, want := range map[string]int{"?view=nobody": 400, "?delay=1h": 400, "?mode=events": 400} {
		code, b = get(t, e.ts.URL+"/v1/worlds/arena/views"+query, "")
		require.Equal(t, want, code, "%s: %s", query, b)
	}
	code, _ = get(t, e.ts.URL+"/v1/worlds/nowhere/views", "")
	require.Equal(t, http.StatusNotFound, code)
}

// A delayed caller's views are made from the events its delay released
// only: none of a world whose events are all newer than the delay.
func TestDelayedViewsHoldBackWhatTheDelayHolds(t *testing.T) {
	t.Parallel()
	e := newViewsEnv(t)
	e.earn(t, 2, 100)
	code, b := get(t, e.ts.URL+"/v1/worlds/arena/views?delay=300s", "")
	require.Equal(t, http.StatusOK, code, "%s", b)
	var vs wire.Views
	require.NoError(t, json.Unmarshal(b, &vs))
	require.Zero(t, vs.Seq)
	require.Equal(t, []string{"score"}, keys(vs.Views))
	require.Empty(t, vs.Views["score"].Groups, "the delay holds every event back")
}

// With auth on, the views route needs a credential, as the watch does.
func TestViewsNeedATokenWithAuthOn(t *testing.T) {
	t.Parallel()
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "arena", viewRules()))
	cfg := apitest.Config()
	cfg.Auth = apitest.Auth()
	core := apitest.Core(t, st, &cfg)
	svc, err := New(core, prometheus.NewRegistry())
	require.NoError(t, err)
	defer svc.Close()
	mux := http.NewServeMux()
	svc.Register(mux)
	ts := httptest.NewServer(core.Handler(mux))
	defer ts.Close()
	defer core.Close()

	code, _ := get(t, ts.URL+"/v1/worlds/arena/views", "")
	require.Equal(t, http.StatusUnauthorized, code)
	tok := apitest.Sign(t, jwt.SigningMethodHS256, apitest.Keys.HS, apitest.Claims("ann"))
	code, b := get(t, ts.URL+"/v1/worlds/arena/views", tok)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.NotContains(t, string(b), `"gold"`, "a player's view does not see the hidden gold")
	code, _ = get(t, ts.URL+"/v1/worlds/arena/views?view=caster", tok)
	require.Equal(t, http.StatusForbidden, code, "a class is for tokens whose role names it")
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// A delayed caller who polls its views reads one pipeline that follows
// the feed (kept for spectator.DefaultViewsLinger after each call), so
// its views reach the events once the delay released them.
func TestDelayedViewsReachTheEventsTheDelayReleased(t *testing.T) {
	t.Parallel()
	e := newViewsEnv(t)
	seq := e.earn(t, 2, 100)
	vs := e.views(t, "?delay=1s", seq)
	require.Equal(t, fsm.Int(2), vs.Views["score"].Groups[""])
	require.Equal(t, 1, e.svc.hub.Pipelines(), "the polled pipeline runs on")
}

// rules=true adds what a relay of the caller's view makes its views with:
// only the views that view may see.
func TestViewsRulesAreCutToTheCallersView(t *testing.T) {
	t.Parallel()
	e := newViewsEnv(t)
	seq := e.earn(t, 1, 1)
	require.Empty(t, e.views(t, "", seq).Rules, "only when asked")
	for query, want := range map[string][]string{"?rules=true": {"score"}, "?rules=true&view=caster": {"gold", "score"}} {
		vs := e.views(t, query, seq)
		var r fsm.Rules
		require.NoError(t, json.Unmarshal(vs.Rules, &r), "%s", vs.Rules)
		require.Equal(t, want, keys(r.Schema.Views), query)
		require.Empty(t, r.Schema.Access, query)
		require.NotContains(t, string(vs.Rules), `"hidden"`, query)
	}
}
