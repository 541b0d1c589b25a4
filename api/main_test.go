package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	*apitest.Env
	srv *Server
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
	e.Fake = fake
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
	env, s := apitest.ServeNode(t, b, reg, ln, testConfig(), opts, New)
	return &testEnv{Env: env, srv: s}
}

// newFakeServer is a Server over a new fake backend, its group routed by
// the single-group router.
func newFakeServer(cfg Config, reg *prometheus.Registry) (*Server, error) {
	f := apitest.NewFake()
	return New(cfg, f, edge.NewSingleGroupRouter(f), reg)
}

// with returns e reporting to t (a subtest).
func (e *testEnv) With(t *testing.T) *testEnv {
	env := *e.Env
	env.T = t
	return &testEnv{Env: &env, srv: e.srv}
}

const (
	incrBody  = `{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
	arenaBody = `{"id":"arena","rules":{"strict":false,"fields":{"score":{"type":"int","policy":"counter"}}}}`
)

// The tests' credentials (apitest/auth.go).
var (
	keys    = apitest.Keys
	testNow = apitest.Now
	claims  = apitest.Claims
	sign    = apitest.Sign
)

const testSecret = apitest.Secret

func testAuth() *edge.AuthConfig { return apitest.Auth() }

func withAuth(c *Config) { c.Auth = apitest.Auth() }

// asAdmin is the header of an admin token: with auth on, it creates
// worlds and reads (apitest.AdminHeader).
func asAdmin(t *testing.T) []string { return apitest.AdminHeader(t) }

func withSecret(c *Config) { c.ClusterSecret = []byte(testSecret) }

// startNodeOn starts a store (bootstrapping a one-node cluster when asked)
// and serves it on ln; both stop in t.Cleanup. opts adjust the config.
func startNodeOn(t *testing.T, id string, bootstrap bool, ln net.Listener, opts ...func(*Config)) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	st, raftAddr := apitest.StartStoreOn(t, id, bootstrap, ln.Addr().String(), reg)
	// Registered after the store's cleanup, so it runs first.
	return &node{st: st, env: newEnvReg(t, st, reg, ln, opts...), raftAddr: raftAddr}
}

// act posts an action to world arena on n and returns its seq.
func act(t *testing.T, n *node, body string) uint64 {
	t.Helper()
	code, _, b := n.env.Do("POST", "/v1/worlds/arena/actions", body)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var ev struct{ Seq uint64 }
	require.NoError(t, json.Unmarshal(b, &ev))
	return ev.Seq
}

// actBody is an action of player with seq incrementing e1's score.
func actBody(player string, seq int) string {
	return fmt.Sprintf(`{"player":%q,"seq":%d,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`, player, seq)
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}
