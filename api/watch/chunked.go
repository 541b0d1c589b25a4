package watch

import (
	"fmt"
	"net/http"

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
	CodeSegmentNotReady = wire.CodeSegmentNotReady
	// CodeSegmentGone: the segment is older than the node keeps, or was
	// cut before it started cutting this view (410: read the manifest).
	CodeSegmentGone = wire.CodeSegmentGone
)

// Manifest is the answer of GET .../watch/index.json: the segments of a
// world's view the node has finished, newest last.
type Manifest = wire.WatchManifest

// SegmentEntry is one finished segment of a Manifest.
type SegmentEntry = wire.WatchSegment

// registerSegments adds the segmented routes to mux.
func (s *Service) registerSegments(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/worlds/{world}/watch/index.json", s.Index)
	mux.HandleFunc("GET /v1/worlds/{world}/watch/seg/{seg}", s.Segment)
}

// cutterOf resolves the request's viewer as the watch route does and
// returns the cutter of its world and view, started when none runs.
func (s *Service) cutterOf(r *http.Request) (*spectator.Cutter, error) {
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
	c, err := s.cutterFor(spectator.SegmentKey{World: world, Viewer: v}, edge.RulesOf(info))
	if err != nil {
		return nil, classify(err)
	}
	return c, nil
}

// Index handles GET /v1/worlds/{world}/watch/index.json[?view=CLASS][&delay=D]:
// the manifest of the view's latest segments. The first request for a
// view starts cutting it, so its first manifest lists none yet.
func (s *Service) Index(w http.ResponseWriter, r *http.Request) {
	c, err := s.cutterOf(r)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	c.ServeIndex(w, r)
}

// Segment handles GET /v1/worlds/{world}/watch/seg/{n}.ndjson[?view=..][&delay=..]:
// a finished segment as NDJSON, immutable (an ETag, a long max-age); one
// not finished yet is 425 with Retry-After, one the node no longer keeps
// (or never cut) 410, a bad number 400.
func (s *Service) Segment(w http.ResponseWriter, r *http.Request) {
	s.segMu.Lock()
	d := s.segs.Config().Duration
	s.segMu.Unlock()
	n, err := spectator.ParseSegmentName(r.PathValue("seg"), d)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	c, err := s.cutterOf(r)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	c.ServeSegment(w, r, n)
}
