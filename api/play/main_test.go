package play

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/admin"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/api/peer"
	"github.com/gsd-dev/gsd/api/public"
	"github.com/gsd-dev/gsd/api/streams"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// nodeConfig is a node's config: the edge's and the play endpoint's, as
// api.Config.
type nodeConfig struct {
	edge.Config
	Play Config
}

// testServer is a node's whole edge, assembled as api.New does (this
// package's tests cannot import api): the play service under test with
// the surfaces its clients and other nodes call.
type testServer struct {
	*Service
	events *streams.Service
	mux    *http.ServeMux
}

func testConfig() nodeConfig {
	return nodeConfig{Config: apitest.Config(), Play: DefaultConfig()}
}

func newServer(cfg nodeConfig, b edge.Backend, router edge.Router, reg *prometheus.Registry) (*testServer, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	core, err := edge.NewCore(cfg.Config, b, router, reg)
	if err != nil {
		return nil, err
	}
	s := &testServer{mux: http.NewServeMux()}
	if s.Service, err = New(core, cfg.Play, reg); err != nil {
		return nil, err
	}
	if s.events, err = streams.New(core); err != nil {
		return nil, err
	}
	pub, adm := public.New(core), admin.New(core)
	pub.Register(s.mux)
	adm.Register(s.mux)
	s.events.Register(s.mux)
	s.Register(s.mux)
	peer.New(core).Register(s.mux, peer.Handlers{
		Act: pub.Act, ActBatch: pub.ActBatch, LinearizableEntity: pub.LinearizableEntity,
		CreateWorld: pub.CreateWorld, UpdateRules: pub.UpdateRules,
		Join: adm.Join, RemoveNode: adm.RemoveNode, TransferLeadership: adm.TransferLeadership,
		Kick: adm.Kick, Ban: adm.Ban, Unban: adm.Unban, ExportData: adm.ExportData, ImportData: adm.ImportData,
		WritePlayerData: adm.WritePlayerData,
	})
	return s, nil
}

// Handler is the node's HTTP handler.
func (s *testServer) Handler() http.Handler { return s.Core.Handler(s.mux) }

// Close closes the node's edge as api.Server.Close does.
func (s *testServer) Close() {
	s.Core.Close()
	s.events.Close()
	s.Service.Close()
	s.CloseIdle()
}

// testEnv is one node's edge over a backend, served by an httptest server.
type testEnv struct {
	*apitest.Env
	srv *testServer
}

// With returns e reporting to t (a subtest).
func (e *testEnv) With(t *testing.T) *testEnv {
	env := *e.Env
	env.T = t
	return &testEnv{Env: &env, srv: e.srv}
}

// newEnv serves fake through a new node; opts adjust the config.
func newEnv(t *testing.T, fake *apitest.Fake, opts ...func(*nodeConfig)) *testEnv {
	t.Helper()
	return newEnvFor(t, fake, opts...)
}

func newEnvFor(t *testing.T, b edge.Backend, opts ...func(*nodeConfig)) *testEnv {
	t.Helper()
	return newEnvReg(t, b, prometheus.NewRegistry(), nil, opts...)
}

// newEnvReg serves b through a new node whose metrics go to reg, on ln
// when it is not nil.
func newEnvReg(t *testing.T, b edge.Backend, reg *prometheus.Registry, ln net.Listener, opts ...func(*nodeConfig)) *testEnv {
	t.Helper()
	env, s := apitest.ServeNode(t, b, reg, ln, testConfig(), opts, newServer)
	return &testEnv{Env: env, srv: s}
}

// newFakeServer is a node over a new fake backend.
func newFakeServer(cfg nodeConfig, reg *prometheus.Registry) (*testServer, error) {
	f := apitest.NewFake()
	return newServer(cfg, f, edge.NewSingleGroupRouter(f), reg)
}

// bareServer is a play service without routes or a running acker:
// enough for the hub code that the tests drive by hand. pm, when not nil,
// are its play metrics.
func bareServer(pm *playMetrics, opts ...func(*nodeConfig)) *Service {
	cfg := testConfig()
	for _, o := range opts {
		o(&cfg)
	}
	f := apitest.NewFake()
	core, err := edge.NewCore(cfg.Config, f, edge.NewSingleGroupRouter(f), prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	return &Service{Core: core, cfg: cfg.Play, b: f, log: cfg.Logger, playMetrics: pm, vis: edge.NewVisibility(f)}
}

// node is a real store behind a node's edge.
type node struct {
	st       *store.Store
	env      *testEnv
	raftAddr string
	reg      *prometheus.Registry // the node's metrics
}

// metrics returns the node's metrics in the text exposition format.
func (n *node) metrics(t *testing.T) string {
	t.Helper()
	mfs, err := n.reg.Gather()
	require.NoError(t, err)
	var b strings.Builder
	for _, mf := range mfs {
		_, err := expfmt.MetricFamilyToText(&b, mf)
		require.NoError(t, err)
	}
	return b.String()
}

// startNode starts a store (bootstrapping a one-node cluster when asked)
// and serves it over HTTP; both stop in t.Cleanup.
func startNode(t *testing.T, id string, bootstrap bool) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return startNodeOn(t, id, bootstrap, ln)
}

// startNodeOn is startNode serving on ln, its config adjusted by opts.
func startNodeOn(t *testing.T, id string, bootstrap bool, ln net.Listener, opts ...func(*nodeConfig)) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	st, raftAddr := apitest.StartStoreOn(t, id, bootstrap, ln.Addr().String(), reg)
	// Registered after the store's cleanup, so it runs first.
	return &node{st: st, env: newEnvReg(t, st, reg, ln, opts...), raftAddr: raftAddr, reg: reg}
}

func startLeader(t *testing.T) *node {
	t.Helper()
	n := startNode(t, "n1", true)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	return n
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

func withAuth(c *nodeConfig) { c.Auth = apitest.Auth() }

func withSecret(c *nodeConfig) { c.ClusterSecret = []byte(testSecret) }
