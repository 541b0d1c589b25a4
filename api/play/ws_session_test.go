package play

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestPlayClosesAnIdleConnectionWith4408(t *testing.T) {
	n := startLeaderWith(t, func(c *nodeConfig) {
		c.Play.PingInterval = 20 * time.Millisecond
		c.Play.IdleTimeout = 150 * time.Millisecond
	})
	n.env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann") // then silence: pings go unanswered
	wsClosed(t, c, 4408, edge.CodeIdle)
}

func TestPlayClosesWith4401WhenTheTokenExpiresDuringTheConnection(t *testing.T) {
	n := startLeaderWith(t, fastPlay, withAuth)
	n.env.Do("POST", "/v1/worlds", arenaBody, apitest.AdminHeader(t)...)
	// Expired 29 s ago by the server's clock, within its 30 s leeway:
	// valid for one second more.
	tok := sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) {
		c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-29 * time.Second))
	}))
	c := dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, c, map[string]any{"type": "hello", "token": tok})
	require.Equal(t, "welcome", wsRecv(t, c)["type"])
	wsClosed(t, c, 4401, edge.CodeUnauthorized)
}

func TestPlayWithAuthOnAFollowerForwardsTheTokenWithActions(t *testing.T) {
	nodes := startPlayCluster(t, 2, fastPlay, withAuth)
	nodes[0].env.Do("POST", "/v1/worlds", arenaBody, apitest.AdminHeader(t)...)
	tok := sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann"))
	c := dialPlay(t, nodes[1].env.WSURL("arena"), "Authorization", "Bearer "+tok)
	wsSend(t, c, map[string]any{"type": "hello"})
	require.Equal(t, "welcome", wsRecv(t, c)["type"])
	wsSend(t, c, map[string]any{"type": "action", "action": json.RawMessage(`{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`)})
	for {
		m := wsRecv(t, c)
		if m["type"] == "result" {
			require.Equal(t, "ann", m["event"].(map[string]any)["player"])
			break
		}
	}
}

func TestInternalSessionEndpointServesOnlyForwardedWellFormedCommands(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, withAuth)
	e.Do("POST", "/v1/worlds", arenaBody, apitest.AdminHeader(t)...)
	fwd := []string{edge.HeaderForwarded, "1"}
	hash := strings.Repeat("ab", fsm.TokenHashLen)
	e.RequireError(403, edge.CodeForbidden, "POST", "/v1/worlds/arena/sessions/open", `{"id":"s1","player":"ann"}`)
	e.RequireError(404, fsm.CodeNotFound, "POST", "/v1/worlds/arena/sessions/dance", `{"id":"s1"}`, fwd...)
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/sessions/ack", `{"id":`, fwd...)
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/sessions/open", `{"id":"s1","player":"ann","token_hash":"zz"}`, fwd...)
	e.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/sessions/open", `{"id":"s1","player":"ann","token_hash":"`+hash+`"}`, fwd...)
	tok := "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("bob"))
	e.RequireError(403, edge.CodeForbidden, "POST", "/v1/worlds/arena/sessions/open", `{"id":"s1","player":"ann"}`, edge.HeaderForwarded, "1", "Authorization", tok)
	code, m := e.DoJSON("POST", "/v1/worlds/arena/sessions/open", `{"id":"s1","player":"bob","token_hash":"`+hash+`"}`, edge.HeaderForwarded, "1", "Authorization", tok)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, "s1", m["id"])
	e.RequireError(404, fsm.CodeSessionUnknown, "POST", "/v1/worlds/arena/sessions/ack", `{"id":"s9","seq":1}`, fwd...)
	fake.LeaderFlag.Store(false)
	e.RequireError(503, edge.CodeNotLeader, "POST", "/v1/worlds/arena/sessions/ack", `{"id":"s1","seq":1}`, fwd...)
}

