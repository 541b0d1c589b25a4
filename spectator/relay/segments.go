package relay

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/spectator"
)

// Index handles GET /v1/worlds/{world}/watch/index.json[?delay=D] as a
// node does: the manifest of the relay's view's latest segments, cut by
// package spectator's cutter from the relay's own pipelines. The first
// request for a view starts cutting it, so its first manifest lists none
// yet.
func (r *Relay) Index(w http.ResponseWriter, req *http.Request) {
	c, err := r.cutterOf(req)
	if err != nil {
		r.writeError(w, err)
		return
	}
	c.ServeIndex(w, req)
}

// Segment handles GET /v1/worlds/{world}/watch/seg/{n}.ndjson[?delay=D]
// as a node does: a finished segment, immutable; 425 before it is
// finished, 410 once it is no longer kept, 400 for a bad number.
func (r *Relay) Segment(w http.ResponseWriter, req *http.Request) {
	n, err := spectator.ParseSegmentName(req.PathValue("seg"), r.segs.Config().Duration)
	if err != nil {
		r.writeError(w, fmt.Errorf("%w: %w", ErrBadRequest, err))
		return
	}
	c, err := r.cutterOf(req)
	if err != nil {
		r.writeError(w, err)
		return
	}
	c.ServeSegment(w, req, n)
}

// cutterOf returns the cutter of the request's world and delay, started
// when none runs. The request counts as a viewer while it runs, so that
// a world whose segments are asked for stays followed.
func (r *Relay) cutterOf(req *http.Request) (*spectator.Cutter, error) {
	world := req.PathValue("world")
	v, events, err := r.viewer(req)
	if err != nil {
		return nil, err
	}
	if events {
		return nil, fmt.Errorf("%w: segments carry the state mode only", ErrBadRequest)
	}
	if err := r.admit(world); err != nil {
		return nil, err
	}
	defer r.leave(world)
	if _, err := r.followOf(req.Context(), world); err != nil {
		return nil, err
	}
	c, err := r.segs.Cutter(spectator.SegmentKey{World: world, Viewer: v}, nil, nil)
	switch {
	case errors.Is(err, spectator.ErrSegmentsFull):
		return nil, fmt.Errorf("%w: %w", ErrFull, err)
	case errors.Is(err, spectator.ErrClosed):
		return nil, ErrClosed
	}
	return c, err
}
