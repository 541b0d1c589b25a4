// Package watch serves spectators: GET /v1/worlds/{world}/watch over
// WebSocket, the frames of package spectator (a keyframe of what the
// viewer's class may see, then a delta per tick, or filtered events),
// delayed as the world's rules and the viewer ask. Watchers never slow
// players: a world's pipeline reads the committed feed once per delay and
// makes each view's frames once, and a viewer whose queue is full skips
// to the next keyframe.
//
// The same frames go over plain HTTP too, for CDNs (chunked.go,
// segments.go): GET .../watch/index.json names a view's latest segments,
// GET .../watch/seg/{n}.ndjson serves one, keyframe first and immutable
// once finished. A view is cut into segments by a hub viewer of its own
// while someone asked for it recently.
package watch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/prometheus/client_golang/prometheus"
)

// Close codes of a watch connection (docs/PROTOCOL.md, "Watching").
const (
	// CloseRulesChanged: the world's rules changed; join again.
	CloseRulesChanged websocket.StatusCode = 4409
	// CloseGone: the feed cannot serve the world from where the pipeline
	// starts (archive_gap), or the world is gone.
	CloseGone websocket.StatusCode = 4410
	// CloseWorldMoved ends a watch whose world moved to a shard this
	// node runs no replica of, once its frames reached the move's seq
	// (on a node that runs one, the watch follows the move): watch it
	// through a node that does.
	CloseWorldMoved websocket.StatusCode = 4421
)

// Service serves the watch route over the edge's shared core.
type Service struct {
	*edge.Core
	hub     *spectator.Hub
	vis     *edge.Visibility // the worlds' rules versions
	viewers prometheus.Gauge
	frames  prometheus.Counter
	bytes   prometheus.Counter

	// the segmented HTTP variant (chunked.go, segments.go): replaced
	// only by SetSegments, before serving
	segMu sync.Mutex
	segs  *spectator.Segments
}

// seeder is what a backend offers to seed a pipeline with the world's
// current state instead of its whole history (store.Store has it).
type seeder interface {
	Entities(world string) ([]fsm.EntityView, uint64, error)
	Event(world string, seq uint64) (*fsm.Event, bool)
}

// New returns the watch service over core; its metrics go to reg.
func New(core *edge.Core, reg prometheus.Registerer) (*Service, error) {
	b := core.Backend()
	cfg := spectator.HubConfig{
		Subscribe: func(world string, from uint64) (fanout.Subscription, error) {
			sub, err := b.Subscribe(world, from)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return sub, nil
		},
		RulesAt:     func(world string) (fsm.Rules, uint64, error) { return rulesOf(b, world) },
		Pipeline:    spectator.DefaultConfig(),
		ViewsLinger: spectator.DefaultViewsLinger,
	}
	cfg.Pipeline.Checkpoint = core.Config().Checkpoints
	if sd, ok := b.(seeder); ok {
		cfg.Seed = func(world string) (*spectator.State, error) { return seed(sd, world) }
	}
	vis := edge.NewVisibility(b)
	cfg.TeamOf = func(world string) spectator.TeamFunc {
		a, _, err := vis.Access(world)
		if err != nil {
			return nil // the join fails on the rules anyway
		}
		return vis.TeamOf(world, a)
	}
	hub, err := spectator.NewHub(cfg)
	if err != nil {
		return nil, err
	}
	segs, err := spectator.NewSegments(hub, DefaultSegmentConfig(), core.Log())
	if err != nil {
		hub.Close()
		return nil, err
	}
	s := &Service{Core: core, hub: hub, vis: vis, segs: segs,
		viewers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gsd_watch_viewers", Help: "Open watch connections on this node."}),
		frames:  prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_watch_frames_total", Help: "Frames written to watch connections."}),
		bytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_watch_bytes_total", Help: "Bytes of the frames written to watch connections."}),
	}
	for _, c := range []prometheus.Collector{s.viewers, s.frames, s.bytes} {
		if err := reg.Register(c); err != nil {
			hub.Close()
			return nil, fmt.Errorf("watch metrics: %w", err)
		}
	}
	return s, nil
}

// rulesOf returns world's rules in this node's applied state, and their
// version: a pipeline stops at the event of a later rules update.
func rulesOf(b edge.Backend, world string) (fsm.Rules, uint64, error) {
	for _, w := range b.Worlds() {
		if w.ID == world {
			return w.Rules, w.RulesVersion, nil
		}
	}
	return fsm.Rules{}, 0, fmt.Errorf("%w: world %s", fsm.ErrUnknownWorld, world)
}

// seed reads world's state on this node: nil (start from the first event)
// before its first event, or when that event has left the node's memory.
func seed(sd seeder, world string) (*spectator.State, error) {
	ents, seq, err := sd.Entities(world)
	if err != nil || seq == 0 {
		return nil, err
	}
	ev, ok := sd.Event(world, seq)
	if !ok {
		return nil, nil
	}
	return spectator.SeedState(world, seq, ev.Time, ents), nil
}