func TestPlayOnANodeWithoutAReachableLeaderClosesWith4503(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, fastPlay)
	e.Do("POST", "/v1/worlds", arenaBody)
	fake.LeaderFlag.Store(false)
	for what, addr := range map[string]string{
		"no leader":   "",
		"bad address": "bad host:1",
		"unreachable": apitest.FreeAddr(t),
	} {
		t.Run(what, func(t *testing.T) {
			fake.SetLeader("n9", addr)
			c := dialPlay(t, e.WSURL("arena"))
			wsSend(t, c, map[string]any{"type": "hello", "player": "ann"})
			wsClosed(t, c, 4503, edge.CodeNotLeader)
		})
	}
	// A leader that answers garbage is an internal error.
	junk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/open") {
			_, _ = w.Write([]byte("{not json"))
			return
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("teapot"))
	}))
	defer junk.Close()
	fake.SetLeader("n9", junk.URL)
	c := dialPlay(t, e.WSURL("arena"))
	wsSend(t, c, map[string]any{"type": "hello", "player": "ann"})
	wsClosed(t, c, websocket.StatusInternalError, edge.CodeInternal)
	_, err := e.srv.Session(context.Background(), fsm.CmdSessionAck, &fsm.SessionCmd{World: "arena", ID: "s"}, "")
	var re *edge.RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusTeapot, re.Status)
	require.Equal(t, edge.CodeInternal, re.Code)
}

func TestPlayOnAFollowerThatLagsGivesUpAfterTheRequestTimeout(t *testing.T) {
	// The leader (here: a fake leader behind another edge) opens the
	// session, but this node never applies it.
	leader := apitest.NewFake()
	le := newEnv(t, leader)
	le.Do("POST", "/v1/worlds", arenaBody)
	lagging := apitest.NewFake()
	// Long enough for the forward to the leader on a loaded machine.
	e := newEnv(t, lagging, func(c *nodeConfig) { c.RequestTimeout = time.Second })
	lagging.LeaderFlag.Store(false)
	lagging.SetLeader("n1", le.TS.Listener.Addr().String())
	c := dialPlay(t, e.WSURL("arena"))
	wsSend(t, c, map[string]any{"type": "hello", "player": "ann"})
	wsClosed(t, c, 4503, edge.CodeNotLeader)
}

func TestActOnLeaderRetriesOnTheLeaderWhenLeadershipMovesMidCall(t *testing.T) {
	leader := apitest.NewFake()
	le := newEnv(t, leader)
	le.Do("POST", "/v1/worlds", arenaBody)
	me := apitest.NewFake()
	e := newEnv(t, me)
	me.SetLeader("n1", le.TS.Listener.Addr().String())
	me.Set(func(f *apitest.Fake) {
		f.ActHook = func(context.Context, *fsm.Action) (*fsm.Event, bool, error) {
			f.LeaderFlag.Store(false) // deposed while proposing
			return nil, false, store.ErrNotLeader
		}
		f.SessErr = nil
	})
	a, err := edge.DecodeAction([]byte(actBody("ann", 1)), "arena", edge.Identity{})
	require.NoError(t, err)
	ev, err := e.srv.ActOnLeader(context.Background(), a, json.RawMessage(actBody("ann", 1)), "")
	require.NoError(t, err)
	require.Equal(t, "ann", ev.Player)
	// Other errors of a local leader stay.
	me.LeaderFlag.Store(true)
	me.Set(func(f *apitest.Fake) {
		f.ActHook = func(context.Context, *fsm.Action) (*fsm.Event, bool, error) { return nil, false, errors.New("boom") }
	})
	_, err = e.srv.ActOnLeader(context.Background(), a, nil, "")
	require.EqualError(t, err, "boom")
}

