package spectator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// HubConfig configures a Hub.
type HubConfig struct {
	// Subscribe opens a world's feed (required).
	Subscribe fanout.SubscribeFunc
	// Rules returns a world's current rules (required unless RulesAt is
	// set).
	Rules func(world string) (fsm.Rules, error)
	// RulesAt, when set, is used instead of Rules: the world's current
	// rules and their version, read at once. A pipeline that knows its
	// rules version stops at the event of a later rules update
	// (NewAccessAt), exactly where the old rules end.
	RulesAt func(world string) (fsm.Rules, uint64, error)
	// Seed returns a state to start a world's pipeline from (a read of the
	// store's state at a seq, with that event's leader time); nil, or a
	// seed the delay refuses, starts from the world's first event.
	Seed func(world string) (*State, error)
	// TeamOf returns the players' teams of a world when they come from
	// claims or session data; nil: no such teams.
	TeamOf func(world string) TeamFunc
	// Pipeline is the template of every pipeline's Config: its World,
	// Access, Subscribe, Seed, TeamOf, Aggregates and Delay are set per
	// pipeline.
	Pipeline Config
	// ViewsLinger is how long a pipeline that answered Views is kept
	// running after the call (each call renews it), so that a caller who
	// polls its views reads a pipeline that follows the feed rather than
	// one started anew each time; 0 stops it after the call when nobody
	// watches.
	ViewsLinger time.Duration
}

// DefaultViewsLinger is the ViewsLinger the watch route's hub uses.
const DefaultViewsLinger = 30 * time.Second

// Hub runs the pipelines of a node's watchers: one per world and delay,
// started by its first viewer and stopped by its last (fanout.Hub's
// lifecycle, one level up). It is what a watch endpoint calls.
type Hub struct {
	cfg HubConfig

	mu     sync.Mutex
	pipes  map[pipeKey]*hubPipe
	kept   map[pipeKey]*kept // pipelines held for ViewsLinger
	closed bool
}

// kept is a watch that holds a pipeline running after a Views call.
type kept struct {
	w     *Watch
	timer *time.Timer
}

// hubPipe is a running pipeline and the rules it enforces.
type hubPipe struct {
	p     *Pipeline
	rules []byte // the rules as JSON
}

type pipeKey struct {
	world string
	delay time.Duration
}

// NewHub returns a Hub; it starts nothing until a viewer joins.
func NewHub(cfg HubConfig) (*Hub, error) {
	if cfg.Subscribe == nil || cfg.Rules == nil && cfg.RulesAt == nil {
		return nil, errors.New("spectator: a hub needs Subscribe and Rules")
	}
	return &Hub{cfg: cfg, pipes: make(map[pipeKey]*hubPipe), kept: make(map[pipeKey]*kept)}, nil
}

// Watch is one viewer's place in a hub.
type Watch struct {
	hub *Hub
	key pipeKey
	p   *Pipeline
	m   *Member
}

// Frames returns the viewer's frames (Member.Frames).
func (w *Watch) Frames() <-chan *Frame { return w.m.Frames() }

// InFlight is the count of the frames taken from Frames and not yet
// written (Member.InFlight).
func (w *Watch) InFlight() *atomic.Int32 { return w.m.InFlight() }

// Err returns why the viewer's frames ended when its pipeline stopped
// (nil while it runs, ErrClosed after Close).
func (w *Watch) Err() error { return w.p.Err() }

// Close ends the watch; the pipeline stops when it was its last viewer.
func (w *Watch) Close() {
	h := w.hub
	h.mu.Lock()
	w.p.Leave(w.m)
	hp := h.pipes[w.key]
	stop := w.p.Viewers() == 0 && hp != nil && hp.p == w.p
	if stop {
		delete(h.pipes, w.key)
	}
	h.mu.Unlock()
	if stop {
		w.p.Close()
	}
}

// Join starts watching world as v. Errors: the world's rules (unknown
// world), the viewer (ErrUnknownClass, ErrBadDelay), rules the package
// cannot enforce (ErrBadRules), the feed's.
func (h *Hub) Join(world string, v Viewer) (*Watch, error) { return h.join(world, v, false) }

// JoinEvents is Join for a filtered, delayed event stream: after its
// keyframe the viewer gets every event as its view may see it
// (Pipeline.JoinEvents).
func (h *Hub) JoinEvents(world string, v Viewer) (*Watch, error) { return h.join(world, v, true) }

// rules returns world's current rules and, with RulesAt, their version.
func (h *Hub) rules(world string) (fsm.Rules, uint64, error) {
	if h.cfg.RulesAt != nil {
		return h.cfg.RulesAt(world)
	}
	r, err := h.cfg.Rules(world)
	return r, 0, err
}

