package watch

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// watchEnv is a one-node store with a world arena and the watch route.
type watchEnv struct {
	st  *store.Store
	svc *Service
	ts  *httptest.Server
	ln  *wscork.RecordingListener // the server's: its connections record their writes
	seq uint64
}

func newWatchEnv(t *testing.T) *watchEnv {
	t.Helper()
	return newWatchEnvWith(t, nil)
}

// newWatchEnvWith is newWatchEnv with the edge's config adjusted by opt.
func newWatchEnvWith(t *testing.T, opt func(*edge.Config)) *watchEnv {
	t.Helper()
	st := apitest.StartStore(t)
	rules := fsm.Rules{Fields: map[string]fsm.FieldRule{"score": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}}}
	require.NoError(t, st.CreateWorld(context.Background(), "arena", rules))
	cfg := apitest.Config()
	if opt != nil {
		opt(&cfg)
	}
	core := apitest.Core(t, st, &cfg)
	svc, err := New(core, prometheus.NewRegistry())
	require.NoError(t, err)
	mux := http.NewServeMux()
	svc.Register(mux)
	ts := httptest.NewUnstartedServer(core.Handler(mux))
	ln := &wscork.RecordingListener{Listener: ts.Listener}
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		core.Close()
		svc.Close()
		ts.Close()
	})
	return &watchEnv{st: st, svc: svc, ts: ts, ln: ln}
}

// hit adds by to e1's score and returns the event's seq.
func (e *watchEnv) hit(t *testing.T, by int64) uint64 {
	t.Helper()
	e.seq++
	ev, _, err := e.st.Act(context.Background(), &fsm.Action{World: "arena", Player: "p1", Seq: e.seq,
		Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: by}}})
	require.NoError(t, err)
	return ev.Seq
}

func (e *watchEnv) dial(t *testing.T, query string, protocols ...string) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/v1/worlds/arena/watch" + query
	c, _, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{Subprotocols: protocols})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// next reads frames until one of typ reflects seq at least, and returns it.
func next(t *testing.T, c *websocket.Conn, typ string, seq uint64) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		mt, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageText, mt)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), "%s", b)
		if m["type"] == typ && uint64(m["seq"].(float64)) >= seq {
			return m
		}
	}
}

func score(t *testing.T, frame map[string]any) float64 {
	t.Helper()
	ents := frame["entities"].(map[string]any)
	e1 := ents["e1"].(map[string]any)
	return e1["fields"].(map[string]any)["score"].(map[string]any)["value"].(float64)
}

// A watcher gets a keyframe of the world's state, then deltas as events
// commit; a late watcher gets the view's last keyframe and the deltas
// since.
func TestWatchSendsAKeyframeThenDeltas(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	for range 3 {
		e.hit(t, 1)
	}
	c := e.dial(t, "")
	kf := next(t, c, wire.TypeKeyframe, 0)
	require.Equal(t, "arena", kf["world"])
	seq := e.hit(t, 10)
	d := next(t, c, wire.TypeWatchDelta, seq)
	require.EqualValues(t, 13, score(t, d))

	// The late watcher joins on the view's last keyframe and the deltas
	// made since.
	late := e.dial(t, "")
	next(t, late, wire.TypeKeyframe, 0)
	require.EqualValues(t, 13, score(t, next(t, late, wire.TypeWatchDelta, seq)))
	require.Equal(t, float64(2), testutil.ToFloat64(e.svc.viewers))
}

// With the msgpack subprotocol, frames are binary and say the same.
func TestWatchOverMsgpack(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	seq := e.hit(t, 5)
	c := e.dial(t, "", wire.SubprotocolMsgpack)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		mt, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, mt)
		var kf wire.Keyframe
		require.NoError(t, wire.UnmarshalMsgpack(b, &kf))
		if kf.Type == wire.TypeKeyframe && kf.Seq >= seq {
			require.EqualValues(t, 5, kf.Entities["e1"].Fields["score"].Value.Int)
			return
		}
	}
}

