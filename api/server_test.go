package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsValidAndValidateCatchesEachField(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultConfig().Validate())
	for name, mut := range map[string]func(*Config){
		"MaxBodyBytes":       func(c *Config) { c.MaxBodyBytes = 0 },
		"MaxBatchBodyBytes":  func(c *Config) { c.MaxBatchBodyBytes = c.MaxBodyBytes - 1 },
		"MaxBatchActions":    func(c *Config) { c.MaxBatchActions = 0 },
		"BatchConcurrency":   func(c *Config) { c.BatchConcurrency = 0 },
		"RequestTimeout":     func(c *Config) { c.RequestTimeout = 0 },
		"ForwardTimeout":     func(c *Config) { c.ForwardTimeout = -1 },
		"ForwardDialTimeout": func(c *Config) { c.ForwardDialTimeout = 0 },
		"ForwardMaxConns":    func(c *Config) { c.ForwardMaxConns = 0 },
		"StreamWriteTimeout": func(c *Config) { c.StreamWriteTimeout = 0 },
		"StreamQueue":        func(c *Config) { c.StreamQueue = -1 },
		"Logger":             func(c *Config) { c.Logger = nil },
	} {
		c := DefaultConfig()
		mut(&c)
		err := c.Validate()
		require.Error(t, err, name)
		require.Contains(t, err.Error(), name)
		_, err = newFakeServer(c, nil)
		require.Error(t, err, name)
	}
}

func TestNewRefusesNilBackendOrRouterAndDoubleRegistration(t *testing.T) {
	t.Parallel()
	_, err := New(testConfig(), nil, nil, nil)
	require.ErrorContains(t, err, "nil backend")
	_, err = New(testConfig(), apitest.NewFake(), nil, nil)
	require.ErrorContains(t, err, "nil router")
	reg := prometheus.NewRegistry()
	s, err := newFakeServer(testConfig(), reg)
	require.NoError(t, err)
	defer s.Close()
	_, err = newFakeServer(testConfig(), reg)
	require.ErrorContains(t, err, "api metrics")
	s2, err := newFakeServer(testConfig(), nil) // a private registry
	require.NoError(t, err)
	s2.Close()
}

func TestUnknownRoutesAndMethodsAnswerJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, apitest.NewFake())
	e.RequireError(404, "not_found", "GET", "/v2/nothing", "")
	_, h, _ := e.Do("GET", "/v1/cluster/snapshot", "")
	require.Equal(t, "POST", h.Get("Allow"))
	m := e.RequireError(405, "method_not_allowed", "GET", "/v1/cluster/snapshot", "")
	require.Contains(t, m["error"], "POST")
	e.RequireError(405, "method_not_allowed", "PUT", "/v1/worlds", "{}")
	// A path the mux cleans is redirected, not answered as an error.
	c := e.TS.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, path := range []string{"/v1//status", "/v2//nothing"} {
		req, err := http.NewRequest("GET", e.TS.URL+path, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, path)
	}
}

func TestPanicBecomes500Internal(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	f.PanicWorlds = true
	e := newEnv(t, f)
	m := e.RequireError(500, "internal", "GET", "/v1/worlds", "")
	require.Contains(t, m["error"], "worlds exploded")
	// The server keeps serving.
	code, _ := e.DoJSON("GET", "/healthz", "")
	require.Equal(t, 200, code)
}

func TestPanicAfterHeadersAndAbortHandler(t *testing.T) {
	t.Parallel()
	s, err := newFakeServer(testConfig(), nil)
	require.NoError(t, err)
	defer s.Close()
	s.mux.HandleFunc("GET /late-panic", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		panic("too late to answer")
	})
	s.mux.HandleFunc("GET /abort", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/late-panic", nil))
	require.Equal(t, http.StatusAccepted, rec.Code)
	require.Empty(t, rec.Body.String())
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/abort", nil))
	})
}

