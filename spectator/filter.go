package spectator

import (
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// Filter cuts events down to what a view may see. It keeps the world's
// State from the events it prepares, since what a view may see of an
// event depends on the state: an entity's owner and team, the viewing
// player's team, and the versions of the fields of an entity being
// deleted (a delete's version is its entity's last one, which may be a
// hidden field's).
//
// Each event is prepared once (Prepare, in seq order), then filtered per
// view (Event): views are shared, so a stream serves each view's filtered
// event to all its viewers, encoded once. Not safe for concurrent use.
type Filter struct {
	access *Access
	state  *State
	teamOf TeamFunc
	ended  uint64 // the seq of the rules update that ends access (Access.ends)
}

// NewFilter returns a filter under a that keeps s (the state before the
// next event it will prepare); teamOf gives players' teams when they come
// from claims or session data, and may be nil otherwise.
func NewFilter(a *Access, s *State, teamOf TeamFunc) *Filter {
	return &Filter{access: a, state: s, teamOf: teamOf}
}

// State returns the state the filter keeps.
func (f *Filter) State() *State { return f.state }

// Prepared is one event applied to the filter's state, with what its
// filtering needs to know of that state; shared by every view, read-only.
type Prepared struct {
	Event *fsm.Event
	who   []who                  // per change: the entity's owner and team
	whole map[int][]fieldVersion // per entity-level change (Field ""): the entity's fields before it
}

// Prepare applies the next event to the state and prepares it for
// filtering. An event out of order is ErrGap and changes nothing. After
// the event of a rules update later than the filter's rules (NewAccessAt)
// every event is ErrRulesChanged: the events after the update are the
// new rules' to cut.
func (f *Filter) Prepare(ev *fsm.Event) (*Prepared, error) {
	if f.ended != 0 {
		return nil, fmt.Errorf("%w: at seq %d of world %s", ErrRulesChanged, f.ended, f.state.world)
	}
	p, err := prepareEvent(f.access, f.state, f.teamOf, ev, nil)
	if err == nil && f.access.ends(ev) {
		f.ended = ev.Seq
	}
	return p, err
}

// prepareEvent applies ev to s and prepares it for filtering under a;
// each, when set, is called before each change as State.apply does.
func prepareEvent(a *Access, s *State, teamOf TeamFunc, ev *fsm.Event, each func(i int)) (*Prepared, error) {
	p := &Prepared{Event: ev}
	if !a.Restricted() {
		return p, s.apply(ev, each)
	}
	p.who = make([]who, len(ev.Changes))
	var gone map[string]who // entities the event deletes: their owner and team before
	err := s.apply(ev, func(i int) {
		if each != nil {
			each(i)
		}
		c := &ev.Changes[i]
		if c.Field != "" {
			return
		}
		if p.whole == nil {
			p.whole = make(map[int][]fieldVersion)
			gone = make(map[string]who)
		}
		p.whole[i] = s.fieldVersions(c.Entity)
		p.who[i] = s.who(a, teamOf, c.Entity)
		gone[c.Entity] = p.who[i]
	})
	if err != nil {
		return nil, err
	}
	for i := range ev.Changes {
		c := &ev.Changes[i]
		if c.Field == "" {
			continue
		}
		if _, exists := s.ents[c.Entity]; exists || gone == nil {
			p.who[i] = s.who(a, teamOf, c.Entity)
		} else {
			p.who[i] = gone[c.Entity]
		}
	}
	return p, nil
}

// Event returns p's event as view may see it, or nil when the view may see
// nothing of it. What the view may not see is gone from the copy: changes
// of fields it may not see (values, set elements, per-field versions,
// conflict payloads alike), and an entity-level change (a delete, or a
// conflict on an entity's version) carries the largest version among the
// entity's fields the view may see, or is gone when there is none. An
// event of another player with nothing left to show is dropped whole
// (a rejection too: that someone tried, and why, may be about a hidden
// field; a rules update's event, which holds no field, is kept), and
// other players' client seqs are zeroed (they count that
// player's actions, hidden ones too). The viewer's own events always
// come, with their status and reason. Without restricted fields the event
// is returned as it is.
//
// A player's team is the one the filter's state gives it now.
func (f *Filter) Event(p *Prepared, view View) *fsm.Event {
	return filterEvent(f.access, p, f.access.bound(view, f.state, f.teamOf))
}

func filterEvent(a *Access, p *Prepared, view View) *fsm.Event {
	ev := p.Event
	if !a.Restricted() {
		return ev
	}
	own := view.player != "" && ev.Player == view.player
	out := *ev
	out.Changes = nil
	for i, c := range ev.Changes {
		if c.Field == "" {
			v, ok := versionOf(a, view, p.whole[i], p.who[i])
			if !ok {
				continue
			}
			c.Version = v
		} else if !a.visible(view, c.Field, p.who[i]) {
			continue
		}
		out.Changes = append(out.Changes, c)
	}
	if _, rules := RulesUpdate(ev); len(out.Changes) == 0 && !own && !rules {
		return nil // a rules update's event shows to all: it holds no field
	}
	if !own {
		out.ClientSeq = 0
	}
	return &out
}
