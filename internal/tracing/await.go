package tracing

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// A sampled play action's event is fanned out later, by the world's hub,
// which knows the event but not the action's trace. The action's span is
// kept here under the event's idempotency key until the hub meets the
// event (Take) or the action fails (Forget). Untraced fan-outs ask
// Awaiting, one atomic load.

// maxAwaiting bounds the actions kept: when it is reached, entries older
// than awaitTTL go (events that never reached a hub here: the player
// left); a still-full registry traces no more fan-outs until room frees.
const (
	maxAwaiting = 1024
	awaitTTL    = time.Minute
)

// Key names an action's event: its world, player and client seq.
type Key struct {
	World, Player string
	Seq           uint64
}

// Parent is a span's identity, kept to record later spans under it.
type Parent struct {
	sc trace.SpanContext
	tp trace.TracerProvider
}

// Record records a finished span from start to end under p, with attrs.
func (p Parent) Record(name string, start, end time.Time, attrs ...Attr) {
	ctx := trace.ContextWithSpanContext(context.Background(), p.sc)
	_, s := p.tp.Tracer(scope).Start(ctx, name, trace.WithTimestamp(start))
	for _, a := range attrs {
		s.SetAttributes(attribute.KeyValue(a))
	}
	s.End(trace.WithTimestamp(end))
}

type awaited struct {
	p  Parent
	at time.Time
}

// awaits is a Tracer's registry of actions awaiting their fan-out.
type awaits struct {
	n  atomic.Int32
	mu sync.Mutex
	m  map[Key]awaited
}

// Await keeps span, when it records, under k for a later Take.
func (t *Tracer) Await(k Key, span Span) {
	if t == nil || !span.Recording() {
		return
	}
	now := time.Now()
	a := &t.awaits
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[Key]awaited)
	}
	if len(a.m) >= maxAwaiting {
		for k, w := range a.m {
			if now.Sub(w.at) > awaitTTL {
				delete(a.m, k)
			}
		}
		if len(a.m) >= maxAwaiting {
			return
		}
	}
	a.m[k] = awaited{p: Parent{sc: span.s.SpanContext(), tp: span.s.TracerProvider()}, at: now}
	a.n.Store(int32(len(a.m)))
}

// Awaiting reports whether any action awaits its fan-out.
func (t *Tracer) Awaiting() bool { return t != nil && t.awaits.n.Load() > 0 }

// Take returns and forgets the span kept under k.
func (t *Tracer) Take(k Key) (Parent, bool) {
	if !t.Awaiting() {
		return Parent{}, false
	}
	a := &t.awaits
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.m[k]
	if ok {
		delete(a.m, k)
		a.n.Store(int32(len(a.m)))
	}
	return w.p, ok
}

// Forget forgets the span kept under k (its action failed: no event).
func (t *Tracer) Forget(k Key) { t.Take(k) }
