package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
)

// Close codes of a watch connection, as a node's (docs/PROTOCOL.md,
// "Watching").
const (
	// CloseRulesChanged: the world's rules changed; join again.
	CloseRulesChanged websocket.StatusCode = 4409
	// CloseGone: the relay cannot serve the world from where its pipeline
	// starts (archive_gap), or the world is gone.
	CloseGone websocket.StatusCode = 4410
)

// writeError answers a request with err's status and error body; a full
// relay says when to come back.
func (r *Relay) writeError(w http.ResponseWriter, err error) {
	st, _ := status(err)
	if errors.Is(err, ErrFull) {
		w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st)
	_ = json.NewEncoder(w).Encode(body(err))
}

// checkView refuses a viewer that names a class other than the relay's,
// or a player: a relay serves one view's spectators.
func (r *Relay) checkView(req *http.Request) error {
	q := req.URL.Query()
	if v := q.Get("view"); v != "" && v != r.cfg.View {
		return fmt.Errorf("%w: this relay serves view %q, not %q", ErrBadRequest, r.cfg.View, v)
	}
	if q.Get("player") != "" {
		return fmt.Errorf("%w: a relay serves spectators; a player watches on a node", ErrBadRequest)
	}
	return nil
}

// Watch handles GET /v1/worlds/{world}/watch[?view=CLASS][&delay=D][&mode=events]
// as a node does: a keyframe, then a delta per tick (or filtered events),
// over WebSocket, JSON text messages or, with the gsd.msgpack.v1
// subprotocol, binary ones (gsd.watch.deflate.v1: the JSON deflated,
// once per frame for all viewers; versions=false leaves the versions out
// of keyframes and deltas). delay= raises the upstream's delay (the relay
// holds the events it receives that long more).
func (r *Relay) Watch(w http.ResponseWriter, req *http.Request) {
	world := req.PathValue("world")
	v, events, err := r.viewer(req)
	var lean bool
	if err == nil {
		lean, err = spectator.ParseVersions(req.URL.Query().Get("versions"), events, spectator.Offered(req.Header.Values("Sec-WebSocket-Protocol")))
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	}
	if err == nil {
		err = r.admit(world)
	}
	if err != nil {
		r.writeError(w, err)
		return
	}
	defer r.leave(world)
	if _, err := r.followOf(req.Context(), world); err != nil {
		r.writeError(w, err)
		return
	}
	join := r.hub.Join
	if events {
		join = r.hub.JoinEvents
	}
	wt, err := join(world, v)
	if err != nil {
		r.writeError(w, err)
		return
	}
	defer wt.Close()
	h := &wscork.Hijack{ResponseWriter: w, Timeout: r.cfg.WriteTimeout}
	ws, err := websocket.Accept(h, req, &websocket.AcceptOptions{Subprotocols: spectator.Subprotocols})
	if err != nil {
		return // Accept has answered
	}
	defer ws.CloseNow()
	codec := spectator.CodecOf(ws.Subprotocol())
	if lean {
		codec |= spectator.CodecLean
	}
	ctx := ws.CloseRead(req.Context()) // the viewer says nothing; its close ends ctx
	defer context.AfterFunc(r.ctx, func() { ws.Close(websocket.StatusGoingAway, "relay closing") })()
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
		if err := r.writeQueued(ctx, ws, h.Conn, f, wt, codec); err != nil {
			return
		}
	}
}

// writeQueued writes f and every frame queued behind it in one socket
// write (wscork.Batch; more when they pass wscork.Limit, 16 KiB: a big
// frame goes with the bytes corked before it, not copied), each frame
// within the write timeout as when they went one by one (those writes
// happen inside the frames' writes; one timeout for the whole batch cut off a viewer on a slow link
// whose backlog took longer than it, where frame by frame it would have
// fallen behind and skipped to a keyframe; the socket's own write
// deadline bounds the last flush, at Uncork). A joiner's frames
// start with the view's join keyframe and every delta made since (up to
// KeyframeInterval/Tick of them), and the library flushes each message to
// the socket: a join cost one write system call per frame, the most of a
// relay's CPU per join (BenchmarkRelayJoin, docs/BENCHMARKS.md). A viewer
// that keeps up has one frame at a time: one write, as before; the bytes
// and their order are the same. The frames a batch took from the queue
// and has not written count as queued (Watch.InFlight): a slow viewer
// skips to a keyframe as far behind as when frames went one by one, not
// twice that. A frame it cannot encode closes the connection after the
// batch.
func (r *Relay) writeQueued(ctx context.Context, ws *websocket.Conn, cc *wscork.Conn, f *spectator.Frame, wt *spectator.Watch, codec spectator.Codec) error {
	err := wscork.Batch(cc, f, wt.Frames(), wt.InFlight(), func(f *spectator.Frame) error {
		ctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
		defer cancel()
		return r.write(ctx, ws, f, codec)
	})
	if errors.Is(err, errEncode) {
		ws.Close(websocket.StatusInternalError, wire.CodeInternal)
	}
	return err
}

// errEncode is a frame the relay could not encode for its viewer.
var errEncode = errors.New("relay: encode a frame")

// viewer reads a watcher's delay and mode; the view is the relay's.
func (r *Relay) viewer(req *http.Request) (spectator.Viewer, bool, error) {
	var v spectator.Viewer
	if err := r.checkView(req); err != nil {
		return v, false, err
	}
	q := req.URL.Query()
	if d := q.Get("delay"); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil || delay < 0 || delay > fsm.MaxViewDelay {
			return v, false, fmt.Errorf("%w: delay must be a duration from 0 to %s, got %q", ErrBadRequest, fsm.MaxViewDelay, d)
		}
		v.Delay = delay
	}
	switch m := q.Get("mode"); m {
	case "", "state":
		return v, false, nil
	case "events":
		return v, true, nil
	default:
		return v, false, fmt.Errorf("%w: mode must be state or events, got %q", ErrBadRequest, m)
	}
}

// write sends one frame (until ctx ends).
func (r *Relay) write(ctx context.Context, ws *websocket.Conn, f *spectator.Frame, codec spectator.Codec) error {
	data, binary, err := f.Encoded(codec)
	if err != nil {
		return fmt.Errorf("%w: %v", errEncode, err)
	}
	typ := websocket.MessageText
	if binary {
		typ = websocket.MessageBinary
	}
	if err := ws.Write(ctx, typ, data); err != nil {
		return err
	}
	r.metrics.frames.Inc()
	r.metrics.bytes.Add(float64(len(data)))
	return nil
}

// closeStatus is the close of a watch whose frames ended with err.
func closeStatus(err error) (websocket.StatusCode, string) {
	switch {
	case err == nil, errors.Is(err, spectator.ErrClosed), errors.Is(err, ErrClosed):
		return websocket.StatusGoingAway, "relay closing"
	case errors.Is(err, spectator.ErrRulesChanged):
		return CloseRulesChanged, "rules changed: join again"
	}
	st, code := status(err)
	if st == http.StatusGone || st == http.StatusNotFound {
		return CloseGone, code
	}
	return websocket.StatusInternalError, code
}