func TestHealthReadyAndMetrics(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	e := newEnv(t, f)
	code, m := e.DoJSON("GET", "/healthz", "")
	require.Equal(t, 200, code)
	require.Equal(t, "ok", m["status"])
	code, _ = e.DoJSON("GET", "/readyz", "")
	require.Equal(t, 200, code)
	f.ReadyFlag.Store(false)
	e.RequireError(503, "not_ready", "GET", "/readyz", "")
	f.ReadyFlag.Store(true)

	e.Do("GET", "/nope", "")
	code, _, b := e.Do("GET", "/metrics", "")
	require.Equal(t, 200, code)
	body := string(b)
	require.Contains(t, body, `gsd_http_requests_total{code="200",route="GET /healthz"} 1`)
	require.Contains(t, body, `gsd_http_requests_total{code="503",route="GET /readyz"} 1`)
	require.Contains(t, body, `gsd_http_requests_total{code="404",route="unmatched"} 1`)
	require.Contains(t, body, `gsd_http_request_duration_seconds_bucket{code="200",route="GET /healthz"`)
	require.Contains(t, body, `gsd_http_event_streams 0`)
}

func TestStatusWorldsAndHash(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	e := newEnv(t, f)
	code, m := e.DoJSON("GET", "/v1/worlds", "")
	require.Equal(t, 200, code)
	require.Equal(t, []any{}, m["worlds"])

	code, m = e.DoJSON("POST", "/v1/worlds", arenaBody)
	require.Equal(t, 201, code)
	require.Equal(t, map[string]any{"id": "arena"}, m)
	e.RequireError(409, "world_exists", "POST", "/v1/worlds", arenaBody)
	code, _, b := e.Do("GET", "/v1/worlds", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"worlds":[{"id":"arena","seq":0,"index":0,"entities":0,"players":0,"hash":"000000000000beef",
		"rules":{"strict":false,"fields":{"score":{"type":"int","policy":"counter"}}},"rules_version":1,"incarnation":0,"sessions":0}]}`, string(b))

	code, _, b = e.Do("GET", "/v1/worlds/arena/hash?seq=5", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"world":"arena","seq":5,"index":9,"hash":"0000000000000abc"}`, string(b))
	e.RequireError(400, "malformed", "GET", "/v1/worlds/arena/hash?seq=-1", "")
	e.RequireError(404, "unknown_world", "GET", "/v1/worlds/nowhere/hash", "")
	f.Set(func(f *apitest.Fake) { f.HashErr = fmt.Errorf("%w: seq 3", fsm.ErrSeqUnknown) })
	e.RequireError(404, "seq_unknown", "GET", "/v1/worlds/arena/hash?seq=3", "")

	code, m = e.DoJSON("GET", "/v1/status", "")
	require.Equal(t, 200, code)
	require.Equal(t, "self", m["id"])
	require.Equal(t, "leader", m["state"])
	require.Equal(t, float64(7), m["applied_index"])
}

func TestCreateWorldValidatesIDAndRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, apitest.NewFake())
	for name, body := range map[string]string{
		"no id":               `{"rules":{}}`,
		"long id":             `{"id":"` + strings.Repeat("w", fsm.MaxNameLen+1) + `"}`,
		"unknown field":       `{"id":"w","rule":{}}`,
		"unknown rules key":   `{"id":"w","rules":{"strict":true,"fieldz":{}}}`,
		"unknown field key":   `{"id":"w","rules":{"fields":{"hp":{"type":"int","policy":"counter","min":0}}}}`,
		"bad policy":          `{"id":"w","rules":{"fields":{"hp":{"type":"int","policy":"sum"}}}}`,
		"bad type":            `{"id":"w","rules":{"fields":{"hp":{"type":"decimal","policy":"max"}}}}`,
		"counter not int":     `{"id":"w","rules":{"fields":{"hp":{"type":"string","policy":"counter"}}}}`,
		"rules not object":    `{"id":"w","rules":7}`,
		"strict not boolean":  `{"id":"w","rules":{"strict":"yes"}}`,
		"bad fair window":     `{"id":"w","rules":{"fair_window":"soon"}}`,
		"fair window too big": `{"id":"w","rules":{"fair_window":"1h"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			e.With(t).RequireError(400, "malformed", "POST", "/v1/worlds", body)
		})
	}
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"plain"}`)
	require.Equal(t, 201, code)
	code, _ = e.DoJSON("POST", "/v1/worlds", `{"id":"nullrules","rules":null}`)
	require.Equal(t, 201, code)
	require.True(t, e.Fake.WorldMap["plain"].Rules.Fields == nil)
	code, _ = e.DoJSON("POST", "/v1/worlds", `{"id":"fair","rules":{"fair_window":"50ms","max_lag_compensation":"100ms"}}`)
	require.Equal(t, 201, code)
	require.Equal(t, fsm.Fairness{Window: 50 * time.Millisecond, MaxLag: 100 * time.Millisecond}, e.Fake.WorldMap["fair"].Rules.Fair)
}