// With the deflate subprotocol, frames are binary, each the DEFLATE of
// the frame's JSON; a client that offers it gets it.
func TestWatchOverDeflate(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	seq := e.hit(t, 5)
	// Offered with JSON, deflate wins; JSON still wins over msgpack.
	c := e.dial(t, "", wire.SubprotocolJSON, wire.SubprotocolWatchDeflate)
	require.Equal(t, wire.SubprotocolWatchDeflate, c.Subprotocol())
	require.Equal(t, wire.SubprotocolJSON, e.dial(t, "", wire.SubprotocolMsgpack, wire.SubprotocolJSON).Subprotocol())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		mt, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, mt)
		js, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
		require.NoError(t, err)
		var kf wire.Keyframe
		require.NoError(t, json.Unmarshal(js, &kf), "%s", js)
		if kf.Type == wire.TypeKeyframe && kf.Seq >= seq {
			require.EqualValues(t, 5, kf.Entities["e1"].Fields["score"].Value.Int)
			return
		}
	}
}

// With versions=false, keyframes and deltas come without versions, in
// JSON, deflated or msgpack.
func TestWatchWithoutVersions(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	seq := e.hit(t, 5)
	c := e.dial(t, "?versions=false", wire.SubprotocolWatchDeflate)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		mt, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, mt)
		js, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
		require.NoError(t, err)
		require.NotContains(t, string(js), `"version":`)
		var kf wire.Keyframe
		require.NoError(t, json.Unmarshal(js, &kf), "%s", js)
		if kf.Type == wire.TypeKeyframe && kf.Seq >= seq {
			require.EqualValues(t, 5, kf.Entities["e1"].Fields["score"].Value.Int)
			break
		}
	}
	// In JSON, the deltas too.
	j := e.dial(t, "?versions=false")
	next(t, j, wire.TypeKeyframe, 0)
	seq = e.hit(t, 1)
	d := next(t, j, wire.TypeWatchDelta, seq)
	require.EqualValues(t, 6, score(t, d))
	ent := d["entities"].(map[string]any)["e1"].(map[string]any)
	require.NotContains(t, ent, "version")
	require.NotContains(t, ent["fields"].(map[string]any)["score"], "version")

	// In msgpack alone, without versions too.
	m := e.dial(t, "?versions=false", wire.SubprotocolMsgpack)
	for first := true; ; first = false {
		mt, b, err := m.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, mt)
		require.NotContains(t, string(b), "\xa7version")
		var f wire.WatchDelta // a keyframe decodes into it too (its keys)
		require.NoError(t, wire.UnmarshalMsgpack(b, &f))
		if first {
			require.Equal(t, wire.TypeKeyframe, f.Type)
		}
		if sc, ok := f.Entities["e1"].Fields["score"]; ok && sc.Value.Int == 6 {
			break
		}
	}
}

// Bad requests are answered before the upgrade, in JSON.
func TestWatchRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	for name, tc := range map[string]struct {
		path   string
		status int
		code   string
	}{
		"unknown world": {"/v1/worlds/nowhere/watch", 404, fsm.CodeUnknownWorld},
		"bad delay":     {"/v1/worlds/arena/watch?delay=forever", 400, fsm.CodeMalformed},
		"long delay":    {"/v1/worlds/arena/watch?delay=301s", 400, fsm.CodeMalformed},
		"bad mode":      {"/v1/worlds/arena/watch?mode=replay", 400, fsm.CodeMalformed},
		"unknown class": {"/v1/worlds/arena/watch?view=coach", 400, fsm.CodeMalformed},
		"bad versions":  {"/v1/worlds/arena/watch?versions=no", 400, fsm.CodeMalformed},
		"lean events":   {"/v1/worlds/arena/watch?mode=events&versions=false", 400, fsm.CodeMalformed},
	} {
		resp, err := http.Get(e.ts.URL + tc.path)
		require.NoError(t, err, name)
		var body wire.ErrorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), name)
		resp.Body.Close()
		require.Equal(t, tc.status, resp.StatusCode, name)
		require.Equal(t, tc.code, body.Code, name)
	}
}

// A watcher in events mode gets the events its view may see after its
// keyframe; a delayed watcher gets nothing newer than its delay.
func TestWatchEventsModeAndDelay(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	c := e.dial(t, "?mode=events")
	next(t, c, wire.TypeKeyframe, 0)
	seq := e.hit(t, 2)
	m := next(t, c, wire.TypeEvents, seq)
	require.NotEmpty(t, m["events"])

	delayed := e.dial(t, "?delay=300s")
	kf := next(t, delayed, wire.TypeKeyframe, 0)
	require.Less(t, uint64(kf["seq"].(float64)), seq, "nothing of the last 300 s")
}

// Closing the server ends its watch connections with going away.
func TestWatchEndsWhenTheServerCloses(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	c := e.dial(t, "")
	next(t, c, wire.TypeKeyframe, 0)
	e.svc.Core.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
			return
		}
	}
}