func TestSessionAdminRefusesOversizedBodies(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, func(c *nodeConfig) { c.MaxBodyBytes, c.MaxBatchBodyBytes = 64, 64 })
	big := `{"id":"` + strings.Repeat("x", 100) + `"}`
	e.RequireError(413, edge.CodeTooLarge, "POST", "/v1/worlds/arena/sessions/ack", big, edge.HeaderForwarded, "1")
	e.RequireError(413, edge.CodeTooLarge, "POST", "/v1/worlds/arena/sessions:import", big)
}

func TestImportMovesToTheLeaderWhenLeadershipMovesBeforeTheFirstPlayer(t *testing.T) {
	leader := apitest.NewFake()
	le := newEnv(t, leader)
	le.Do("POST", "/v1/worlds", arenaBody)
	me := apitest.NewFake()
	e := newEnv(t, me)
	me.SetLeader("n1", le.TS.Listener.Addr().String())
	me.Set(func(f *apitest.Fake) {
		f.SessHook = func() error {
			f.LeaderFlag.Store(false) // deposed while proposing
			return store.ErrNotLeader
		}
	})
	file := `{"players":[{"player":"ann","data":{"gold":1}}]}`
	code, m := e.DoJSON("POST", "/v1/worlds/arena/sessions:import", file)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, float64(1), m["imported"])
	require.Equal(t, 1, leader.Forwarded)
	// A later failure says how far the import got.
	me.LeaderFlag.Store(true)
	me.Set(func(f *apitest.Fake) { f.SessHook = func() error { return store.ErrOverloaded } })
	e.RequireError(429, edge.CodeOverloaded, "POST", "/v1/worlds/arena/sessions:import", file)
}

func TestCallLeaderReportsATruncatedAnswerAsOutcomeUnknown(t *testing.T) {
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte(`{"id":`))
	}))
	defer cut.Close()
	fake := apitest.NewFake()
	e := newEnv(t, fake)
	fake.LeaderFlag.Store(false)
	fake.SetLeader("n9", cut.URL)
	_, err := e.srv.Session(context.Background(), fsm.CmdSessionAck, &fsm.SessionCmd{World: "arena", ID: "s"}, "")
	require.ErrorIs(t, err, store.ErrOutcomeUnknown)
}

func TestPlayRefusesBeforeTheUpgradeAndEndsOnHelloTimeoutPongsAndAClosedStore(t *testing.T) {
	n := startLeaderWith(t, fastPlay, func(c *nodeConfig) { c.Play.HelloTimeout = 50 * time.Millisecond })
	n.env.Do("POST", "/v1/worlds", arenaBody)
	// A bad world name and a plain GET are answered before any upgrade.
	n.env.RequireError(400, fsm.CodeMalformed, "GET", "/v1/worlds/"+strings.Repeat("w", fsm.MaxNameLen+1)+"/play", "")
	code, _, _ := n.env.Do("GET", "/v1/worlds/arena/play", "")
	require.Equal(t, http.StatusUpgradeRequired, code)
	// No hello in time: a timeout the client may resume after, not bad input.
	c := dialPlay(t, n.env.WSURL("arena"))
	wsClosed(t, c, 4408, edge.CodeIdle)
	// A resume without a session name.
	c = dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, c, map[string]any{"type": "resume", "player": "ann", "session": ""})
	wsClosed(t, c, 4400, fsm.CodeMalformed)
	// Pongs are taken; a store that closes ends the connection.
	c = dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann")
	wsSend(t, c, map[string]any{"type": "pong", "t": time.Now().UnixNano()})
	require.NoError(t, n.st.Close(context.Background()))
	wsClosed(t, c, 4503, edge.CodeUnavailable)
	// A closing server refuses new connections.
	n.env.srv.Close()
	n.env.RequireError(503, edge.CodeUnavailable, "GET", "/v1/worlds/arena/play", "")
}

func TestNewFailsWhenThePlayMetricsAreTaken(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "gsd_play_connections", Help: "taken"}))
	_, err := newFakeServer(testConfig(), reg)
	require.ErrorContains(t, err, "api play metrics")
}
