package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/store"
)

// Filtered event streams (issue 13). A stream's caller resolves to a
// Sight (edge.Sight); one who sees everything, or any caller of a world
// whose rules restrict no field, takes the world's plain fan and its
// shared lines. Any other caller's stream is cut to its view: each event
// passes spectator's filter before it is encoded, once per view. The
// streams of one world and rules version share one spectator.Events,
// which prepares each event once for every view, and the streams of one
// view share a fan of their own (viewFans) whose chunks hold the view's
// lines, so a thousand spectators of one view cost one filtering and one
// encoding per event. A delayed view (a caster class) takes no fan: its
// stream reads the feed on its own and writes each event once it is older
// than the delay in the leader's time (spectator.Delay, with its skew
// bound).
//
// A rules update is the world's event once every voter reads log 12
// (spectator.RulesUpdate): a stream that is not everything's writes the
// events up to it, it included, and ends there with a rules_changed error
// line (unavailable, 503: open it again from the next seq), so no event
// after the update is cut under the old rules (passRules). Updates
// without the event (a cluster still at log 11) are found by polling: the
// stream checks its world's rules version (edge.RulesTTL old at most)
// before each write and ends the same way when they changed.

// ErrRulesChanged ends a filtered stream whose world's rules changed.
var ErrRulesChanged = fmt.Errorf("%w: %w: open the stream again from the next seq", edge.ErrUnavailable, spectator.ErrRulesChanged)

// viewKey names the fans of one view of one world under one rules version.
type viewKey struct {
	world   string
	version edge.RulesRef
	view    spectator.View
	lean    bool // lean lines (eventlean.go)
}

type sharedFans struct {
	hub  *fanout.Hub
	refs int
}

// views holds the filtered streams' shared parts.
type views struct {
	vis  *edge.Visibility
	mu   sync.Mutex
	fans map[viewKey]*sharedFans
}

// viewed is what a stream whose caller does not see everything needs:
// its view and where its events are prepared.
type viewed struct {
	access  *spectator.Access
	version edge.RulesRef
	filter  bool // cut events to view; false: every event, but the rules are watched
	view    spectator.View
	delay   time.Duration
	events  *spectator.Events // the world's shared prepared events
	own     *spectator.Events // the stream's own, once it was behind the shared ones
	fans    *fanout.Hub       // the view's fans (nil: delayed, or unfiltered)
	key     viewKey
}

// sightOf resolves a stream's caller under world's rules: nil for a
// caller who sees everything of every world.
func (s *Service) sightOf(r *http.Request, world string, lean bool) (*viewed, error) {
	sight, err := s.Sight(r)
	if err != nil || sight.All {
		return nil, err
	}
	a, info, err := s.views.vis.Access(world)
	if err != nil {
		return nil, err
	}
	view, delay, filter, err := edge.ViewOf(a, sight)
	if err != nil {
		return nil, err
	}
	return &viewed{access: a, version: edge.RulesOf(info), filter: filter, view: view, delay: delay,
		key: viewKey{world: world, version: edge.RulesOf(info), view: view, lean: lean}}, nil
}

// acquire gives v its shared parts: the world's prepared events and, for
// an undelayed view, the view's fans. Every acquire is paired with a
// release.
func (s *Service) acquire(v *viewed) error {
	if !v.filter {
		return nil
	}
	v.events = s.views.vis.Events(v.key.world, v.version, v.access)
	if v.delay > 0 {
		return nil
	}
	s.views.mu.Lock()
	defer s.views.mu.Unlock()
	sf := s.views.fans[v.key]
	if sf == nil {
		cfg := s.fanConfig()
		enc := appendLine
		if v.key.lean {
			enc = appendLean
		}
		cfg.Encode = v.events.Encoder(v.view, enc)
		hub, err := fanout.New(cfg)
		if err != nil {
			s.views.vis.ReleaseEvents(v.key.world, v.version)
			return err
		}
		sf = &sharedFans{hub: hub}
		if s.views.fans == nil {
			s.views.fans = make(map[viewKey]*sharedFans)
		}
		s.views.fans[v.key] = sf
	}
	sf.refs++
	v.fans = sf.hub
	return nil
}