func (h *Hub) join(world string, v Viewer, events bool) (*Watch, error) {
	rules, version, err := h.rules(world)
	if err != nil {
		return nil, err
	}
	a, err := NewAccessAt(rules, version)
	if err != nil {
		return nil, err
	}
	view, delay, err := a.Resolve(v)
	if err != nil {
		return nil, err
	}
	rb, err := json.Marshal(rules)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRules, err)
	}
	key := pipeKey{world, delay}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	// A world's rules changed (an update the pipelines did not meet in
	// the feed: log 11's, or one this join read first): its pipelines
	// enforce the old ones, so they end, and their viewers with them
	// (ErrRulesChanged: join again).
	for k, hp := range h.pipes {
		if k.world == world && !bytes.Equal(hp.rules, rb) {
			hp.p.stop(ErrRulesChanged)
			delete(h.pipes, k)
		}
	}
	hp := h.pipes[key]
	if hp == nil || hp.p.Err() != nil {
		p, err := h.start(world, rules, a, delay)
		if err != nil {
			return nil, err
		}
		hp = &hubPipe{p: p, rules: rb}
		h.pipes[key] = hp
	}
	p := hp.p
	join := p.Join
	if events {
		join = p.JoinEvents
	}
	m, err := join(view)
	if err != nil {
		if p.Viewers() == 0 { // none to serve: do not leave it running
			delete(h.pipes, key)
			p.Close()
		}
		return nil, err
	}
	return &Watch{hub: h, key: key, p: p, m: m}, nil
}

// Views returns the aggregated views of world that v may see, as of the
// seq they are at, from the pipeline of v's delay: a running one, or one
// started for the call (an undelayed one starts from the seed, the world's
// current state; a delayed one from what its feed released so far, which
// may be nothing yet), kept running for ViewsLinger after the call.
// Errors are Join's.
func (h *Hub) Views(world string, v Viewer) (uint64, []wire.ViewFrame, error) {
	w, err := h.join(world, v, false)
	if err != nil {
		return 0, nil, err
	}
	defer h.keep(w)
	return w.p.Views(w.m.key.view)
}

// keep holds w's pipeline running for ViewsLinger, renewing the hold of
// that pipeline when there is one, and ends w when it is not needed.
func (h *Hub) keep(w *Watch) {
	h.mu.Lock()
	old := h.kept[w.key]
	if h.closed || h.cfg.ViewsLinger <= 0 || old != nil && old.w.p == w.p {
		if old != nil && !h.closed {
			old.timer.Reset(h.cfg.ViewsLinger)
		}
		h.mu.Unlock()
		w.Close()
		return
	}
	k := &kept{w: w}
	k.timer = time.AfterFunc(h.cfg.ViewsLinger, func() { h.release(w.key, k) })
	h.kept[w.key] = k
	h.mu.Unlock()
	if old != nil { // held a pipeline that stopped since (its rules changed)
		old.timer.Stop()
		old.w.Close()
	}
}

// release ends the hold k of key's pipeline.
func (h *Hub) release(key pipeKey, k *kept) {
	h.mu.Lock()
	if h.kept[key] == k {
		delete(h.kept, key)
	}
	h.mu.Unlock()
	k.w.Close()
}

// start starts world's pipeline with delay.
func (h *Hub) start(world string, rules fsm.Rules, a *Access, delay time.Duration) (*Pipeline, error) {
	ag, err := NewAggregates(a, rules)
	if err != nil {
		return nil, err
	}
	cfg := h.cfg.Pipeline
	cfg.World, cfg.Access, cfg.Subscribe, cfg.Aggregates, cfg.Delay = world, a, h.cfg.Subscribe, ag, delay
	cfg.Seed, cfg.TeamOf = nil, nil
	if h.cfg.TeamOf != nil {
		cfg.TeamOf = h.cfg.TeamOf(world)
	}
	if h.cfg.Seed != nil {
		s, err := h.cfg.Seed(world)
		if err != nil {
			return nil, fmt.Errorf("spectator: seed world %s: %w", world, err)
		}
		cfg.Seed = s
		p, err := New(cfg)
		if err == nil && a.version != 0 {
			// The seed is read after the rules: an update between the two
			// is behind the pipeline's feed, where it would not meet it.
			if _, now, rerr := h.rules(world); rerr != nil || now != a.version {
				p.Close()
				return nil, fmt.Errorf("%w: world %s while its pipeline started", ErrRulesChanged, world)
			}
		}
		if !errors.Is(err, ErrSeedTooNew) {
			return p, err
		}
		// Too new for the delay: build the state from the feed instead
		// (the refusal came before the aggregates were touched).
		cfg.Seed = nil
	}
	return New(cfg)
}

// RulesChanged ends world's pipelines, and their viewers with them
// (ErrRulesChanged), for the edge to call when it learns of a rules
// update: a running pipeline enforces the rules it started with, and a
// join only compares the rules of the pipelines it meets.
func (h *Hub) RulesChanged(world string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, hp := range h.pipes {
		if k.world == world {
			hp.p.stop(ErrRulesChanged)
			delete(h.pipes, k)
		}
	}
}

// Close stops every pipeline; their viewers' channels close.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	pipes, held := h.pipes, h.kept
	h.pipes, h.kept = map[pipeKey]*hubPipe{}, map[pipeKey]*kept{}
	h.mu.Unlock()
	for _, k := range held {
		k.timer.Stop() // one that fired meanwhile ends its watch too: Close is idempotent
		k.w.Close()
	}
	for _, hp := range pipes {
		hp.p.Close()
	}
}

// Pipelines returns how many pipelines run.
func (h *Hub) Pipelines() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pipes)
}