// SetSegments configures the segmented HTTP variant; call it before
// serving (New uses DefaultSegmentConfig).
func (s *Service) SetSegments(cfg SegmentConfig) error {
	segs, err := spectator.NewSegments(s.hub, cfg, s.Log())
	if err != nil {
		return err
	}
	s.segMu.Lock()
	defer s.segMu.Unlock()
	s.segs.Close() // nothing cut yet
	s.segs = segs
	return nil
}

// Register adds the watch routes to mux: the WebSocket one, the
// segmented HTTP variant (manifest and segments) and the aggregated views
// over HTTP (views.go).
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/worlds/{world}/watch", s.Watch)
	s.registerSegments(mux)
	s.registerViews(mux)
}

// Close stops the segmenters and the pipelines; call it after the core's
// Close has ended the watch connections.
func (s *Service) Close() {
	s.closeSegmenters()
	s.hub.Close()
}

// Watch handles GET /v1/worlds/{world}/watch[?view=CLASS][&delay=D][&mode=events][&versions=false].
// Errors before the upgrade are JSON answers: an unknown world (404), a
// bad view, delay or mode (400), a missing or bad token with auth on
// (401). After it, frames are text messages (JSON) or, with the
// gsd.msgpack.v1 subprotocol, binary ones (with gsd.watch.deflate.v1,
// binary DEFLATE of the JSON, compressed once per frame). versions=false
// leaves the versions out of keyframes and deltas (in every codec).
func (s *Service) Watch(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	v, events, err := s.viewer(r)
	var lean bool
	if err == nil {
		lean, err = spectator.ParseVersions(r.URL.Query().Get("versions"), events, spectator.Offered(r.Header.Values("Sec-WebSocket-Protocol")))
	}
	if err != nil {
		s.WriteError(w, classify(err), false)
		return
	}
	if !s.OpenStream() {
		s.WriteError(w, edge.ErrUnavailable, false)
		return
	}
	defer s.StreamDone()
	// A rules update is the world's event (log version 12): the pipeline
	// sends the frames up to it and stops (spectator.ErrRulesChanged,
	// closed with CloseRulesChanged: join again under the new rules). An
	// update without the event (a cluster still at log 11) is found by
	// polling: the watch checks the world's rules version before each
	// frame and ends the world's pipelines when it changed.
	_, info, err := s.vis.Access(world)
	if err != nil {
		s.WriteError(w, classify(err), false)
		return
	}
	join := s.hub.Join
	if events {
		join = s.hub.JoinEvents
	}
	wt, err := join(world, v)
	if err != nil {
		s.WriteError(w, classify(err), false)
		return
	}
	defer wt.Close()
	h := &wscork.Hijack{ResponseWriter: w, Timeout: s.Config().StreamWriteTimeout}
	ws, err := websocket.Accept(h, r, &websocket.AcceptOptions{Subprotocols: spectator.Subprotocols})
	if err != nil {
		return // Accept has answered
	}
	defer ws.CloseNow()
	s.viewers.Inc()
	defer s.viewers.Dec()
	codec := spectator.CodecOf(ws.Subprotocol())
	if lean {
		codec |= spectator.CodecLean
	}
	ctx := ws.CloseRead(r.Context()) // the client says nothing; its close ends ctx
	defer context.AfterFunc(s.Closing(), func() { ws.Close(websocket.StatusGoingAway, "server closing") })()
	rulesSame := func() bool {
		now, ok := s.vis.RulesVersion(world, edge.RulesOf(info))
		return ok && now == edge.RulesOf(info)
	}
	for {
		var f *spectator.Frame
		select {
		case f = <-wt.Frames():
		case <-ctx.Done():
			return
		}
		if f == nil {
			code, reason := closeStatus(wt.Err())
			ws.Close(code, reason)
			return
		}
		if err := s.writeQueued(ctx, ws, h.Conn, world, f, wt, codec, rulesSame); err != nil {
			return
		}
	}
}

// errRulesChanged: the world's rules changed before a frame (found by
// polling); errEncode: a frame could not be encoded for its viewer.
var (
	errRulesChanged = errors.New("watch: the world's rules changed")
	errEncode       = errors.New("watch: encode a frame")
)

