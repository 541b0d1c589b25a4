package watch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// testSegments cuts short segments so tests see several finish.
var testSegments = SegmentConfig{Duration: 100 * time.Millisecond, Keep: 50, Idle: time.Minute, Max: 8}

// newSegmentEnv is newWatchEnv with rules and a segment config of the
// test's.
func newSegmentEnv(t *testing.T, rules fsm.Rules, cfg SegmentConfig) *watchEnv {
	t.Helper()
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "arena", rules))
	core := apitest.Core(t, st, nil)
	svc, err := New(core, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, svc.SetSegments(cfg))
	mux := http.NewServeMux()
	svc.Register(mux)
	ts := httptest.NewServer(core.Handler(mux))
	t.Cleanup(func() {
		core.Close()
		svc.Close()
		ts.Close()
	})
	return &watchEnv{st: st, svc: svc, ts: ts}
}

func scoreRules() fsm.Rules {
	return fsm.Rules{Fields: map[string]fsm.FieldRule{"score": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}}}
}

func (e *watchEnv) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", e.ts.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func (e *watchEnv) manifest(t *testing.T, query string) Manifest {
	t.Helper()
	resp, b := e.get(t, "/v1/worlds/arena/watch/index.json"+query)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var m Manifest
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}

// manifestUpTo polls the manifest until a finished segment reflects seq.
func (e *watchEnv) manifestUpTo(t *testing.T, query string, seq uint64) Manifest {
	t.Helper()
	var m Manifest
	require.Eventually(t, func() bool {
		m = e.manifest(t, query)
		return len(m.Segments) > 0 && m.Segments[len(m.Segments)-1].Last >= seq
	}, 20*time.Second, 10*time.Millisecond)
	return m
}

// segmentLines fetches a listed segment and returns its lines.
func (e *watchEnv) segmentLines(t *testing.T, s SegmentEntry) [][]byte {
	t.Helper()
	resp, b := e.get(t, "/v1/worlds/arena/watch/"+s.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	require.NotEmpty(t, lines)
	return lines
}

// rebuild applies frames to k as a watcher does: a keyframe replaces the
// state, a delta changes it.
func rebuild(t *testing.T, k *wire.Keyframe, frame []byte) *wire.Keyframe {
	t.Helper()
	var head struct {
		Type string `json:"type"`
	}
	require.NoError(t, json.Unmarshal(frame, &head), "%s", frame)
	switch head.Type {
	case wire.TypeKeyframe:
		var nk wire.Keyframe
		require.NoError(t, json.Unmarshal(frame, &nk))
		return &nk
	case wire.TypeWatchDelta:
		var d wire.WatchDelta
		require.NoError(t, json.Unmarshal(frame, &d))
		require.NotNil(t, k, "a delta before any keyframe")
		spectator.ApplyDelta(k, &d)
	}
	return k
}

// A viewer that reads the manifest then every segment in order builds the
// same state as a WebSocket watcher at the same seq; every segment opens
// with a keyframe, so starting at any one gives that state too.
func TestSegmentsRebuildTheStateAWebSocketWatcherSees(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), testSegments)
	e.hit(t, 1)
	e.manifest(t, "") // start cutting
	c := e.dial(t, "")
	var ws *wire.Keyframe
	var seq uint64
	for i := range 20 {
		seq = e.hit(t, int64(i+1))
	}
	m := e.manifestUpTo(t, "", seq)
	require.Equal(t, "arena", m.World)
	require.EqualValues(t, 100, m.SegmentMS)
	require.Greater(t, m.Current, m.Segments[len(m.Segments)-1].N)

	var k *wire.Keyframe
	for i, s := range m.Segments {
		require.True(t, s.Keyframe)
		lines := e.segmentLines(t, s)
		require.Contains(t, string(lines[0]), `"type":"keyframe"`, "segment %d opens with a keyframe", s.N)
		var open wire.Keyframe
		require.NoError(t, json.Unmarshal(lines[0], &open))
		require.Equal(t, s.First, open.Seq)
		if i > 0 {
			require.Equal(t, m.Segments[i-1].N+1, s.N, "segments are numbered in a row")
			require.Equal(t, k.Entities, open.Entities, "a segment opens where the one before ended")
			require.Equal(t, k.Seq, open.Seq)
		}
		for _, l := range lines {
			k = rebuild(t, k, l)
		}
		require.Equal(t, s.Last, k.Seq, "segment %d ends at its last seq", s.N)
	}
	require.Equal(t, seq, k.Seq)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ws == nil || ws.Seq < seq {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		ws = rebuild(t, ws, b)
	}
	require.Equal(t, ws.Seq, k.Seq)
	require.Equal(t, ws.Entities, k.Entities)
	require.EqualValues(t, 1+210, k.Entities["e1"].Fields["score"].Value.Int)
}