func TestClusterEndpoints(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	e := newEnv(t, f)
	code, m := e.DoJSON("POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:7001","http_addr":"127.0.0.1:8001","region":"eu"}`)
	require.Equal(t, 200, code)
	require.Equal(t, true, m["ok"])
	require.Equal(t, []fsm.NodeInfo{{ID: "n2", RaftAddr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:8001", Region: "eu"}}, f.Nodes)
	e.RequireError(400, "malformed", "POST", "/v1/cluster/join", `{"id":"n2"}`)
	e.RequireError(400, "malformed", "POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"x:1","port":1}`)
	e.RequireError(413, "too_large", "POST", "/v1/cluster/join", `{"id":"`+strings.Repeat("n", 2<<20)+`"}`)

	code, _ = e.DoJSON("DELETE", "/v1/cluster/nodes/n2", "")
	require.Equal(t, 200, code)
	require.Equal(t, []string{"n2"}, f.Removed)
	e.RequireError(400, "malformed", "DELETE", "/v1/cluster/nodes/"+strings.Repeat("n", 200), "")
	f.Set(func(f *apitest.Fake) { f.RemoveErr = errors.New("raft: unknown peer") })
	e.RequireError(500, "internal", "DELETE", "/v1/cluster/nodes/n7", "")

	code, _ = e.DoJSON("POST", "/v1/cluster/transfer-leadership", "")
	require.Equal(t, 200, code)
	require.Equal(t, 1, f.Transfers)

	code, m = e.DoJSON("POST", "/v1/cluster/snapshot", "")
	require.Equal(t, 200, code)
	require.Equal(t, float64(42), m["index"])
	f.Set(func(f *apitest.Fake) { f.SnapErr = errors.New("snapshot: nothing new to snapshot") })
	e.RequireError(500, "internal", "POST", "/v1/cluster/snapshot", "")
}

func TestEventsErrorsBeforeTheStreamOpens(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	e := newEnv(t, f)
	e.RequireError(404, "unknown_world", "GET", "/v1/worlds/nowhere/events", "")
	e.RequireError(400, "malformed", "GET", "/v1/worlds/arena/events?from=x", "")
	e.RequireError(400, "malformed", "GET", "/v1/worlds/arena/events?linger=5", "")
	e.RequireError(400, "malformed", "GET", "/v1/worlds/arena/events?linger=-1s", "")
	e.RequireError(400, "malformed", "GET", "/v1/worlds/arena/events?linger=6s", "")
	f.Set(func(f *apitest.Fake) { f.SubErr = fmt.Errorf("%w: world arena seq 1", store.ErrArchiveGap) })
	e.RequireError(410, "archive_gap", "GET", "/v1/worlds/arena/events?from=1", "")
	e.srv.Close()
	e.RequireError(503, "unavailable", "GET", "/v1/worlds/arena/events", "")
	e.srv.Close() // idempotent
}

func TestEntityReadErrors(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	e := newEnv(t, f)
	e.RequireError(404, "unknown_world", "GET", "/v1/worlds/nowhere/entities/e1", "")
	require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	e.RequireError(404, "not_found", "GET", "/v1/worlds/arena/entities/ghost", "")
}