// writeQueued writes f and every frame queued behind it (a joiner's join
// keyframe and the deltas since, a lagging viewer's backlog) in one
// socket write (wscork.Batch), as a relay's watch does: one write system
// call per frame was most of a join's cost. Each frame has the stream
// write timeout, as when they went one by one (one timeout for the whole
// batch would cut off a viewer on a slow link whose backlog outlasts it,
// where frame by frame it falls behind and skips to a keyframe; the
// socket's deadline bounds each write of the cork: at most Limit corked
// bytes and the one frame that did not fit).
// The frames the batch took from the queue and has not written count as
// queued (Watch.InFlight): a slow viewer skips to a keyframe as far
// behind as frame by frame. The rules are checked before each frame; a
// change, or a frame that cannot be encoded, closes the connection after
// the batch (a close waits for the peer's answer to a frame still
// corked), the frames before it sent.
func (s *Service) writeQueued(ctx context.Context, ws *websocket.Conn, cc *wscork.Conn, world string, f *spectator.Frame,
	wt *spectator.Watch, codec spectator.Codec, rulesSame func() bool) error {
	err := wscork.Batch(cc, f, wt.Frames(), wt.InFlight(), func(f *spectator.Frame) error {
		if !rulesSame() {
			return errRulesChanged
		}
		return s.write(ctx, ws, f, codec)
	})
	switch {
	case errors.Is(err, errRulesChanged):
		s.hub.RulesChanged(world)
		code, reason := closeStatus(spectator.ErrRulesChanged)
		ws.Close(code, reason)
	case errors.Is(err, errEncode):
		ws.Close(websocket.StatusInternalError, edge.CodeInternal)
	}
	return err
}

// write sends one frame within the stream write timeout.
func (s *Service) write(ctx context.Context, ws *websocket.Conn, f *spectator.Frame, codec spectator.Codec) error {
	data, binary, err := f.Encoded(codec)
	if err != nil {
		return fmt.Errorf("%w: %v", errEncode, err)
	}
	typ := websocket.MessageText
	if binary {
		typ = websocket.MessageBinary
	}
	ctx, cancel := context.WithTimeout(ctx, s.Config().StreamWriteTimeout)
	defer cancel()
	if err := ws.Write(ctx, typ, data); err != nil {
		return err
	}
	s.frames.Inc()
	s.bytes.Add(float64(len(data)))
	return nil
}

// viewer reads the watcher's class, delay and mode from the query and
// who it is from its credential (edge.Sight): with auth on, its player
// from its token (a player watching its own world sees what it owns),
// and a class other than the public one only with a token whose role
// names it (game servers and admins may take any); with auth off, the
// player and class the query names.
func (s *Service) viewer(r *http.Request) (spectator.Viewer, bool, error) {
	q := r.URL.Query()
	v := spectator.Viewer{Class: q.Get("view")}
	if d := q.Get("delay"); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil || delay < 0 || delay > fsm.MaxViewDelay {
			return v, false, fmt.Errorf("%w: delay must be a duration from 0 to %s, got %q", fsm.ErrMalformed, fsm.MaxViewDelay, d)
		}
		v.Delay = delay
	}
	var events bool
	switch m := q.Get("mode"); m {
	case "", "state":
	case "events":
		events = true
	default:
		return v, false, fmt.Errorf("%w: mode must be state or events, got %q", fsm.ErrMalformed, m)
	}
	if s.Auth() != nil && edge.Bearer(r) == "" {
		// A watch is a viewer's: the cluster secret opens the route, a
		// token names who watches.
		_, err := s.Identify(r)
		return v, false, err
	}
	sight, err := s.Sight(r)
	if err != nil {
		return v, false, err
	}
	if !sight.All {
		v.Class, v.Player = sight.Viewer.Class, sight.Viewer.Player
	}
	return v, events, nil
}

// classify maps the spectator package's refusals to the edge's errors.
func classify(err error) error {
	switch {
	case errors.Is(err, spectator.ErrUnknownClass), errors.Is(err, spectator.ErrBadDelay), errors.Is(err, spectator.ErrBadRules),
		errors.Is(err, spectator.ErrBadCodec):
		return fmt.Errorf("%w: %v", fsm.ErrMalformed, err)
	case errors.Is(err, spectator.ErrRulesChanged):
		// A join that met a rules update (the hub's pipeline stopped at
		// its event): retryable, the next join reads the new rules.
		return fmt.Errorf("%w: %v: join again", edge.ErrUnavailable, err)
	}
	return err
}

// closeStatus is the close of a watch whose frames ended with err.
func closeStatus(err error) (websocket.StatusCode, string) {
	switch {
	case err == nil, errors.Is(err, spectator.ErrClosed):
		return websocket.StatusGoingAway, "server closing"
	case errors.Is(err, spectator.ErrRulesChanged):
		return CloseRulesChanged, "rules changed: join again"
	}
	status, code := edge.Classify(err, false)
	switch status {
	case http.StatusGone, http.StatusNotFound:
		return CloseGone, code
	case http.StatusMisdirectedRequest:
		return CloseWorldMoved, code
	}
	return websocket.StatusInternalError, strings.TrimSpace(code)
}