func TestCloseStatusSaysWhyFramesEnded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status websocket.StatusCode
	}{
		{nil, websocket.StatusGoingAway},
		{spectator.ErrClosed, websocket.StatusGoingAway},
		{fmt.Errorf("x: %w", spectator.ErrRulesChanged), CloseRulesChanged},
		{fmt.Errorf("%w: world arena seq 1", store.ErrArchiveGap), CloseGone},
		{fmt.Errorf("%w: arena", fsm.ErrUnknownWorld), CloseGone},
		{&fsm.MovedError{Fence: fsm.Fence{World: "arena", Shard: 2, Seq: 9}}, CloseWorldMoved},
		{errors.New("disk on fire"), websocket.StatusInternalError},
	} {
		status, reason := closeStatus(tc.err)
		require.Equal(t, tc.status, status, "%v", tc.err)
		require.NotEmpty(t, reason)
	}
}

func TestNewFailsWhenItsMetricsAreTaken(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	reg := prometheus.NewRegistry()
	s, err := New(e.svc.Core, reg)
	require.NoError(t, err)
	defer s.Close()
	_, err = New(e.svc.Core, reg)
	require.ErrorContains(t, err, "watch metrics")
}

// With auth on a watcher needs a valid token; a closing node takes no new
// watcher.
func TestWatchNeedsATokenWithAuthOnAndRefusesWhileClosing(t *testing.T) {
	t.Parallel()
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "arena", fsm.Rules{}))
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

	resp, err := http.Get(ts.URL + "/v1/worlds/arena/watch")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	tok := apitest.Sign(t, jwt.SigningMethodHS256, apitest.Keys.HS, apitest.Claims("ann"))
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/worlds/arena/watch"
	c, _, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	require.NoError(t, err)
	next(t, c, wire.TypeKeyframe, 0)
	c.CloseNow()

	// A viewer class is for tokens whose role names it.
	req, err := http.NewRequest("GET", ts.URL+"/v1/worlds/arena/watch?view=coach", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	core.Close()
	req, err = http.NewRequest("GET", ts.URL+"/v1/worlds/arena/watch", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// A rules update is not in the feed: the watch notices the new rules
// version before its next frame and closes with 4409 (join again), so no
// frame made under the old rules goes out after the update is seen.
func TestWatchClosesWhenTheRulesChange(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	e.hit(t, 1)
	c := e.dial(t, "")
	next(t, c, wire.TypeKeyframe, 1)
	rules := fsm.Rules{Fields: map[string]fsm.FieldRule{"score": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"score": {Visible: "hidden"}}}}
	_, err := e.st.UpdateRules(context.Background(), "arena", rules, 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool { v, _ := e.svc.vis.RulesVersion("arena", edge.RulesRef{}); return v.Version == 2 }, 5*time.Second, time.Millisecond)
	e.hit(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			require.Equal(t, CloseRulesChanged, websocket.CloseStatus(err), "%v", err)
			break
		}
		require.NotContains(t, string(b), `"score"`, "a frame under the old rules")
	}
	// Joining again serves the new rules: the hidden score is not there.
	c = e.dial(t, "")
	k := next(t, c, wire.TypeKeyframe, 2)
	require.NotContains(t, k["entities"], "e1")
}

// With log version 12 a rules update is the world's event: the watch's
// pipeline sends the frames up to it and closes with 4409 there, though
// the rules poll still answers the old version (an hour's TTL), so no
// frame made under the old rules shows a field the update hid.
func TestWatchClosesAtTheRulesUpdatesEventNotAtThePoll(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	e.svc.vis.SetRulesTTL(time.Hour)
	e.hit(t, 1)
	c := e.dial(t, "")
	next(t, c, wire.TypeKeyframe, 1)
	ev := e.dial(t, "?mode=events")
	next(t, ev, wire.TypeKeyframe, 1)
	rules := fsm.Rules{Fields: map[string]fsm.FieldRule{"score": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"score": {Visible: "hidden"}}}}
	v, err := e.st.UpdateRules(context.Background(), "arena", rules, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
	for range 10 {
		e.hit(t, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []*websocket.Conn{c, ev} {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				require.Equal(t, CloseRulesChanged, websocket.CloseStatus(err), "%v", err)
				break
			}
			require.NotContains(t, string(b), `"score"`, "a frame under the old rules after the update")
		}
	}
	c = e.dial(t, "")
	k := next(t, c, wire.TypeKeyframe, 12)
	require.NotContains(t, k["entities"], "e1")
}

