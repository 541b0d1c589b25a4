package spectator

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// ParseSegmentName reads a segment's name in a request, "N.ndjson", for
// segments of duration d; a bad one wraps fsm.ErrMalformed.
func ParseSegmentName(name string, d time.Duration) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSuffix(name, ".ndjson"), 10, 64)
	if !strings.HasSuffix(name, ".ndjson") || err != nil || n < 0 || n >= math.MaxInt64/d.Nanoseconds() {
		return 0, fmt.Errorf("%w: a segment is seg/N.ndjson with N a segment number, got %q", fsm.ErrMalformed, name)
	}
	return n, nil
}

// SegmentCacheControl is the Cache-Control of an answer for v lasting
// maxAge: a shared cache may keep it only when it holds what anyone may
// see (the public class and no player).
func SegmentCacheControl(v Viewer, maxAge time.Duration, immutable bool) string {
	scope := "private"
	if v.Class == "" && v.Player == "" {
		scope = "public"
	}
	cc := fmt.Sprintf("%s, max-age=%d", scope, int64(maxAge/time.Second))
	if immutable {
		cc += ", immutable"
	}
	return cc
}

// Manifest returns c's manifest for a request whose raw query is query
// (kept on the segments' URLs, so that they name the same view).
func (c *Cutter) Manifest(query string) wire.WatchManifest {
	segs, cur := c.Snapshot()
	if cur < 0 {
		cur = c.Number(time.Now())
	}
	m := wire.WatchManifest{World: c.key.World, View: c.key.Viewer.Class, DelayMS: c.key.Viewer.Delay.Milliseconds(),
		SegmentMS: c.cfg.Duration.Milliseconds(), Current: cur, Segments: make([]wire.WatchSegment, 0, len(segs))}
	if query != "" {
		query = "?" + query
	}
	for _, s := range segs {
		m.Segments = append(m.Segments, wire.WatchSegment{N: s.N, First: s.First, Last: s.Last, Keyframe: true,
			URL: "seg/" + strconv.FormatInt(s.N, 10) + ".ndjson" + query})
	}
	return m
}

// ServeIndex answers r with c's manifest (GET .../watch/index.json).
func (c *Cutter) ServeIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", SegmentCacheControl(c.key.Viewer, c.cfg.Duration/2, false))
	writeJSON(w, http.StatusOK, c.Manifest(r.URL.RawQuery))
}

// ServeSegment answers r with c's segment n (GET .../watch/seg/{n}.ndjson)
// as NDJSON, immutable (an ETag, a long max-age), gzipped for a client
// that accepts gzip (an ETag of its own); one not finished yet is
// 425 with Retry-After, one no longer kept (or never cut) 410.
func (c *Cutter) ServeSegment(w http.ResponseWriter, r *http.Request, n int64) {
	segs, cur := c.Snapshot()
	if cur < 0 || n >= cur {
		wait := time.Until(c.Start(max(n, cur) + 1))
		w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(wait.Seconds()))), 10))
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusTooEarly, wire.ErrorBody{Code: wire.CodeSegmentNotReady,
			Error: fmt.Sprintf("segment %d of world %s is not finished yet", n, c.key.World)})
		return
	}
	var seg *Segment
	for _, s := range segs {
		if s.N == n {
			seg = s
		}
	}
	if seg == nil {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusGone, wire.ErrorBody{Code: wire.CodeSegmentGone,
			Error: fmt.Sprintf("segment %d of world %s is not kept here: read the manifest", n, c.key.World)})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", SegmentCacheControl(c.key.Viewer, 365*24*time.Hour, true))
	h.Add("Vary", "Accept-Encoding")
	data, etag, gz := seg.Data, seg.ETag, acceptsGzip(r)
	if gz {
		data, etag = seg.Gzip()
	}
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