// A finished segment is the same bytes at every fetch, with an ETag and
// a long, immutable, shared cache lifetime; the manifest lives a fraction
// of a segment.
func TestSegmentsAreImmutableAndCacheable(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), SegmentConfig{Duration: 2 * time.Second, Keep: 3, Idle: time.Minute, Max: 8})
	e.manifest(t, "")
	seq := e.hit(t, 4)
	m := e.manifestUpTo(t, "", seq)
	resp, b := e.get(t, "/v1/worlds/arena/watch/index.json")
	require.Equal(t, "public, max-age=1", resp.Header.Get("Cache-Control"))
	require.Contains(t, string(b), `"segments"`)

	s := m.Segments[len(m.Segments)-1]
	path := "/v1/worlds/arena/watch/" + s.URL
	identity := []string{"Accept-Encoding", "identity"} // else Go's client asks for gzip
	r1, b1 := e.get(t, path, identity...)
	for range 3 {
		e.hit(t, 1) // later events change no finished segment
	}
	r2, b2 := e.get(t, path, identity...)
	require.Equal(t, http.StatusOK, r1.StatusCode)
	require.Equal(t, b1, b2)
	require.Equal(t, "public, max-age=31536000, immutable", r1.Header.Get("Cache-Control"))
	etag := r1.Header.Get("ETag")
	require.NotEmpty(t, etag)
	require.Equal(t, etag, r2.Header.Get("ETag"))
	require.Equal(t, strconv.Itoa(len(b1)), r1.Header.Get("Content-Length"))

	r3, b3 := e.get(t, path, "If-None-Match", etag, identity[0], identity[1])
	require.Equal(t, http.StatusNotModified, r3.StatusCode)
	require.Empty(t, b3)

	// Gzipped for a client that accepts it, once: an ETag of its own.
	rz, bz := e.get(t, path, "Accept-Encoding", "br;q=1, gzip;q=0.5")
	require.Equal(t, http.StatusOK, rz.StatusCode)
	require.Equal(t, "gzip", rz.Header.Get("Content-Encoding"))
	require.Equal(t, "Accept-Encoding", rz.Header.Get("Vary"))
	require.Equal(t, strconv.Itoa(len(bz)), rz.Header.Get("Content-Length"))
	require.Less(t, len(bz), len(b1)+32)
	zr, err := gzip.NewReader(bytes.NewReader(bz))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, b1, plain)
	zetag := rz.Header.Get("ETag")
	require.NotEqual(t, etag, zetag)
	rz2, bz2 := e.get(t, path, "Accept-Encoding", "gzip")
	require.Equal(t, bz, bz2)
	require.Equal(t, zetag, rz2.Header.Get("ETag"))
	r4, _ := e.get(t, path, "If-None-Match", zetag, "Accept-Encoding", "gzip")
	require.Equal(t, http.StatusNotModified, r4.StatusCode)
	r5, b5 := e.get(t, path, "If-None-Match", zetag, "Accept-Encoding", "gzip;q=0")
	require.Equal(t, http.StatusOK, r5.StatusCode, "gzip refused: the plain one, whose ETag differs")
	require.Empty(t, r5.Header.Get("Content-Encoding"))
	require.Equal(t, b1, b5)

	// A viewer class is not for shared caches.
	e.hit(t, 1)
	require.Equal(t, "private, max-age=1", func() string {
		resp, _ := e.get(t, "/v1/worlds/arena/watch/index.json?player=p1")
		return resp.Header.Get("Cache-Control")
	}())
}

