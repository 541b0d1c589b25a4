package watch

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
)

// Codes of the segmented watch route's own answers (docs/PROTOCOL.md,
// "Watching over HTTP").
const (
	// CodeSegmentNotReady: the segment is not finished yet (425, with
	// Retry-After).
	CodeSegmentNotReady = "segment_not_ready"
	// CodeSegmentGone: the segment is older than the node keeps, or was
	// cut before it started cutting this view (410: read the manifest).
	CodeSegmentGone = "segment_gone"
)

// Manifest is the answer of GET .../watch/index.json: the segments of a
// world's view the node has finished, newest last.
type Manifest struct {
	World string `json:"world"`
	View  string `json:"view"`
	// DelayMS is the delay the request asked for (the class's may be more).
	DelayMS int64 `json:"delay_ms"`
	// SegmentMS is how long one segment is: segment n covers the node's
	// clock from n×SegmentMS to (n+1)×SegmentMS ms after the Unix epoch.
	SegmentMS int64 `json:"segment_ms"`
	// Current is the number of the segment being cut now.
	Current  int64          `json:"current"`
	Segments []SegmentEntry `json:"segments"`
}

// SegmentEntry is one finished segment of a Manifest.
type SegmentEntry struct {
	N     int64  `json:"n"`
	First uint64 `json:"first"` // the seq of its opening keyframe
	Last  uint64 `json:"last"`  // the seq of its last frame
	// Keyframe says it opens with a keyframe (every segment does).
	Keyframe bool   `json:"keyframe"`
	URL      string `json:"url"` // relative to the manifest
}

// registerSegments adds the segmented routes to mux.
func (s *Service) registerSegments(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/worlds/{world}/watch/index.json", s.Index)
	mux.HandleFunc("GET /v1/worlds/{world}/watch/seg/{seg}", s.Segment)
}

// segmenterOf resolves the request's viewer as the watch route does and
// returns the segmenter of its world and view, started when none runs.
func (s *Service) segmenterOf(r *http.Request) (*segmenter, error) {
	world := r.PathValue("world")
	v, events, err := s.viewer(r)
	if err != nil {
		return nil, err
	}
	if events {
		return nil, fmt.Errorf("%w: segments carry the state mode only", fsm.ErrMalformed)
	}
	select {
	case <-s.Closing().Done():
		return nil, edge.ErrUnavailable
	default:
	}
	_, info, err := s.vis.Access(world)
	if err != nil {
		return nil, err
	}
	sg, err := s.segmenterFor(segKey{world: world, v: v}, edge.RulesOf(info))
	if err != nil {
		return nil, classify(err)
	}
	return sg, nil
}

// cacheControl is the Cache-Control of an answer for v lasting maxAge: a
// shared cache may keep it only when it holds what anyone may see (the
// public class and no player).
func cacheControl(v spectator.Viewer, maxAge time.Duration, immutable bool) string {
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

// Index handles GET /v1/worlds/{world}/watch/index.json[?view=CLASS][&delay=D]:
// the manifest of the view's latest segments. The first request for a
// view starts cutting it, so its first manifest lists none yet.
func (s *Service) Index(w http.ResponseWriter, r *http.Request) {
	sg, err := s.segmenterOf(r)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	segs, cur := sg.snapshot()
	if cur < 0 {
		cur = sg.number(time.Now())
	}
	m := Manifest{World: sg.key.world, View: sg.key.v.Class, DelayMS: sg.key.v.Delay.Milliseconds(),
		SegmentMS: sg.cfg.Duration.Milliseconds(), Current: cur, Segments: make([]SegmentEntry, 0, len(segs))}
	q := ""
	if r.URL.RawQuery != "" {
		q = "?" + r.URL.RawQuery
	}
	for _, sgm := range segs {
		m.Segments = append(m.Segments, SegmentEntry{N: sgm.n, First: sgm.first, Last: sgm.last, Keyframe: true,
			URL: "seg/" + strconv.FormatInt(sgm.n, 10) + ".ndjson" + q})
	}
	w.Header().Set("Cache-Control", cacheControl(sg.key.v, sg.cfg.Duration/2, false))
	s.WriteJSON(w, http.StatusOK, m)
}

// Segment handles GET /v1/worlds/{world}/watch/seg/{n}.ndjson[?view=..][&delay=..]:
// a finished segment as NDJSON, immutable (an ETag, a long max-age); one
// not finished yet is 425 with Retry-After, one the node no longer keeps
// (or never cut) 410, a bad number 400.
func (s *Service) Segment(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("seg")
	n, err := strconv.ParseInt(strings.TrimSuffix(name, ".ndjson"), 10, 64)
	if !strings.HasSuffix(name, ".ndjson") || err != nil || n < 0 || n >= math.MaxInt64/s.segCfg.Duration.Nanoseconds() {
		s.WriteError(w, fmt.Errorf("%w: a segment is seg/N.ndjson with N a segment number, got %q", fsm.ErrMalformed, name), false)
		return
	}
	sg, err := s.segmenterOf(r)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	segs, cur := sg.snapshot()
	if cur < 0 || n >= cur {
		wait := time.Until(sg.start(max(n, cur) + 1))
		w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(wait.Seconds()))), 10))
		w.Header().Set("Cache-Control", "no-store")
		s.WriteJSON(w, http.StatusTooEarly, wire.ErrorBody{Code: CodeSegmentNotReady,
			Error: fmt.Sprintf("segment %d of world %s is not finished yet", n, sg.key.world)})
		return
	}
	var seg *segment
	for _, sgm := range segs {
		if sgm.n == n {
			seg = sgm
		}
	}
	if seg == nil {
		w.Header().Set("Cache-Control", "no-store")
		s.WriteJSON(w, http.StatusGone, wire.ErrorBody{Code: CodeSegmentGone,
			Error: fmt.Sprintf("segment %d of world %s is not kept on this node: read the manifest", n, sg.key.world)})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", cacheControl(sg.key.v, 365*24*time.Hour, true))
	h.Set("ETag", seg.etag)
	if r.Header.Get("If-None-Match") == seg.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(seg.data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(seg.data)
}