// A join refused because the world's rules changed under it (the hub's
// pipeline stopped at the update's event) is a retryable 503, not a 500;
// the request errors stay 400.
func TestClassifyMakesARulesChangeRetryable(t *testing.T) {
	t.Parallel()
	status, code := edge.Classify(classify(fmt.Errorf("hub: %w", spectator.ErrRulesChanged)), false)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "unavailable", code)
	status, _ = edge.Classify(classify(spectator.ErrBadDelay), false)
	require.Equal(t, http.StatusBadRequest, status)
}

// frames reads c's next n frames, as sent, and returns them with the
// last one's seq.
func frames(t *testing.T, c *websocket.Conn, n int) ([][]byte, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := make([][]byte, n)
	var last struct{ Seq uint64 }
	for i := range out {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &last), "%s", b)
		out[i] = b
	}
	return out, last.Seq
}

// A spectator joining a view with a backlog (the join keyframe and the
// deltas since) gets it in one socket write after the handshake's, byte
// for byte what a spectator who watched from the start got, as from a
// relay.
func TestWatchSendsAJoinersBacklogInOneWrite(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	first := e.dial(t, "")
	watched, _ := frames(t, first, 1) // the join keyframe
	for i := range 4 {
		seq := e.hit(t, int64(i+1))
		delta, got := frames(t, first, 1) // the pipeline ticked before the next hit
		require.Equal(t, seq, got)
		watched = append(watched, delta...)
	}

	joiner := e.dial(t, "")
	conns := e.ln.Conns()
	conn := conns[len(conns)-1]
	got, _ := frames(t, joiner, len(watched))
	require.Equal(t, watched, got, "the same frames, the same bytes")
	require.Len(t, conn.Written(), 2, "the handshake, then the keyframe and its 4 deltas in one write")
}

// A watcher whose link takes nothing is cut off by the stream write
// timeout (each frame's, and each socket write's through the cork), and
// counted out; the node goes on serving the others.
func TestWatchCutsOffAViewerWhoseLinkTakesNothing(t *testing.T) {
	t.Parallel()
	e := newWatchEnvWith(t, func(c *edge.Config) { c.StreamWriteTimeout = 200 * time.Millisecond })
	gate := wscork.NewGate()
	t.Cleanup(gate.Open)
	e.ln.HoldAt(gate)
	stuck := e.dial(t, "")
	<-gate.Waiting() // its keyframe waits at the gate, past the deadline
	e.ln.HoldAt(nil)
	require.Eventually(t, func() bool { return testutil.ToFloat64(e.svc.viewers) == 0 }, 20*time.Second, 5*time.Millisecond,
		"the stuck watcher was cut off")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err := stuck.Read(ctx)
	require.Error(t, err, "its connection ended")

	other := e.dial(t, "")
	_, seq := frames(t, other, 1)
	require.Zero(t, seq)
	got := e.hit(t, 3)
	_, seq = frames(t, other, 1)
	require.Equal(t, got, seq)
}

// A rules change found before a frame of a batch closes the watch with
// 4409 after the frames before it, and ends the world's pipelines.
func TestWatchBatchStopsAtARulesChange(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	anchor := e.dial(t, "")
	frames(t, anchor, 1)
	for i := range 2 {
		e.hit(t, int64(i+1))
		frames(t, anchor, 1) // a delta each
	}
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wt, err := e.svc.hub.Join("arena", spectator.Viewer{})
		if err != nil {
			done <- err
			return
		}
		defer wt.Close()
		h := &wscork.Hijack{ResponseWriter: w, Timeout: time.Second}
		ws, err := websocket.Accept(h, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer ws.CloseNow()
		checks := 0
		rulesSame := func() bool { checks++; return checks < 2 } // changed before the second frame
		done <- e.svc.writeQueued(r.Context(), ws, h.Conn, "arena", <-wt.Frames(), wt, spectator.CodecJSON, rulesSame)
	}))
	t.Cleanup(srv.Close)
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	kf, _ := frames(t, c, 1)
	require.Contains(t, string(kf[0]), `"keyframe"`, "the frame before the change went")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	require.Equal(t, CloseRulesChanged, websocket.CloseStatus(err), "%v", err)
	require.ErrorIs(t, <-done, errRulesChanged)
	require.Eventually(t, func() bool { return e.svc.hub.Pipelines() == 0 }, 20*time.Second, 5*time.Millisecond,
		"the world's pipelines ended")
}