// A hidden field never shows in a segment, neither in its keyframe nor in
// its deltas.
func TestSegmentsNeverCarryAHiddenField(t *testing.T) {
	t.Parallel()
	rules := fsm.Rules{Fields: map[string]fsm.FieldRule{
		"score":  {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"secret": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"secret": {Visible: "hidden"}},
			Viewers: map[string]fsm.ViewerRule{"referee": {Sees: []string{"hidden"}}}}}
	e := newSegmentEnv(t, rules, testSegments)
	e.hit(t, 1)
	e.manifest(t, "")
	e.manifest(t, "?view=referee")
	var seq uint64
	for i := range 5 {
		e.seq++
		ev, _, err := e.st.Act(context.Background(), &fsm.Action{World: "arena", Player: "p1", Seq: e.seq,
			Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "secret", By: int64(i + 7)},
				{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: 1}}})
		require.NoError(t, err)
		seq = ev.Seq
	}
	m := e.manifestUpTo(t, "", seq)
	var scores int
	for _, s := range m.Segments {
		for _, l := range e.segmentLines(t, s) {
			require.NotContains(t, string(l), "secret")
			scores += strings.Count(string(l), `"score"`)
		}
	}
	require.Positive(t, scores, "the visible field does show")

	// A class that sees hidden fields gets them, in answers no shared
	// cache keeps.
	m = e.manifestUpTo(t, "?view=referee", seq)
	var secrets int
	for _, s := range m.Segments {
		resp, b := e.get(t, "/v1/worlds/arena/watch/"+s.URL)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "private, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
		secrets += strings.Count(string(b), `"secret"`)
	}
	require.Positive(t, secrets)
}

// A delayed view's segments hold nothing newer than the delay: every
// frame's leader time is older than the fetch time less the delay, and a
// long delay shows none of the events just made.
func TestSegmentsHoldTheDelay(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), testSegments)
	const delay = 500 * time.Millisecond
	q := "?delay=" + delay.String()
	e.manifest(t, q)
	e.manifest(t, "?delay=300s")
	var seq uint64
	for range 3 {
		seq = e.hit(t, 1)
	}
	m := e.manifestUpTo(t, q, seq)
	require.EqualValues(t, delay.Milliseconds(), m.DelayMS)
	for _, s := range m.Segments {
		fetched := time.Now()
		for _, l := range e.segmentLines(t, s) {
			var f struct {
				Time int64 `json:"time"`
			}
			require.NoError(t, json.Unmarshal(l, &f))
			require.LessOrEqual(t, f.Time, fetched.Add(-delay).UnixNano(), "%s", l)
		}
	}
	long := e.manifest(t, "?delay=300s")
	require.Eventually(t, func() bool { long = e.manifest(t, "?delay=300s"); return len(long.Segments) > 0 },
		20*time.Second, 10*time.Millisecond)
	for _, s := range long.Segments {
		require.Less(t, s.Last, seq, "nothing of the last 300 s")
	}
}

