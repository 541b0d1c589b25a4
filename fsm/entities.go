package fsm

import "fmt"

// Entities returns a consistent copy of every entity of a world, sorted by
// id, and the seq they reflect: what a keyframe is made from (spectator
// seeds its state with it). Cost: a copy of the world's entities under the
// read lock, so callers make it once and share it.
func (f *FSM) Entities(worldID string) ([]EntityView, uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return nil, 0, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	out := make([]EntityView, 0, len(w.entities))
	for _, id := range sortedKeys(w.entities) {
		e := w.entities[id]
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
		out = append(out, v)
	}
	return out, w.seq, nil
}
