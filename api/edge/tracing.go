package edge

import (
	"net/http"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/tracing"
	"github.com/gsd-dev/gsd/wire"
)

// Tracing of the action path (internal/tracing, docs/OPERATIONS.md): with
// Config.Tracer set, every request on a traced route gets a span named by
// its route, the internal call that forwards it to the leader a client
// span whose W3C trace context goes along in the request's headers, and
// the leader's span of the forwarded request joins that trace. Only
// internal routes take a caller's trace context: a public client cannot
// make its requests sampled. A play action gets its span in ActOnLeader,
// and its event's offer by this node's hub one under it (TraceFanout).

// tracedRoutes are the routes of the action path that get a span each:
// actions and batches, as clients send them and as followers forward them.
var tracedRoutes = map[string]bool{
	"POST /v1/worlds/{world}/actions":                          true,
	"POST /v1/worlds/{world}/actions:batch":                    true,
	"POST " + InternalPrefix + "/worlds/{world}/actions":       true,
	"POST " + InternalPrefix + "/worlds/{world}/actions:batch": true,
	// The compact act route, by which followers forward play actions.
	"POST " + InternalPrefix + "/worlds/{world}/actions:forward": true,
}

// Span names of the edge (the HTTP routes' spans are named by the route).
const (
	spanPlayAct = "gsd.play.act"
	spanForward = "gsd.forward"
	spanFanout  = "gsd.fanout.offer"
)

// traceRequest starts r's span when pattern is a traced route and returns
// the request to serve, carrying the span, and the function that ends it.
func (s *Core) traceRequest(r *http.Request, pattern string, sw *statusWriter) (*http.Request, func()) {
	if !tracedRoutes[pattern] {
		return r, func() {}
	}
	ctx, span := s.cfg.Tracer.StartRequest(r, pattern, IsInternalPattern(pattern))
	// Unsampled too, the context goes on: a forward carries the decision.
	r = r.WithContext(ctx)
	if !span.Recording() {
		return r, func() {}
	}
	span.Set(tracing.String("gsd.world", r.PathValue("world")))
	return r, func() {
		span.Set(tracing.Int("http.response.status_code", int64(sw.code())))
		span.End()
	}
}

// traceCall starts the client span of an internal call to rt's node under
// the span req's context carries, and puts its trace context in req's
// headers; a zero Span when nothing is traced.
func traceCall(req *http.Request, rt Route, path string) tracing.Span {
	span := tracing.StartClient(req.Context(), spanForward, req.Header)
	span.Set(tracing.String("gsd.leader", rt.Node), tracing.String("url.path", path))
	return span
}

// endActSpan ends a play action's span with what became of the action: its
// world and name, and the committed event's seq and status. An action
// that failed has no event to fan out.
func (s *Core) endActSpan(span tracing.Span, a *fsm.Action, ev wire.Event, err error) {
	span.Set(tracing.String("gsd.world", a.World), tracing.String("gsd.action", a.Name))
	if err == nil {
		span.Set(tracing.Int("gsd.seq", int64(ev.Seq)), tracing.String("gsd.status", ev.Status))
	} else {
		s.cfg.Tracer.Forget(actKey(a))
	}
	span.Fail(err)
	span.End()
}

// actKey is the key of a's event: the world, player and client seq.
func actKey(a *fsm.Action) tracing.Key {
	return tracing.Key{World: a.World, Player: a.Player, Seq: a.Seq}
}

// TraceFanout records, for each event of a sampled play action of this
// node among evs, a gsd.fanout.offer span under the action's span: the
// world's hub offering the batch (from start, unix nanoseconds, until
// now) to its members, the node's play connections to the world. One span
// per traced event and node, not per connection: a connection's writes
// would outnumber the actions many times over. With nothing awaiting, it
// costs one atomic load.
func (s *Core) TraceFanout(evs []*fsm.Event, start int64, members int) {
	t := s.cfg.Tracer
	if !t.Awaiting() {
		return
	}
	var end time.Time
	for _, ev := range evs {
		p, ok := t.Take(tracing.Key{World: ev.World, Player: ev.Player, Seq: ev.ClientSeq})
		if !ok {
			continue
		}
		if end.IsZero() {
			end = time.Now()
		}
		p.Record(spanFanout, time.Unix(0, start), end, tracing.Int("gsd.seq", int64(ev.Seq)), tracing.Int("gsd.members", int64(members)))
	}
}