// A segment not finished yet is 425 with Retry-After, one the node does
// not keep is 410, a bad number or mode is 400, an unknown world 404.
func TestSegmentRefusals(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), SegmentConfig{Duration: 100 * time.Millisecond, Keep: 2, Idle: time.Minute, Max: 8})
	e.hit(t, 1)
	m := e.manifest(t, "")
	resp, b := e.get(t, "/v1/worlds/arena/watch/seg/"+strconv.FormatInt(m.Current+100, 10)+".ndjson")
	require.Equal(t, http.StatusTooEarly, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), CodeSegmentNotReady)
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.Positive(t, ra)

	// Once more than Keep have finished, the first is gone; so is one from
	// before the node cut any.
	require.Eventually(t, func() bool {
		return len(e.manifest(t, "").Segments) == 2 && e.manifest(t, "").Segments[0].N > m.Current
	},
		20*time.Second, 10*time.Millisecond)
	for _, n := range []int64{m.Current - 1, 1} {
		resp, b = e.get(t, "/v1/worlds/arena/watch/seg/"+strconv.FormatInt(n, 10)+".ndjson")
		require.Equal(t, http.StatusGone, resp.StatusCode, "%s", b)
		require.Contains(t, string(b), CodeSegmentGone)
	}

	for name, tc := range map[string]struct {
		path   string
		status int
		code   string
	}{
		"not a number":  {"/v1/worlds/arena/watch/seg/abc.ndjson", 400, fsm.CodeMalformed},
		"negative":      {"/v1/worlds/arena/watch/seg/-1.ndjson", 400, fsm.CodeMalformed},
		"no suffix":     {"/v1/worlds/arena/watch/seg/12", 400, fsm.CodeMalformed},
		"too far":       {"/v1/worlds/arena/watch/seg/9223372036854775807.ndjson", 400, fsm.CodeMalformed},
		"events mode":   {"/v1/worlds/arena/watch/index.json?mode=events", 400, fsm.CodeMalformed},
		"bad delay":     {"/v1/worlds/arena/watch/index.json?delay=forever", 400, fsm.CodeMalformed},
		"unknown class": {"/v1/worlds/arena/watch/seg/1.ndjson?view=coach", 400, fsm.CodeMalformed},
		"unknown world": {"/v1/worlds/nowhere/watch/index.json", 404, fsm.CodeUnknownWorld},
	} {
		resp, b := e.get(t, tc.path)
		require.Equal(t, tc.status, resp.StatusCode, "%s: %s", name, b)
		var body wire.ErrorBody
		require.NoError(t, json.Unmarshal(b, &body), name)
		require.Equal(t, tc.code, body.Code, name)
	}
}

// Nobody asking for a view's segments for Idle stops cutting them, and
// its pipeline with them; asking again starts anew.
func TestSegmentsStopWhenNobodyAsks(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), SegmentConfig{Duration: 20 * time.Millisecond, Keep: 2, Idle: 40 * time.Millisecond, Max: 1})
	e.manifest(t, "")
	require.Equal(t, 1, e.svc.hub.Pipelines())
	require.Eventually(t, func() bool { return e.svc.hub.Pipelines() == 0 && e.segmenters() == 0 }, 20*time.Second, 5*time.Millisecond)
	e.manifest(t, "")
	require.Equal(t, 1, e.segmenters())

	// One view at most: another is refused until this one goes idle.
	require.Eventually(t, func() bool {
		resp, _ := e.get(t, "/v1/worlds/arena/watch/index.json?delay=1s")
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 5*time.Millisecond)
}

// A node cuts at most Max views at once: one more is 503 with
// Retry-After.
func TestSegmentsBoundTheViewsCut(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), SegmentConfig{Duration: 100 * time.Millisecond, Keep: 2, Idle: time.Minute, Max: 1})
	e.manifest(t, "")
	e.manifest(t, "") // the same view again
	resp, b := e.get(t, "/v1/worlds/arena/watch/index.json?delay=1s")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", b)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Equal(t, 1, e.svc.hub.Pipelines())
}

