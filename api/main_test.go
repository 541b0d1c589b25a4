package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testEnv is one api Server over a backend, served by an httptest server.
type testEnv struct {
	t    *testing.T
	fake *apitest.Fake // nil over a real store
	srv  *Server
	ts   *httptest.Server
	reg  *prometheus.Registry
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Logger = quietLogger()
	return cfg
}

// newEnv serves fake through a new Server; opts adjust the config.
func newEnv(t *testing.T, fake *apitest.Fake, opts ...func(*Config)) *testEnv {
	t.Helper()
	e := newEnvFor(t, fake, opts...)
	e.fake = fake
	return e
}

func newEnvFor(t *testing.T, b edge.Backend, opts ...func(*Config)) *testEnv {
	t.Helper()
	return newEnvReg(t, b, prometheus.NewRegistry(), nil, opts...)
}

// newEnvReg serves b through a new Server whose metrics go to reg, on ln
// when it is not nil.
func newEnvReg(t *testing.T, b edge.Backend, reg *prometheus.Registry, ln net.Listener, opts ...func(*Config)) *testEnv {
	t.Helper()
	cfg := testConfig()
	for _, o := range opts {
		o(&cfg)
	}
	lg, ok := b.(edge.LeaderGroup)
	require.True(t, ok, "%T cannot say who leads its group", b)
	s, err := New(cfg, b, edge.NewSingleGroupRouter(lg), reg)
	require.NoError(t, err)
	h := s.Handler()
	if f, ok := b.(*apitest.Fake); ok {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(edge.HeaderForwarded) != "" {
				f.Set(func(f *apitest.Fake) { f.Forwarded++ })
			}
			inner.ServeHTTP(w, r)
		})
	}
	ts := httptest.NewUnstartedServer(h)
	if ln != nil {
		ts.Listener.Close()
		ts.Listener = ln
	}
	ts.Start()
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return &testEnv{t: t, srv: s, ts: ts, reg: reg}
}

// newFakeServer is a Server over a new fake backend, its group routed by
// the single-group router.
func newFakeServer(cfg Config, reg *prometheus.Registry) (*Server, error) {
	f := apitest.NewFake()
	return New(cfg, f, edge.NewSingleGroupRouter(f), reg)
}

// with returns e reporting to t (a subtest).
func (e *testEnv) with(t *testing.T) *testEnv {
	c := *e
	c.t = t
	return &c
}

// do sends a request and returns the status, headers and body.
func (e *testEnv) do(method, path, body string, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	require.NoError(e.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, resp.Header, b
}

// doJSON is do with the body decoded into a map.
func (e *testEnv) doJSON(method, path, body string, hdr ...string) (int, map[string]any) {
	e.t.Helper()
	code, h, b := e.do(method, path, body, hdr...)
	require.Contains(e.t, h.Get("Content-Type"), "json", "body: %s", b)
	var m map[string]any
	require.NoError(e.t, json.Unmarshal(b, &m), "body: %s", b)
	return code, m
}

// requireError checks an error answer's status and code.
func (e *testEnv) requireError(status int, code, method, path, body string, hdr ...string) map[string]any {
	e.t.Helper()
	got, m := e.doJSON(method, path, body, hdr...)
	require.Equal(e.t, status, got, "answer: %v", m)
	require.Equal(e.t, code, m["code"], "answer: %v", m)
	require.NotEmpty(e.t, m["error"])
	return m
}

const (
	incrBody  = `{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
	arenaBody = `{"id":"arena","rules":{"strict":false,"fields":{"score":{"type":"int","policy":"counter"}}}}`
)

// bareServer is a Server without routes, fans or acker: enough for the hub
// and stream code that the tests drive by hand. pm, when not nil, are its
// play metrics.
func bareServer(pm *playMetrics, opts ...func(*Config)) *Server {
	cfg := testConfig()
	for _, o := range opts {
		o(&cfg)
	}
	f := apitest.NewFake()
	core, err := edge.NewCore(cfg.Config, f, NewSingleGroupRouter(f), prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	return &Server{Core: core, cfg: cfg, b: f, log: cfg.Logger, playMetrics: pm}
}
