package apitest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// Env is an httptest server over a handler under test, with helpers
// to call it. T is the test it reports to.
type Env struct {
	T    *testing.T
	Fake *Fake // nil over a real store
	TS   *httptest.Server
	Reg  *prometheus.Registry
}

// Serve starts an httptest server for h on ln (a new loopback listener
// when nil); it stops in t.Cleanup, after closeFn (the server under test's
// own Close) when not nil. With fake, requests marked HeaderForwarded
// are counted in fake.Forwarded.
func Serve(t *testing.T, h http.Handler, fake *Fake, reg *prometheus.Registry, ln net.Listener, closeFn func()) *Env {
	t.Helper()
	if fake != nil {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(edge.HeaderForwarded) != "" {
				fake.Set(func(f *Fake) { f.Forwarded++ })
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
		if closeFn != nil {
			closeFn()
		}
		ts.Close()
	})
	return &Env{T: t, Fake: fake, TS: ts, Reg: reg}
}

// Do sends a request and returns the status, headers and body.
func (e *Env) Do(method, path, body string, hdr ...string) (int, http.Header, []byte) {
	e.T.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.TS.URL+path, rd)
	require.NoError(e.T, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.TS.Client().Do(req)
	require.NoError(e.T, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.T, err)
	return resp.StatusCode, resp.Header, b
}

// DoJSON is Do with the body decoded into a map.
func (e *Env) DoJSON(method, path, body string, hdr ...string) (int, map[string]any) {
	e.T.Helper()
	code, h, b := e.Do(method, path, body, hdr...)
	require.Contains(e.T, h.Get("Content-Type"), "json", "body: %s", b)
	var m map[string]any
	require.NoError(e.T, json.Unmarshal(b, &m), "body: %s", b)
	return code, m
}

// RequireError checks an error answer's status and code.
func (e *Env) RequireError(status int, code, method, path, body string, hdr ...string) map[string]any {
	e.T.Helper()
	got, m := e.DoJSON(method, path, body, hdr...)
	require.Equal(e.T, status, got, "answer: %v", m)
	require.Equal(e.T, code, m["code"], "answer: %v", m)
	require.NotEmpty(e.T, m["error"])
	return m
}

// Stream opens an event stream and returns a function reading its next
// line, and one closing it.
func (e *Env) Stream(path string) (next func() map[string]any, stop func()) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", e.TS.URL+path, nil)
	require.NoError(e.T, err)
	resp, err := e.TS.Client().Do(req)
	require.NoError(e.T, err)
	require.Equal(e.T, 200, resp.StatusCode)
	require.Equal(e.T, "application/x-ndjson", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	next = func() map[string]any {
		e.T.Helper()
		if !sc.Scan() {
			return nil
		}
		var m map[string]any
		require.NoError(e.T, json.Unmarshal(sc.Bytes(), &m), "line %s", sc.Text())
		return m
	}
	stop = func() {
		cancel()
		resp.Body.Close()
	}
	e.T.Cleanup(stop)
	return next, stop
}

// WSURL is the play URL of world on e.
func (e *Env) WSURL(world string) string {
	return "ws" + strings.TrimPrefix(e.TS.URL, "http") + "/v1/worlds/" + world + "/play"
}

// Server is a node's edge under test: it serves HTTP and closes.
type Server interface {
	Handler() http.Handler
	Close()
}

// ServeNode builds a node's edge over b with build (the package's
// constructor: api.New, or play's tests' own assembly), its config cfg
// adjusted by opts and its world's commands routed by the single-group
// router, and serves it on ln (see Serve).
func ServeNode[C any, S Server](t *testing.T, b edge.Backend, reg *prometheus.Registry, ln net.Listener, cfg C, opts []func(*C),
	build func(C, edge.Backend, edge.Router, *prometheus.Registry) (S, error)) (*Env, S) {
	t.Helper()
	for _, o := range opts {
		o(&cfg)
	}
	lg, ok := b.(edge.LeaderGroup)
	require.True(t, ok, "%T cannot say who leads its group", b)
	s, err := build(cfg, b, edge.NewSingleGroupRouter(lg), reg)
	require.NoError(t, err)
	f, _ := b.(*Fake)
	return Serve(t, s.Handler(), f, reg, ln, s.Close), s
}