// A rules update ends the view's segments (cut under the old rules),
// even with no event since; the next request cuts them under the new
// ones, and nothing it lists shows what the new rules hide.
func TestSegmentsStopWhenTheRulesChange(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), testSegments)
	seq := e.hit(t, 1)
	m := e.manifestUpTo(t, "", seq)
	require.Contains(t, string(e.segmentLines(t, m.Segments[len(m.Segments)-1])[0]), `"score"`)
	rules := scoreRules()
	rules.Schema = fsm.Schema{Access: map[string]fsm.FieldAccess{"score": {Visible: "hidden"}}}
	_, err := e.st.UpdateRules(context.Background(), "arena", rules, 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool { v, _ := e.svc.vis.RulesVersion("arena", edge.RulesRef{}); return v.Version == 2 },
		5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		m = e.manifest(t, "")
		return len(m.Segments) > 0
	}, 20*time.Second, 10*time.Millisecond)
	for _, s := range m.Segments {
		for _, l := range e.segmentLines(t, s) {
			require.NotContains(t, string(l), `"score"`)
		}
	}

	// With nobody asking, the timer alone notices the change.
	e2 := newSegmentEnv(t, scoreRules(), testSegments)
	e2.hit(t, 1)
	e2.manifest(t, "")
	_, err = e2.st.UpdateRules(context.Background(), "arena", rules, 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e2.segmenters() == 0 }, 20*time.Second, 10*time.Millisecond)
}

func TestSegmentConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultSegmentConfig().Validate())
	for _, c := range []SegmentConfig{
		{Duration: time.Millisecond, Keep: 1, Idle: time.Second},
		{Duration: time.Second, Keep: 0, Idle: time.Second},
		{Duration: time.Second, Keep: 1, Idle: time.Millisecond, Max: 1},
		{Duration: time.Second, Keep: 1, Idle: time.Second, Max: 0},
	} {
		require.Error(t, c.Validate(), "%+v", c)
	}
	e := newWatchEnv(t)
	require.Error(t, e.svc.SetSegments(SegmentConfig{}))
}

// After Close no segments are cut.
func TestSegmentsRefusedAfterClose(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), testSegments)
	e.manifest(t, "")
	e.svc.Close()
	require.Zero(t, e.segmenters())
	_, err := e.svc.cutterFor(spectator.SegmentKey{World: "arena"}, edge.RulesRef{})
	require.ErrorIs(t, err, spectator.ErrClosed)
}

func (e *watchEnv) segmenters() int {
	e.svc.segMu.Lock()
	defer e.svc.segMu.Unlock()
	return e.svc.segs.Len()
}

// A world deleted ends its segments.
func TestSegmentsEndWithTheirWorld(t *testing.T) {
	t.Parallel()
	e := newSegmentEnv(t, scoreRules(), testSegments)
	e.hit(t, 1)
	e.manifest(t, "")
	_, err := e.st.DeleteWorld(context.Background(), "arena", 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.segmenters() == 0 }, 20*time.Second, 10*time.Millisecond)
}

// With auth on the segments take the viewer from the token as the
// WebSocket route does: none is 401, a class the token's role does not
// name 403, a player's view private.
func TestSegmentsResolveTheViewerFromTheToken(t *testing.T) {
	t.Parallel()
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "arena", scoreRules()))
	cfg := apitest.Config()
	cfg.Auth = apitest.Auth()
	core := apitest.Core(t, st, &cfg)
	svc, err := New(core, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, svc.SetSegments(testSegments))
	mux := http.NewServeMux()
	svc.Register(mux)
	ts := httptest.NewServer(core.Handler(mux))
	t.Cleanup(func() {
		core.Close()
		svc.Close()
		ts.Close()
	})
	e := &watchEnv{st: st, svc: svc, ts: ts}
	tok := "Bearer " + apitest.Sign(t, jwt.SigningMethodHS256, apitest.Keys.HS, apitest.Claims("ann"))

	resp, _ := e.get(t, "/v1/worlds/arena/watch/index.json")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = e.get(t, "/v1/worlds/arena/watch/index.json?view=coach", "Authorization", tok)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, b := e.get(t, "/v1/worlds/arena/watch/index.json", "Authorization", tok)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Equal(t, "private, max-age=0", resp.Header.Get("Cache-Control"))

	// A closing node cuts no new segments.
	core.Close()
	resp, b = e.get(t, "/v1/worlds/arena/watch/index.json", "Authorization", tok)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", b)
}
