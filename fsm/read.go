package fsm

import (
	"fmt"
)

// FieldView is one field as readers see it.
type FieldView struct {
	Name    string
	Policy  Policy
	Value   Value   // authoritative/max/min: the value; counter: the total
	Set     []Value // set: the elements, sorted
	Version uint64
}

// Plain returns the field's value as a plain Go value (a set as a slice).
func (fv FieldView) Plain() any {
	if fv.Policy == PolicySet {
		out := make([]any, len(fv.Set))
		for i, v := range fv.Set {
			out[i] = v.Any()
		}
		return out
	}
	return fv.Value.Any()
}

// EntityView is a consistent copy of one entity.
type EntityView struct {
	ID      string
	Version uint64
	Fields  []FieldView // sorted by name
	Seq     uint64      // the world seq this view reflects
}

// WorldInfo summarises a world.
type WorldInfo struct {
	ID       string
	Origin   string
	Rules    Rules
	Seq      uint64
	Index    uint64
	Entities int
	Players  int
	Hash     uint64

	// RulesVersion is 1 at creation and rises with each rules update.
	RulesVersion uint64
	// Incarnation is the log index of the world's creation: a world
	// deleted and created again gets a new one (0: created before
	// incarnations, restored from an older snapshot).
	Incarnation uint64
	// Sessions is how many sessions the world holds (what its rules'
	// capacity bounds).
	Sessions int
	// Moved is the world's fence once it moved to another shard.
	Moved *Fence
	// Imported is the log index of the world's import on this group, 0
	// when it was created here: its events on this group come after it.
	Imported uint64
	// Salted reports audit leaves of version 2, salted per player
	// (salt.go).
	Salted bool
}

// HashPoint is a world's state hash after the event with seq Seq.
type HashPoint struct {
	Seq   uint64
	Index uint64
	Hash  uint64
}

// AppliedIndex returns the Raft index of the last entry the FSM finished applying.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// Entity returns a copy of one entity.
func (f *FSM) Entity(worldID, id string) (EntityView, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return EntityView{}, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	e := w.entities[id]
	if e == nil {
		return EntityView{}, fmt.Errorf("%w: entity %s in %s", ErrNotFound, id, worldID)
	}
	v := EntityView{ID: id, Version: e.version(), Seq: w.seq, Fields: make([]FieldView, len(e.fields))}
	for i, fl := range e.fields {
		fv := FieldView{Name: fl.name, Policy: fl.policy, Version: fl.version}
		if fl.policy == PolicySet {
			fv.Set = fl.elements()
		} else {
			fv.Value = fl.current()
		}
		v.Fields[i] = fv
	}
	return v, nil
}

func (w *world) info() WorldInfo {
	return WorldInfo{ID: w.id, Origin: w.origin, Rules: w.rules, Seq: w.seq, Index: w.index,
		Entities: len(w.entities), Players: len(w.players), Hash: w.stateHash(), RulesVersion: w.rulesVersion,
		Incarnation: w.incarnation, Sessions: len(w.sessions), Moved: w.moved, Imported: w.imported,
		Salted: w.isSalted()}
}

// World returns one world's summary.
func (f *FSM) World(id string) (WorldInfo, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[id]
	if w == nil {
		return WorldInfo{}, fmt.Errorf("%w: %s", ErrUnknownWorld, id)
	}
	return w.info(), nil
}

// Worlds returns all worlds' summaries, sorted by id.
func (f *FSM) Worlds() []WorldInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]WorldInfo, 0, len(f.worlds))
	for _, id := range sortedKeys(f.worlds) {
		out = append(out, f.worlds[id].info())
	}
	return out
}

// Hash returns the world's state hash now (seq 0) or after event seq, if
// that seq is still in the retained history.
func (f *FSM) Hash(worldID string, seq uint64) (HashPoint, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return HashPoint{}, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	if seq == 0 || seq == w.seq {
		return HashPoint{Seq: w.seq, Index: w.index, Hash: w.stateHash()}, nil
	}
	if seq < w.seq && len(w.history) > 0 {
		if p := w.history[seq%uint64(len(w.history))]; p.seq == seq {
			return HashPoint{Seq: p.seq, Index: p.index, Hash: p.hash}, nil
		}
	}
	return HashPoint{}, fmt.Errorf("%w: world %s seq %d (now %d)", ErrSeqUnknown, worldID, seq, w.seq)
}

// Nodes returns the replicated cluster members' addresses, sorted by id.
func (f *FSM) Nodes() []NodeInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]NodeInfo, 0, len(f.nodes))
	for _, id := range sortedKeys(f.nodes) {
		out = append(out, f.nodes[id])
	}
	return out
}

// Node returns one member's addresses.
func (f *FSM) Node(id string) (NodeInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, ok := f.nodes[id]
	return n, ok
}

// Check validates an action against the current (possibly stale) rules
// before it is proposed, so the edge can answer bad input with a 4xx. The
// FSM checks again at apply time, when the answer is final.
func (f *FSM) Check(a *Action) error {
	if err := a.Validate(); err != nil {
		return err
	}
	rs, ok := (*f.view.Load())[a.World] // lock-free: see FSM.view
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownWorld, a.World)
	}
	if rs.moved != nil {
		return &MovedError{*rs.moved}
	}
	if a.Name != "" {
		// Preconditions and effects read the state: only Apply evaluates
		// them. The name, the role and the params are checked here.
		_, err := rs.auth.lookup(a)
		return err
	}
	// Callers run concurrently: no shared scratch, but room on the stack
	// for the usual few ops.
	var buf [4]planned
	_, err := plan(rs, a, buf[:0])
	return err
}
