package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// shortSegments cuts segments short so a test sees several finish.
var shortSegments = spectator.SegmentConfig{Duration: 100 * time.Millisecond, Keep: 50, Idle: time.Minute, Max: 2}

// fetch GETs base+path and returns the answer and its body.
func fetch(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// manifestUpTo polls base's manifest of arena until a finished segment
// reaches seq.
func manifestUpTo(t *testing.T, base, query string, seq uint64) wire.WatchManifest {
	t.Helper()
	var m wire.WatchManifest
	require.Eventually(t, func() bool {
		resp, b := fetch(t, base+"/v1/worlds/arena/watch/index.json"+query)
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &m) != nil {
			t.Errorf("manifest: %d %s", resp.StatusCode, b)
			return true
		}
		return len(m.Segments) > 0 && m.Segments[len(m.Segments)-1].Last >= seq
	}, 20*time.Second, 10*time.Millisecond)
	return m
}

// rebuild builds the state a segment's lines make: its keyframe, then
// its deltas.
func rebuild(t *testing.T, data []byte) *wire.Keyframe {
	t.Helper()
	var k *wire.Keyframe
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var head struct{ Type string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &head))
		switch head.Type {
		case wire.TypeKeyframe:
			k = new(wire.Keyframe)
			require.NoError(t, json.Unmarshal(sc.Bytes(), k))
		case wire.TypeWatchDelta:
			require.NotNil(t, k, "a delta before the keyframe")
			var d wire.WatchDelta
			require.NoError(t, json.Unmarshal(sc.Bytes(), &d))
			spectator.ApplyDelta(k, &d)
		}
	}
	require.NotNil(t, k, "a segment opens with a keyframe")
	return k
}

// A relay serves the watch's segments as a node does, cut from its own
// pipelines: they rebuild the state the node's watch shows at the same
// seq, each opens where the one before ended, and none shows what the
// relay's view hides.
func TestRelaySegmentsRebuildTheNodesWatchState(t *testing.T) {
	n := startNode(t)
	viewer := token(t, "relay", "")
	_, base := startRelay(t, n.url, viewer, func(c *Config) { c.Segments = shortSegments })
	manifestUpTo(t, base, "", 0) // start cutting
	last := play(t, n, "hidden-plan")
	onNode := watchState(t, dial(t, n.url, viewer, ""), last)

	m := manifestUpTo(t, base, "", last)
	require.EqualValues(t, 100, m.SegmentMS)
	require.Equal(t, "arena", m.World)
	var prev *wire.Keyframe
	for i, s := range m.Segments {
		resp, b := fetch(t, base+"/v1/worlds/arena/watch/"+s.URL)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
		require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
		require.NotContains(t, string(b), "secret")
		k := rebuild(t, b)
		require.Equal(t, s.Last, k.Seq, "segment %d ends at its last seq", s.N)
		if i > 0 {
			require.Equal(t, prev.Entities, rebuildOpen(t, b).Entities, "segment %d opens where the one before ended", s.N)
		}
		prev = k
	}
	require.Equal(t, onNode.Seq, prev.Seq)
	require.Equal(t, onNode.Entities, prev.Entities)

	// A finished segment again: the same bytes, and 304 on its ETag.
	s := m.Segments[len(m.Segments)-1]
	resp, b := fetch(t, base+"/v1/worlds/arena/watch/"+s.URL)
	req, err := http.NewRequest(http.MethodGet, base+"/v1/worlds/arena/watch/"+s.URL, nil)
	require.NoError(t, err)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	nm, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	nm.Body.Close()
	require.Equal(t, http.StatusNotModified, nm.StatusCode)
	_, again := fetch(t, base+"/v1/worlds/arena/watch/"+s.URL)
	require.Equal(t, b, again)
}

// rebuildOpen is the state a segment opens with: its keyframe.
func rebuildOpen(t *testing.T, data []byte) *wire.Keyframe {
	t.Helper()
	line, _, _ := bytes.Cut(data, []byte("\n"))
	var k wire.Keyframe
	require.NoError(t, json.Unmarshal(line, &k))
	require.Equal(t, wire.TypeKeyframe, k.Type)
	return &k
}

// The relay refuses what a node refuses, and bounds the views it cuts.
func TestRelaySegmentRefusals(t *testing.T) {
	n := startNode(t)
	r, base := startRelay(t, n.url, token(t, "relay", ""), func(c *Config) {
		c.Segments = spectator.SegmentConfig{Duration: 100 * time.Millisecond, Keep: 2, Idle: time.Minute, Max: 1}
	})
	m := manifestUpTo(t, base, "", 0)
	for name, tc := range map[string]struct {
		path string
		want int
		code string
	}{
		"not ready":        {"seg/" + strconv.FormatInt(m.Current+100, 10) + ".ndjson", http.StatusTooEarly, wire.CodeSegmentNotReady},
		"gone":             {"seg/1.ndjson", http.StatusGone, wire.CodeSegmentGone},
		"bad number":       {"seg/x.ndjson", http.StatusBadRequest, wire.CodeMalformed},
		"events mode":      {"index.json?mode=events", http.StatusBadRequest, wire.CodeMalformed},
		"other view":       {"index.json?view=ref", http.StatusBadRequest, wire.CodeMalformed},
		"one view at most": {"index.json?delay=1s", http.StatusServiceUnavailable, wire.CodeOverloaded},
	} {
		resp, b := fetch(t, base+"/v1/worlds/arena/watch/"+tc.path)
		require.Equal(t, tc.want, resp.StatusCode, "%s: %s", name, b)
		var body wire.ErrorBody
		require.NoError(t, json.Unmarshal(b, &body), name)
		require.Equal(t, tc.code, body.Code, name)
	}
	resp, _ := fetch(t, base+"/v1/worlds/arena/watch/seg/"+strconv.FormatInt(m.Current+100, 10)+".ndjson")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	resp, _ = fetch(t, base+"/v1/worlds/nowhere/watch/index.json")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	r.Close()
	resp, b := fetch(t, base+"/v1/worlds/arena/watch/index.json")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", b)
}

func TestRelayRefusesABadSegmentConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Upstream = "http://127.0.0.1:1"
	cfg.Segments.Keep = 0
	_, err := New(cfg)
	require.ErrorContains(t, err, "Segments")
}
