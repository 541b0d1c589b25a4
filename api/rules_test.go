package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

const strictBody = `{"rules":{"strict":true,"fields":{"hp":{"type":"int","policy":"counter"}}}}`

func TestUpdateRulesReplacesTheRulesAndAnswersTheNewVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, apitest.NewFake())
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	code, m := e.DoJSON("GET", "/v1/worlds", "")
	require.Equal(t, 200, code)
	require.Equal(t, 1.0, m["worlds"].([]any)[0].(map[string]any)["rules_version"])

	code, m = e.DoJSON("PUT", "/v1/worlds/arena/rules", strictBody)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, map[string]any{"world": "arena", "rules_version": 2.0}, m)
	require.True(t, e.Fake.WorldMap["arena"].Rules.Strict)
	code, m = e.DoJSON("GET", "/v1/worlds", "")
	require.Equal(t, 200, code)
	w := m["worlds"].([]any)[0].(map[string]any)
	require.Equal(t, 2.0, w["rules_version"])
	require.Equal(t, true, w["rules"].(map[string]any)["strict"])

	code, m = e.DoJSON("PUT", "/v1/worlds/arena/rules", `{"rules":{},"expect_rules_version":2}`)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, 3.0, m["rules_version"])
	e.RequireError(409, fsm.CodeRulesConflict, "PUT", "/v1/worlds/arena/rules", `{"rules":{},"expect_rules_version":2}`)
	e.RequireError(404, fsm.CodeUnknownWorld, "PUT", "/v1/worlds/nope/rules", strictBody)
}

func TestUpdateRulesRefusesBadInputWithClearCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, apitest.NewFake())
	for name, tc := range map[string]struct {
		status int
		code   string
		path   string
		body   string
	}{
		"not JSON":           {400, fsm.CodeMalformed, "/v1/worlds/arena/rules", `{`},
		"unknown key":        {400, fsm.CodeMalformed, "/v1/worlds/arena/rules", `{"rulez":{}}`},
		"unknown rules key":  {400, fsm.CodeMalformed, "/v1/worlds/arena/rules", `{"rules":{"colour":"red"}}`},
		"bad policy":         {400, fsm.CodeMalformed, "/v1/worlds/arena/rules", `{"rules":{"fields":{"hp":{"policy":"sum"}}}}`},
		"bad world id":       {400, fsm.CodeMalformed, "/v1/worlds/" + strings.Repeat("w", fsm.MaxNameLen+1) + "/rules", strictBody},
		"bad schema shape":   {400, fsm.CodeMalformed, "/v1/worlds/arena/rules", `{"rules":{"teams":{"from":"dns","key":"k"}}}`},
		"view without field": {400, fsm.CodeMalformed, "/v1/worlds/arena/rules", `{"rules":{"views":{"k":{"kind":"count"}}}}`},
		"too large":          {413, edge.CodeTooLarge, "/v1/worlds/arena/rules", `{"rules":{"mode":"` + strings.Repeat("m", 1<<20) + `"}}`},
	} {
		t.Run(name, func(t *testing.T) {
			e.With(t).RequireError(tc.status, tc.code, "PUT", tc.path, tc.body)
		})
	}
	// World creation parses the same schema and refuses the same way.
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds", `{"id":"w","rules":{"views":{"k":{"kind":"count"}}}}`)
}

func TestUpdateRulesAnswersTheStoresRefusals(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	e := newEnv(t, f)
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	for err, want := range map[error]struct {
		status int
		code   string
	}{
		fmt.Errorf("%w: voter n3 reads log 1", store.ErrVersionGate): {409, edge.CodeVersionGate},
		fmt.Errorf("%w: field hp", fsm.ErrRulesIncompatible):         {409, fsm.CodeRulesIncompatible},
		store.ErrOutcomeUnknown:                                      {503, edge.CodeOutcomeUnknown},
	} {
		f.Set(func(f *apitest.Fake) { f.RulesErr = err })
		e.RequireError(want.status, want.code, "PUT", "/v1/worlds/arena/rules", strictBody)
	}
}

func TestUpdateRulesIsAnAdminRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, apitest.NewFake(), withSecret)
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	e.RequireError(401, edge.CodeUnauthorized, "PUT", "/v1/worlds/arena/rules", strictBody)
	code, m := e.DoJSON("PUT", "/v1/worlds/arena/rules", strictBody, edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%v", m)
}

func TestFollowerForwardsRulesUpdatesWithItsWireVersion(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	follower.Fake.Set(func(f *apitest.Fake) { f.RulesErr = store.ErrNotLeader })
	code, m := follower.DoJSON("PUT", "/v1/worlds/arena/rules", strictBody)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, 2.0, m["rules_version"])
	require.Equal(t, 1, leader.Fake.Forwarded)
	require.True(t, leader.Fake.WorldMap["arena"].Rules.Strict)

	// What the follower sends carries X-Gsd-Wire-Version.
	got := make(chan string, 1)
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(edge.HeaderWireVersion)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rec.Close)
	follower.Fake.SetLeader("n9", rec.Listener.Addr().String())
	code, _, _ = follower.Do("PUT", "/v1/worlds/arena/rules", strictBody)
	require.Equal(t, http.StatusNoContent, code)
	require.Equal(t, edge.WireVersion(), <-got)
}