// release gives back what acquire gave v; the last stream of a view
// closes its fans.
func (s *Service) release(v *viewed) {
	if !v.filter {
		return
	}
	s.views.vis.ReleaseEvents(v.key.world, v.version)
	var closing *fanout.Hub
	s.views.mu.Lock()
	if sf := s.views.fans[v.key]; sf != nil && v.fans == sf.hub {
		if sf.refs--; sf.refs == 0 {
			delete(s.views.fans, v.key)
			closing = sf.hub
		}
	}
	s.views.mu.Unlock()
	if closing != nil {
		closing.Close() // its last member has detached: no fan runs
	}
}

// appendLine appends ev's NDJSON line. Filtered events are copies made per
// view: the WireCache (keyed by the feed's events) would only thrash.
func appendLine(b []byte, ev *fsm.Event) ([]byte, error) {
	j, err := json.Marshal(edge.EventJSON(ev, false))
	if err != nil {
		return b, err
	}
	return append(append(b, j...), '\n'), nil
}

// line returns ev's line as v may see it (nil: nothing of it), lean
// (eventlean.go) or whole.
func (v *viewed) line(s *Service, ev *fsm.Event, lean bool) ([]byte, error) {
	switch {
	case !v.filter && lean:
		return s.leanLine(ev)
	case !v.filter:
		return s.Wire().Line(ev)
	}
	out, err := s.views.vis.Cut(v.events, &v.own, v.access, v.view, ev)
	if errors.Is(err, spectator.ErrRulesChanged) {
		return nil, ErrRulesChanged // past an update passRules did not see written
	}
	if err != nil || out == nil {
		return nil, err
	}
	if lean {
		return appendLean(nil, out)
	}
	return appendLine(nil, out)
}

// passRules returns nil when v's stream goes on past the event of a
// rules update to version (spectator.RulesUpdate), else ErrRulesChanged:
// it goes on past an update to its own rules or older ones, and a stream
// that sends every event past one whose rules, the world's now, restrict
// no field (as checkRules).
func (v *viewed) passRules(s *Service, version uint64) error {
	if version <= v.version.Version {
		return nil
	}
	if !v.filter && v.key.view == (spectator.View{}) {
		a, info, err := s.views.vis.Access(v.key.world)
		if err == nil && !a.Restricted() && info.RulesVersion == version && info.Incarnation == v.version.Incarnation {
			v.version = edge.RulesOf(info)
			return nil
		}
	}
	return ErrRulesChanged
}

// checkRules returns ErrRulesChanged when v's world's rules changed (or
// the world is gone): any change for a filtered stream, one to rules that
// restrict a field for a stream that sends every event (which otherwise
// goes on under the new version, as streams did before visibility).
func (v *viewed) checkRules(s *Service) error {
	now, ok := s.views.vis.RulesVersion(v.key.world, v.version)
	switch {
	case !ok:
		return ErrRulesChanged
	case now == v.version:
		return nil
	case !v.filter:
		a, info, err := s.views.vis.Access(v.key.world)
		if err == nil && !a.Restricted() && v.key.view == (spectator.View{}) {
			v.version = edge.RulesOf(info)
			return nil
		}
	}
	return ErrRulesChanged
}

// serveDelayed serves a delayed view from the stream's own subscription:
// each event goes out once this node's clock reads its leader time plus
// the delay plus the clock-skew bound (spectator.Delay), in seq order.
func (st *eventStream) serveDelayed(ctx context.Context, sub *store.Subscription) {
	d := spectator.NewDelay(st.v.delay, spectator.DefaultMaxClockSkew)
	for {
		at, held := d.Next()
		if !held {
			evs, err := sub.Next(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				st.write(ctx, nil, err)
				return
			}
			d.Push(evs...)
			continue
		}
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		evs := d.Release(time.Now())
		if len(evs) == 0 {
			continue
		}
		if !st.write(ctx, evs, nil) || st.out.Flush() != nil {
			return
		}
		st.next = evs[len(evs)-1].Seq + 1
	}
}
